# One pass over cluster-sorted keys and values gives every cluster's exact key and value means (zeros when empty).
import os

import pytest
import torch

from svg_ear_compile.kernels.cluster_stats import segment_means, sorted_with_stats
from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import cluster_layout, permute

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


def _labels(groups, n, clusters, seed):
    """Random labels with an empty cluster, a one-token cluster and one cluster holding half the tokens."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, clusters, (groups, n), generator=gen)
    labels[:, : n // 2] = 0
    labels[labels == 2] = 3
    labels[labels == 1] = 4
    labels[:, n - 1] = 1
    return labels[:, torch.randperm(n, generator=gen)]


@pytest.mark.parametrize("d, dv, clusters", [(40, 24, 13), (64, 64, 7), (128, 96, 40)])
def test_means_equal_reference_and_every_element_is_written(d, dv, clusters):
    gen = torch.Generator().manual_seed(d + clusters)
    n = 257  # not a multiple of any tile
    labels = _labels(3, n, clusters, seed=clusters)
    keys = torch.randn(3, n, d, generator=gen) * 2 + 1
    values = torch.randn(3, n, dv, generator=gen)
    layout = cluster_layout(labels, clusters)
    keys_sorted, values_sorted = permute(keys, layout.perm), permute(values, layout.perm)
    key_out = torch.full((3, clusters, d), float("nan"), device=DEVICE)
    value_out = torch.full((3, clusters, dv), float("nan"), device=DEVICE)
    key_means, value_means = segment_means(keys_sorted.to(DEVICE), layout.offsets.to(DEVICE),
                                           values_sorted.to(DEVICE), out=key_out, y_out=value_out)
    assert key_means is key_out and value_means is value_out
    torch.testing.assert_close(key_means.cpu(), cluster_means(keys, labels, layout.sizes), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(value_means.cpu(), cluster_means(values, labels, layout.sizes), rtol=1e-5, atol=1e-6)
    assert bool((key_means[:, 2] == 0).all()) and bool((value_means[:, 2] == 0).all())  # empty cluster
    for g in range(3):  # the one-token cluster is that token, bit for bit
        assert torch.equal(key_means[g, 1].cpu(), keys_sorted[g, layout.offsets[g, 1]])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_means_accumulate_in_float32(dtype):
    if DEVICE == "cpu" and dtype == torch.bfloat16:
        pytest.skip("bf16 is wrong in the Triton interpreter")
    gen = torch.Generator().manual_seed(7)
    labels = _labels(2, 300, 6, seed=7)
    layout = cluster_layout(labels, 6)
    keys = (torch.randn(2, 300, 40, generator=gen) + 3).to(dtype)
    values = torch.randn(2, 300, 16, generator=gen).to(dtype)
    keys_sorted, values_sorted = permute(keys, layout.perm).to(DEVICE), permute(values, layout.perm).to(DEVICE)
    key_means, value_means = segment_means(keys_sorted, layout.offsets.to(DEVICE), values_sorted)
    assert key_means.dtype == dtype and value_means.dtype == dtype
    tol = {"rtol": 1e-2, "atol": 1e-2}
    torch.testing.assert_close(key_means.float().cpu(), cluster_means(keys.float(), labels, layout.sizes), **tol)
    torch.testing.assert_close(value_means.float().cpu(), cluster_means(values.float(), labels, layout.sizes), **tol)


def test_row_index_reads_through_the_permutation_and_fallback_fills_empty_clusters():
    gen = torch.Generator().manual_seed(8)
    labels = _labels(2, 100, 5, seed=8)
    layout = cluster_layout(labels, 5)
    x = torch.randn(2, 100, 20, generator=gen)
    fallback = torch.randn(2, 5, 20, generator=gen)
    means, none = segment_means(x.to(DEVICE), layout.offsets.to(DEVICE), row_index=layout.perm.to(DEVICE),
                                fallback=fallback.to(DEVICE), block_n=16)
    assert none is None
    expected = torch.where(layout.sizes.unsqueeze(-1) > 0, cluster_means(x, labels, layout.sizes), fallback)
    torch.testing.assert_close(means.cpu(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_sorted_with_stats_equals_permute_then_means_on_strided_inputs(dtype):
    """One pass gathers the keys and values into cluster order (bit for bit the permutation) and gives the
    same means as :func:`segment_means` on the sorted copies; the inputs are head-major views of token-major
    tensors, read in place."""
    gen = torch.Generator().manual_seed(12)
    labels = _labels(3, 203, 11, seed=12)
    layout = cluster_layout(labels, 11)
    keys = (torch.randn(203, 3, 40, generator=gen) * 2 + 1).to(dtype).to(DEVICE).transpose(0, 1)
    values = torch.randn(203, 3, 24, generator=gen).to(dtype).to(DEVICE).transpose(0, 1)
    perm, offsets = layout.perm.to(DEVICE), layout.offsets.to(DEVICE)
    keys_sorted, values_sorted, key_means, value_means = sorted_with_stats(keys, values, perm, offsets, block_n=16)
    assert torch.equal(keys_sorted, permute(keys, perm)) and torch.equal(values_sorted, permute(values, perm))
    assert keys_sorted.is_contiguous() and values_sorted.is_contiguous()
    expected = segment_means(permute(keys, perm), offsets, permute(values, perm), block_n=16)
    assert torch.equal(key_means, expected[0]) and torch.equal(value_means, expected[1])
    with pytest.raises(ValueError, match="gathered needs row_index"):
        segment_means(keys, offsets, values, gathered=(torch.empty_like(keys_sorted), torch.empty_like(values_sorted)))
    with pytest.raises(ValueError, match="gathered\\[1\\] must be a contiguous"):
        segment_means(keys, offsets, values, row_index=perm,
                      gathered=(torch.empty_like(keys_sorted), torch.empty_like(keys_sorted)))


def test_bad_arguments_are_named():
    keys = torch.zeros(2, 10, 16, device=DEVICE)
    offsets = torch.tensor([[0, 4, 10], [0, 10, 10]], device=DEVICE)
    with pytest.raises(ValueError, match="y must have"):
        segment_means(keys, offsets, torch.zeros(2, 9, 8, device=DEVICE))
    with pytest.raises(ValueError, match="offsets"):
        segment_means(keys, offsets.float(), torch.zeros(2, 10, 8, device=DEVICE))
    with pytest.raises(ValueError, match="out"):
        segment_means(keys, offsets, torch.zeros(2, 10, 8, device=DEVICE), out=torch.empty(2, 3, 16, device=DEVICE))
