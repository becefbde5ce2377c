# The compensation tail's tables: the moment kernel equals its reference; the tables equal direct formulas.
import math
import os

import pytest
import torch

from svg_ear_compile.kernels.compensation_tail import compensation_tail, tail_moment
from svg_ear_compile.kernels.compensation_tail_ref import tail_moment_ref

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


def _problem(seed=0, g=2, qc=5, kc=37, d=40, dv=24):
    gen = torch.Generator().manual_seed(seed)
    points, centroids = torch.randn(g, qc, d, generator=gen), torch.randn(g, kc, d, generator=gen)
    means = torch.randn(g, kc, dv, generator=gen)
    sizes = torch.randint(1, 50, (g, kc), generator=gen)
    sizes[:, -3:] = 0  # empty clusters: never listed, never in the tail
    selected = torch.rand(g, qc, kc, generator=gen) < 0.3
    selected[0, 1] = True  # nothing skipped: no listed cluster, no tail
    selected[1, 2] = True
    selected[1, 2, :3] = False  # three skipped: all listed when T >= 3, no tail
    return tuple(t.to(DEVICE) for t in (points, centroids, means, sizes, selected))


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-5), (torch.float16, 2e-3)])
def test_tail_moment_matches_reference(dtype, tolerance):
    gen = torch.Generator().manual_seed(1)
    weights, centroids = torch.rand(3, 4, 45, generator=gen), torch.randn(3, 45, 40, generator=gen)
    means, mean_key = torch.randn(3, 45, 24, generator=gen), torch.randn(3, 4, 40, generator=gen)
    weights, centroids, means, mean_key = (t.to(DEVICE) for t in (weights, centroids, means, mean_key))
    out = tail_moment(weights, centroids, means, mean_key, 0.3, dtype)
    expected = tail_moment_ref(weights.double(), centroids.double(), means.double(), mean_key.double(), 0.3)
    assert out.shape == (12, 40, 24) and out.dtype == dtype
    assert float((out.double() - expected).abs().max() / expected.abs().max()) < tolerance


def test_tables_equal_direct_formulas():
    points, centroids, means, sizes, selected = _problem()
    scale, exact = 0.2, 3
    tail = compensation_tail(points, centroids, means, sizes, selected, scale, exact, torch.float32)
    tail = type(tail)(*(t.cpu() for t in tail))
    points, centroids, means, sizes, selected = (t.cpu() for t in (points, centroids, means, sizes, selected))
    for g in range(points.shape[0]):
        for i in range(points.shape[1]):
            row = g * points.shape[1] + i
            skipped = [j for j in range(centroids.shape[1]) if not selected[g, i, j] and sizes[g, j] > 0]
            weight = {j: scale * float(points[g, i] @ centroids[g, j]) + math.log(sizes[g, j]) for j in skipped}
            ranked = sorted(skipped, key=weight.get, reverse=True)
            listed = [j for j in tail.exact_clusters[row].tolist() if j >= 0]
            assert listed == ranked[:exact]
            rest = ranked[exact:]
            if not rest:
                assert tail.log2_weight[row] == float("-inf")
                continue
            log_total = torch.logsumexp(torch.tensor([weight[j] for j in rest], dtype=torch.float64), 0)
            share = torch.tensor([math.exp(weight[j] - log_total) for j in rest], dtype=torch.float64)
            mean_key = share @ centroids[g, rest].double()
            torch.testing.assert_close(tail.log2_weight[row].double(), log_total / math.log(2), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(tail.mean_key[row].double(), mean_key, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(tail.value[row].double(), share @ means[g, rest].double(), rtol=1e-5, atol=1e-5)
            slope = scale * (share[:, None] * (centroids[g, rest].double() - mean_key)).T @ means[g, rest].double()
            torch.testing.assert_close(tail.slope[row].double(), slope, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(tail.query_means[row], points[g, i])


def test_slope_of_keys_far_from_the_origin_in_float16():
    """Keys with a common offset (as video keys have) and value means with one: the slope's float16 error
    stays at the rounding of the weighted keys. With μ taken from the float32 centroids while the moment
    kernel reads them rounded, Σ w·(k̄ − μ) was μ's rounding error, and times the value offset it put
    2e-2 of error into C (1.7e-1 in bfloat16)."""
    points, centroids, means, sizes, selected = _problem(seed=3, kc=301, d=64, dv=64)
    centroids, means = centroids + 20.0, means + 5.0
    scale, exact = 0.05, 4
    tail = compensation_tail(points, centroids, means, sizes, selected, scale, exact, torch.float16)
    centroids, means = (t.half().double().cpu() for t in (centroids, means))  # the inputs as the op holds them
    points, sizes, selected = points.double().cpu(), sizes.cpu(), selected.cpu()
    errors = []
    for g in range(points.shape[0]):
        for i in range(points.shape[1]):
            row = g * points.shape[1] + i
            listed = set(tail.exact_clusters[row].tolist())
            rest = [j for j in range(centroids.shape[1])
                    if not selected[g, i, j] and sizes[g, j] > 0 and j not in listed]
            if not rest:
                continue
            logits = scale * centroids[g, rest] @ points[g, i] + sizes[g, rest].double().log()
            share = torch.softmax(logits, 0)
            mean_key = share @ centroids[g, rest]
            slope = scale * (share[:, None] * (centroids[g, rest] - mean_key)).T @ means[g, rest]
            errors.append(float((tail.slope[row].double().cpu() - slope).abs().max() / slope.abs().max()))
    assert len(errors) > 5 and max(errors) < 5e-3, errors
