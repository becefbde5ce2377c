# Centroid mass equals the attention mass centroid q̄_i puts on cluster j when every key of j is k̄_j.
import torch

from svg_ear_compile.kernels.centroid_mass_ref import centroid_mass


def test_mass_equals_softmax_over_replaced_keys():
    gen = torch.Generator().manual_seed(2)
    q_centroids = torch.randn(1, 5, 8, generator=gen, dtype=torch.float64)
    k_centroids = torch.randn(1, 4, 8, generator=gen, dtype=torch.float64)
    sizes = torch.tensor([[3, 0, 10, 1]])
    mass = centroid_mass(q_centroids, k_centroids, sizes, 0.5)
    replaced_keys = torch.repeat_interleave(k_centroids[0], sizes[0], dim=0)
    owner = torch.repeat_interleave(torch.arange(4), sizes[0])
    probs = torch.softmax(0.5 * q_centroids[0] @ replaced_keys.T, dim=-1)
    expected = torch.zeros(5, 4, dtype=torch.float64).index_add_(1, owner, probs)
    torch.testing.assert_close(mass[0], expected)
    assert bool((mass[0, :, 1] == 0).all())
