# Triton k-means picks the reference's nearest centroid (lowest index on ties) and moves centroids to the same means.
import os

import pytest
import torch

from svg_ear_compile.kernels import kmeans_ref
from svg_ear_compile.kernels.kmeans import kmeans, kmeans_assign, kmeans_update

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


def _separated(groups, n, d, clusters, seed, dtype=torch.float32):
    """Points near ``clusters`` far-apart centres, the centres jittered as centroids, and true labels."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(groups, clusters, d, generator=gen) * 10
    labels = torch.randint(0, clusters, (groups, n), generator=gen)
    points = torch.gather(centres, 1, labels.unsqueeze(-1).expand(-1, -1, d))
    points = points + 0.1 * torch.randn(groups, n, d, generator=gen)
    centroids = centres + 0.1 * torch.randn(groups, clusters, d, generator=gen)
    return points.to(DEVICE, dtype), centroids.to(DEVICE, dtype), labels.to(DEVICE)


@pytest.mark.parametrize("d, clusters", [(40, 37), (64, 70), (16, 1), (96, 5)])
def test_assign_equals_reference_and_writes_every_label(d, clusters):
    points, centroids, truth = _separated(3, 300, d, clusters, seed=d + clusters)  # 300 = 4 tiles of 64 + 44
    out = torch.full(truth.shape, -1, dtype=torch.int64, device=DEVICE)
    labels = kmeans_assign(points, centroids, out=out)
    assert labels is out
    assert torch.equal(labels, kmeans_ref.kmeans_assign(points, centroids))
    assert torch.equal(labels, truth)


def test_assign_mismatches_only_at_near_ties_on_random_data():
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(2, 257, 40, generator=gen).to(DEVICE)
    centroids = torch.randn(2, 83, 40, generator=gen).to(DEVICE)
    labels = kmeans_assign(points, centroids, block_n=32, block_c=16)
    distance = torch.cdist(points.double(), centroids.double()).square()
    chosen = torch.gather(distance, 2, labels.unsqueeze(-1)).squeeze(-1)
    best = distance.min(-1).values
    # fp32 distances carry ~1e-6 relative error: any other choice must be as near as that.
    assert bool(((chosen - best) <= 1e-4 * best.abs().clamp_min(1.0)).all())
    mismatches = labels != kmeans_ref.kmeans_assign(points, centroids)
    assert int(mismatches.sum()) <= 2


def test_ties_go_to_the_lowest_index_within_and_across_tiles():
    gen = torch.Generator().manual_seed(2)
    # Small integers: every distance is exact in fp32, so duplicated centroids tie exactly.
    points = torch.randint(-3, 4, (2, 100, 16), generator=gen).float()
    centroids = torch.randint(-3, 4, (2, 40, 16), generator=gen).float()
    centroids[:, 7] = centroids[:, 3]  # a tie inside the first centroid tile (block_c=16)
    centroids[:, 20] = centroids[:, 3]  # and one in the next tile
    centroids[:, 39] = centroids[:, 25]  # a tie between tiles 1 and 2
    points[:, :10] = centroids[:, 3:4]  # exactly on the triplicated centroid
    points[:, 10:20] = centroids[:, 25:26]
    points, centroids = points.to(DEVICE), centroids.to(DEVICE)
    labels = kmeans_assign(points, centroids, block_n=16, block_c=16)
    assert torch.equal(labels, kmeans_ref.kmeans_assign(points, centroids))
    assert bool((labels[:, :10] == 3).all()) and bool((labels[:, 10:20] == 25).all())


def test_update_is_member_mean_for_empty_single_and_huge_clusters():
    gen = torch.Generator().manual_seed(3)
    points = torch.randn(2, 203, 40, generator=gen).to(DEVICE)
    centroids = torch.randn(2, 9, 40, generator=gen).to(DEVICE)
    labels = torch.zeros(2, 203, dtype=torch.int64)
    labels[:, 150:] = torch.randint(3, 9, (2, 53), generator=gen)  # cluster 0 is huge (150 > several tiles)
    labels[labels == 5] = 4  # cluster 5 is empty; 1 and 2 are empty too
    labels[0, 7], labels[1, 200] = 1, 2  # clusters of one point
    labels = labels[:, torch.randperm(203, generator=gen)].to(DEVICE)
    new = kmeans_update(points, labels, centroids, block_n=16)
    expected = kmeans_ref.kmeans_update(points, labels, centroids)
    torch.testing.assert_close(new, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(new[:, 5], centroids[:, 5])  # empty: the previous centroid, bit for bit


@pytest.mark.parametrize("iters", [0, 1, 4])
def test_kmeans_equals_reference(iters):
    points, _, _ = _separated(2, 300, 40, 12, seed=10 + iters)
    init = kmeans_ref.strided_init(points, 12)
    centroids, labels = kmeans(points, init, iters)
    ref_centroids, ref_labels = kmeans_ref.kmeans(points, init, iters)
    assert torch.equal(labels, ref_labels)
    torch.testing.assert_close(centroids, ref_centroids, rtol=1e-5, atol=1e-5)


def test_kmeans_with_as_many_clusters_as_points():
    # C = N, the largest count the caller allows: every point is its own cluster from the strided init.
    gen = torch.Generator().manual_seed(4)
    points = torch.randn(2, 50, 40, generator=gen).to(DEVICE)
    centroids, labels = kmeans(points, kmeans_ref.strided_init(points, 50), 2)
    assert torch.equal(labels, torch.arange(50, device=DEVICE).expand(2, -1))
    torch.testing.assert_close(centroids, points)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_points_assign_like_their_fp32_values(dtype):
    if DEVICE == "cpu" and dtype == torch.bfloat16:
        pytest.skip("bf16 is wrong in the Triton interpreter")
    points, centroids, truth = _separated(2, 130, 64, 20, seed=5, dtype=dtype)
    assert torch.equal(kmeans_assign(points, centroids), truth)
    centroids_new, labels = kmeans(points, centroids, 2)
    ref_centroids, ref_labels = kmeans_ref.kmeans(points.float(), centroids.float(), 2)
    assert torch.equal(labels, ref_labels) and centroids_new.dtype == dtype
    torch.testing.assert_close(centroids_new.float(), ref_centroids, rtol=1e-2, atol=1e-2)


@pytest.mark.skipif(DEVICE == "cpu", reason="host syncs exist only with a GPU")
def test_lloyd_loop_never_waits_on_the_host():
    points, _, _ = _separated(2, 300, 64, 12, seed=12)
    init = kmeans_ref.strided_init(points, 12)
    kmeans(points, init, 1)  # compile outside the check
    torch.cuda.set_sync_debug_mode("error")
    try:
        kmeans(points, init, 3)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_bad_arguments_are_named():
    points = torch.zeros(2, 10, 16, device=DEVICE)
    with pytest.raises(ValueError, match="centroids"):
        kmeans_assign(points, torch.zeros(3, 4, 16, device=DEVICE))
    with pytest.raises(ValueError, match="float16, bfloat16 or float32"):
        kmeans_assign(points.double(), torch.zeros(2, 4, 16, dtype=torch.float64, device=DEVICE))
    with pytest.raises(ValueError, match="block_c"):
        kmeans_assign(points, torch.zeros(2, 4, 16, device=DEVICE), block_c=8)
    with pytest.raises(ValueError, match="labels"):
        kmeans_update(points, torch.zeros(2, 9, dtype=torch.int64, device=DEVICE), torch.zeros(2, 4, 16, device=DEVICE))
