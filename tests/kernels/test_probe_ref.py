# The centred closed-form probe equals the direct per-token error Σ_t ‖e^{a_t} v_t − e^{c} v̄_j‖².
import math

import torch

from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import cluster_layout
from svg_ear_compile.kernels.probe_ref import log_error_probe


def _direct(points, keys, values, labels, num_clusters, scale):
    g_count, r_count = points.shape[:2]
    out = torch.full((g_count, r_count, num_clusters), float("-inf"), dtype=torch.float64)
    for g in range(g_count):
        for j in range(num_clusters):
            members = labels[g] == j
            if not members.any():
                continue
            k_j, v_j = keys[g, members], values[g, members]
            k_bar, v_bar = k_j.mean(0), v_j.mean(0)
            for r in range(r_count):
                a = scale * k_j @ points[g, r]
                c = scale * k_bar @ points[g, r]
                err = (torch.exp(a).unsqueeze(1) * v_j - torch.exp(c) * v_bar).square().sum()
                out[g, r, j] = math.log(err) if err > 0 else float("-inf")
    return out


def test_probe_equals_direct_computation_float64():
    gen = torch.Generator().manual_seed(4)
    keys = torch.randn(2, 300, 8, generator=gen, dtype=torch.float64) * 1.5
    values = torch.randn(2, 300, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 12, (2, 300), generator=gen)
    labels[labels == 7] = 0  # an empty cluster
    labels[0, 0], labels[1, 0] = 11, 11
    labels[0, 1:][labels[0, 1:] == 11] = 10  # cluster 11 of group 0 has exactly one token
    points = torch.randn(2, 5, 8, generator=gen, dtype=torch.float64) * 2
    sizes = cluster_layout(labels, 12).sizes
    probe = log_error_probe(points, keys, values, labels, cluster_means(keys, labels, sizes),
                            cluster_means(values, labels, sizes), sizes, 0.7)
    expected = _direct(points, keys, values, labels, 12, 0.7)
    # Blocks 30 nats below their row's largest error (a one-token cluster is exactly 0) are noise.
    floor = expected.amax(-1, keepdim=True) - 30
    significant = expected > floor
    torch.testing.assert_close(probe[significant], expected[significant], rtol=1e-9, atol=1e-9)
    assert bool((probe <= floor + 1e-6)[~significant].all())
    assert bool(torch.isneginf(probe[..., 7]).all())  # the empty cluster


def test_probe_float32_matches_float64_without_cancellation():
    gen = torch.Generator().manual_seed(5)
    centres = torch.randn(1, 8, 16, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 8, (1, 2000), generator=gen)
    keys = centres[0, labels[0]].unsqueeze(0) + 1e-3 * torch.randn(1, 2000, 16, generator=gen, dtype=torch.float64)
    values = torch.randn(1, 8, 16, generator=gen, dtype=torch.float64)[0, labels[0]].unsqueeze(0)
    values = values + 1e-3 * torch.randn_like(values)
    points = torch.randn(1, 4, 16, generator=gen, dtype=torch.float64)
    sizes = cluster_layout(labels, 8).sizes

    def run(dtype):
        k, v, p = keys.to(dtype), values.to(dtype), points.to(dtype)
        return log_error_probe(p, k, v, labels, cluster_means(k, labels, sizes), cluster_means(v, labels, sizes),
                               sizes, 0.25)

    # Tight clusters: the error is ~1e-6 of each raw term, which the raw expansion would lose in fp32.
    torch.testing.assert_close(run(torch.float32).double(), run(torch.float64), rtol=0, atol=0.05)
