# record() keeps one row per op call, numbers steps per layer, marks calls that reused a kept routing or
# started cold, and summarises per layer from those rows.
import pytest
import torch

from svg_ear_compile import SvgEarConfig, record

CFG = SvgEarConfig(num_q_clusters=4, num_k_clusters=8, min_seq_len=0, budget=0.3, dense_layers=1)


def test_rows_steps_and_layer_table():
    q = k = v = torch.randn(1, 1, 64, 8)
    with record() as rec:
        for _ in range(2):
            for layer in (0, 1):
                torch.ops.svg_ear.attention(q, k, v, CFG.to_yaml(), layer)
    assert [(r.layer, r.step, r.dense, r.cold) for r in rec.records] == [(0, 0, True, False), (1, 0, False, True),
                                                                          (0, 1, True, False), (1, 1, False, False)]
    rows = {int(line.split()[0]): line.split() for line in rec.layer_table().splitlines()[1:]}
    assert rows[0][1:5] == ["2", "2", "0", "0"] and rows[0][5] == "100.0%"
    sparse = [r.density for r in rec.records if r.layer == 1]
    assert rows[1][1:5] == ["2", "0", "0", "1"] and float(rows[1][5].rstrip("%")) == pytest.approx(
        100 * sum(sparse) / 2, abs=0.06)
    assert [line.endswith("(cold start)") for line in rec.table().splitlines()[1:]] == [False, True, False, False]
    assert rec.mean_density() == pytest.approx((2 + sum(sparse)) / 4)


def test_nothing_is_kept_outside_record():
    q = k = v = torch.randn(1, 1, 64, 8)
    with record() as rec:
        pass
    torch.ops.svg_ear.attention(q, k, v, CFG.to_yaml(), 1)
    assert rec.records == []


def test_calls_that_reuse_a_kept_routing_are_marked():
    q = k = v = torch.randn(1, 1, 64, 8)
    config = CFG.replace(dense_layers=0, refresh_every=2).to_yaml()
    with record() as rec:
        for _ in range(3):
            torch.ops.svg_ear.attention(q, k, v, config, 5)
    assert [(r.step, r.dense, r.reused) for r in rec.records] == [(0, False, False), (1, False, True),
                                                                  (2, False, False)]
    assert rec.layer_table().splitlines()[1].split()[:4] == ["5", "3", "0", "1"]
    assert [line.endswith("(reused routing)") for line in rec.table().splitlines()[1:]] == [False, True, False]
