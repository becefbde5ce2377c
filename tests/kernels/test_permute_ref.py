# Sorting by cluster makes clusters contiguous ranges, and unpermute is the exact inverse of permute.
import pytest
import torch

from svg_ear_compile.kernels.permute_ref import cluster_layout, permute, sort_labels, unpermute


def test_layout_sizes_offsets_and_round_trip():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 9, (4, 301), generator=gen)
    labels[:, :] = torch.where(labels == 4, 5, labels)  # cluster 4 empty everywhere
    x = torch.randn(4, 301, 6, generator=gen)
    layout = cluster_layout(labels, 10)
    for g in range(4):
        assert torch.equal(layout.sizes[g], torch.bincount(labels[g], minlength=10))
    assert torch.equal(layout.offsets[:, -1], torch.full((4,), 301))
    x_sorted = permute(x, layout.perm)
    labels_sorted = torch.gather(labels, 1, layout.perm)
    assert torch.equal(labels_sorted, layout.labels_sorted)
    assert bool((labels_sorted[:, 1:] >= labels_sorted[:, :-1]).all())
    for g in range(4):
        for c in range(10):
            begin, end = layout.offsets[g, c], layout.offsets[g, c + 1]
            assert bool((labels_sorted[g, begin:end] == c).all())
    assert torch.equal(unpermute(x_sorted, layout.perm), x)


@pytest.mark.parametrize("num_clusters", [3, 1000, 40_000])  # int16 and int32 keys
def test_sort_labels_is_the_stable_int64_sort(num_clusters):
    gen = torch.Generator().manual_seed(num_clusters)
    labels = torch.randint(0, num_clusters, (3, 5000), generator=gen)
    labels[:, -1] = num_clusters - 1  # the largest label must survive the narrowing
    expected = torch.sort(labels, dim=1, stable=True)
    labels_sorted, order = sort_labels(labels, num_clusters)
    assert labels_sorted.dtype == torch.int64 and torch.equal(labels_sorted, expected.values)
    assert torch.equal(order, expected.indices)  # ties keep their original order
