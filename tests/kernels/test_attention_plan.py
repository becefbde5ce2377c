# The plan's per-tile first range and range-start bits equal a direct walk over each row's packed key tokens.
import pytest
import torch

from svg_ear_compile.kernels.attention_plan import attention_plan
from svg_ear_compile.kernels.block_map import BlockMap
from svg_ear_compile.kernels.permute_ref import cluster_layout


@pytest.mark.parametrize("block_n", [16, 32, 64])
def test_tile_range_and_start_bits_follow_the_packed_tokens(block_n):
    gen = torch.Generator().manual_seed(3)
    groups, n, qc, kc = 2, 157, 5, 23
    k_labels = torch.randint(0, kc, (groups, n), generator=gen)
    k_labels[:, :kc] = torch.arange(kc)  # every cluster non-empty, many of size ~1-10
    k_labels[k_labels == 7] = 8  # one empty cluster: it never breaks a run
    q_layout = cluster_layout(torch.randint(0, qc, (groups, n), generator=gen), qc)
    k_layout = cluster_layout(k_labels, kc)
    selected = torch.rand(groups, qc, kc, generator=gen) < 0.5
    selected[0, 1] = False
    plan = attention_plan(q_layout, k_layout, BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes),
                          32, block_n, 0)
    tiles = -(-n // block_n)
    assert plan.tile_range.shape == (groups * qc, tiles)
    assert plan.range_starts.shape == (groups * qc, tiles, -(-block_n // 32))
    offsets = k_layout.offsets.tolist()
    for row in range(groups * qc):
        g, c = divmod(row, qc)
        # Direct oracle: the selected tokens in key order, split into runs of consecutive token indices.
        tokens = [t for j in range(kc) if selected[g, c, j] for t in range(offsets[g][j], offsets[g][j + 1])]
        run_of = [0] * len(tokens)
        for i in range(1, len(tokens)):
            run_of[i] = run_of[i - 1] + (tokens[i] != tokens[i - 1] + 1)
        assert int(plan.range_total[row]) == len(tokens)
        starts = {i for i in range(len(tokens)) if i == 0 or run_of[i] != run_of[i - 1]}
        for tile in range(tiles):
            words = [int(w) & 0xFFFFFFFF for w in plan.range_starts[row, tile]]
            bits = {p for p in range(block_n) if words[p // 32] >> (p % 32) & 1}
            assert bits == {i - tile * block_n for i in starts if tile * block_n <= i < (tile + 1) * block_n}
        for tile, start in enumerate(range(0, len(tokens), block_n)):
            assert int(plan.tile_range[row, tile]) == run_of[start], (row, tile)
            delta = int(plan.range_delta[row, run_of[start]])
            assert start + delta == tokens[start]


@pytest.mark.parametrize("remainder_m", [None, 16, 32])
def test_work_lists_cover_every_row_once_in_tiles_that_fit(remainder_m):
    gen = torch.Generator().manual_seed(5)
    groups, n, qc, kc, block_m = 2, 301, 9, 12, 64
    q_labels = torch.randint(0, qc - 1, (groups, n), generator=gen)  # the last query cluster is empty
    q_labels[0, :150] = 2  # one cluster of 150+ rows: two full tiles and a remainder
    q_layout, k_layout = cluster_layout(q_labels, qc), cluster_layout(torch.randint(0, kc, (groups, n), generator=gen),
                                                                      kc)
    selected = torch.rand(groups, qc, kc, generator=gen) < 0.5
    plan = attention_plan(q_layout, k_layout, BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes),
                          block_m, 32, 0, remainder_m)
    lists = [(plan.work, block_m)] + ([(plan.remainder_work, remainder_m)] if remainder_m else [])
    assert (plan.remainder_work is None) == (remainder_m is None)
    covered = torch.zeros(groups, n, dtype=torch.long)
    offsets = q_layout.offsets
    for work, height in lists:
        for group, cluster, start, end in work.tolist():
            if start == end:
                continue
            assert 0 < end - start <= height
            assert offsets[group, cluster] <= start and end <= offsets[group, cluster + 1]
            covered[group, start:end] += 1
    assert torch.equal(covered, torch.ones_like(covered))
    if remainder_m:  # exactly the clusters whose last partial tile fits remainder_m rows are split off
        sizes = q_layout.sizes
        last = sizes - (sizes - 1).div(block_m, rounding_mode="floor").clamp_min(0) * block_m
        expected = int(((sizes > 0) & (last <= remainder_m)).sum())
        assert int((plan.remainder_work[:, 3] > plan.remainder_work[:, 2]).sum()) == expected


@pytest.mark.parametrize("remainder_m", [None, 16])
def test_work_runs_head_by_head_costliest_first_empty_items_last(remainder_m):
    gen = torch.Generator().manual_seed(11)
    groups, n, qc, kc, block_m, extra = 3, 211, 7, 10, 32, 5
    q_layout = cluster_layout(torch.randint(0, qc, (groups, n), generator=gen), qc)
    k_layout = cluster_layout(torch.randint(0, kc, (groups, n), generator=gen), kc)
    selected = torch.rand(groups, qc, kc, generator=gen) < 0.4
    plan = attention_plan(q_layout, k_layout, BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes),
                          block_m, 32, extra, remainder_m)
    # Direct oracle of an item's cost: its rows times the keys its row of the block map visits.
    keys = (selected * k_layout.sizes[:, None, :]).sum(-1) + extra + 1
    for work in [plan.work] + ([plan.remainder_work] if remainder_m else []):
        items = work.tolist()
        real = [(g, -(end - start) * int(keys[g, c])) for g, c, start, end in items if end > start]
        assert real == sorted(real), "items must go group by group, costliest first within a group"
        first_empty = next((i for i, (_, _, start, end) in enumerate(items) if end <= start), len(items))
        assert all(end <= start for _, _, start, end in items[first_empty:])
        assert {g for g, _ in real} == set(range(groups))


def test_cpu_tensors_without_the_interpreter_get_the_same_plan_from_torch(monkeypatch):
    """Where Triton cannot run (CPU tensors, no interpreter) the plan's tables come from the torch reference,
    equal to what the Triton launches give (here: under the interpreter, when it is on)."""
    gen = torch.Generator().manual_seed(11)
    groups, n, qc, kc = 2, 97, 4, 13
    q_layout = cluster_layout(torch.randint(0, qc, (groups, n), generator=gen), qc)
    k_layout = cluster_layout(torch.randint(0, kc, (groups, n), generator=gen), kc)
    block_map = BlockMap.from_selection(torch.rand(groups, qc, kc, generator=gen) < 0.5, q_layout.sizes,
                                        k_layout.sizes)
    plans = [attention_plan(q_layout, k_layout, block_map, 32, 16, 0)]
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    plans.append(attention_plan(q_layout, k_layout, block_map, 32, 16, 0))
    for field, a, b in zip(plans[0]._fields, *plans, strict=True):
        assert (a is None and b is None) or torch.equal(a, b), field
