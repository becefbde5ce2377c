# The Triton range tables equal the torch reference's, bit for bit (the reference is checked against a
# direct walk over the packed tokens in test_attention_plan.py and test_range_tables_ref.py).
import os

import pytest
import torch

from svg_ear_compile.kernels.permute_ref import cluster_layout
from svg_ear_compile.kernels.range_tables import range_tables
from svg_ear_compile.kernels.range_tables_ref import range_tables_ref

from ._no_launch import NoLaunch

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


def _labels(name: str, gen: torch.Generator, groups: int, n: int, kc: int) -> torch.Tensor:
    if name == "singletons":  # clusters of one token beside large ones: a tile meets many ranges
        labels = torch.arange(n).repeat(groups, 1) % kc
        labels[:, kc:] = torch.randint(0, 3, (groups, n - kc), generator=gen)
        return labels
    labels = torch.randint(0, kc, (groups, n), generator=gen)
    if name == "empty_clusters":  # two clusters in three empty: empty clusters never break a run
        labels = labels - labels % 3 + 1
        labels[labels >= kc] = 1
    return labels


@pytest.mark.parametrize("block_n", [16, 32, 64, 128])
@pytest.mark.parametrize("name", ["random", "singletons", "empty_clusters"])
def test_triton_tables_equal_the_reference(name, block_n):
    gen = torch.Generator().manual_seed(5)
    groups, n, qc, kc = 2, 301, 6, 67  # 301 keys: a partial last tile; 67 clusters: a partial scan block
    layout = cluster_layout(_labels(name, gen, groups, n, kc), kc)
    selected = torch.rand(groups, qc, kc, generator=gen) < 0.45
    selected[0, 0] = False  # nothing selected
    selected[0, 1] = True  # everything selected: one range
    selected[1, 2] = torch.arange(kc) % 2 == 0  # every other cluster: the most ranges a row can have
    selected, offsets = selected.to(DEVICE), layout.offsets.to(DEVICE)
    got = range_tables(selected, offsets, n, block_n)
    expected = range_tables_ref(selected, offsets, n, block_n)
    for field, a, b in zip(expected._fields, got, expected, strict=True):
        assert a.dtype == b.dtype == torch.int32 and a.shape == b.shape, field
        assert torch.equal(a, b), field


def test_one_key_cluster_and_one_key():
    selected = torch.tensor([[[True], [False]]], device=DEVICE)
    offsets = torch.tensor([[0, 1]], device=DEVICE)
    got, expected = range_tables(selected, offsets, 1, 16), range_tables_ref(selected, offsets, 1, 16)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert got.range_total.tolist() == [1, 0] and got.range_delta.tolist() == [[0], [0]]


def test_rows_wider_than_a_program_holds_take_the_torch_tables(monkeypatch):
    from svg_ear_compile.kernels import range_tables as module

    monkeypatch.setattr(module, "MOST_CLUSTERS", 16)
    monkeypatch.setattr(module, "_ranges_kernel", NoLaunch())
    gen = torch.Generator().manual_seed(8)
    layout = cluster_layout(torch.randint(0, 40, (2, 150), generator=gen), 40)
    selected = (torch.rand(2, 3, 40, generator=gen) < 0.5).to(DEVICE)
    offsets = layout.offsets.to(DEVICE)
    got, expected = range_tables(selected, offsets, 150, 32), range_tables_ref(selected, offsets, 150, 32)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
