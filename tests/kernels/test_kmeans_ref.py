# k-means assigns every point to its nearest centroid, moves centroids to member means, and never raises inertia.
import torch

from svg_ear_compile.kernels.kmeans_ref import kmeans, kmeans_assign, kmeans_update, strided_init


def _points(g=3, n=1000, d=16, seed=0):
    return torch.randn(g, n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_assignment_is_nearest_centroid_by_cdist():
    x = _points(n=5000)  # more than one chunk of 4096
    c = _points(n=37, seed=1)
    expected = torch.cdist(x, c).argmin(-1)
    assert torch.equal(kmeans_assign(x, c), expected)


def test_update_is_member_mean_and_empty_cluster_keeps_centroid():
    x = _points(g=1, n=50)
    c = _points(g=1, n=4, seed=2)
    labels = torch.tensor([[0] * 20 + [1] * 30])  # clusters 2 and 3 are empty
    new = kmeans_update(x, labels, c)
    torch.testing.assert_close(new[0, 0], x[0, :20].mean(0))
    torch.testing.assert_close(new[0, 1], x[0, 20:].mean(0))
    torch.testing.assert_close(new[0, 2:], c[0, 2:])


def test_lloyd_never_increases_inertia_and_zero_iters_is_assignment():
    x = _points()
    init = strided_init(x, 20)

    def inertia(c, labels):
        return (x - torch.gather(c, 1, labels.unsqueeze(-1).expand_as(x))).square().sum()

    previous = inertia(init, kmeans_assign(x, init))
    for iters in (1, 2, 5):
        c, labels = kmeans(x, init, iters)
        current = inertia(c, labels)
        assert current <= previous + 1e-9
        previous = current
    c0, labels0 = kmeans(x, init, 0)
    assert torch.equal(c0, init) and torch.equal(labels0, kmeans_assign(x, init))


def test_strided_init_picks_distinct_points_even_when_clusters_equal_points():
    x = _points(n=7)
    torch.testing.assert_close(strided_init(x, 7), x)
