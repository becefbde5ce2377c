# The streamed Triton probe equals probe_ref's log ε̂ on the same data, and is exactly -inf for empty key clusters.
import os

import pytest
import torch

from svg_ear_compile.kernels import probe_ref
from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import cluster_layout, permute
from svg_ear_compile.kernels.probe import log_error_probe

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"
# The interpreter evaluates log(0) for empty clusters with numpy, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")


def _problem(groups, n, d, dv, clusters, rows, seed, key_scale=1.5):
    """Keys/values with an empty cluster (2), a one-token cluster (1), a huge cluster (0) and query points."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, clusters, (groups, n), generator=gen)
    labels[:, : n // 2] = 0
    labels[labels == 2] = 3
    labels[labels == 1] = 4
    labels[:, n - 1] = 1
    labels = labels[:, torch.randperm(n, generator=gen)]
    keys = torch.randn(groups, n, d, generator=gen) * key_scale
    values = torch.randn(groups, n, dv, generator=gen) + 0.5
    points = torch.randn(groups, rows, d, generator=gen) * 2
    return points, keys, values, labels


def _both(points, keys, values, labels, clusters, scale, **tiles):
    """(reference, Triton) on the same data; the Triton probe reads the cluster-sorted copy."""
    layout = cluster_layout(labels, clusters)
    key_means, value_means = cluster_means(keys, labels, layout.sizes), cluster_means(values, labels, layout.sizes)
    expected = probe_ref.log_error_probe(points, keys, values, labels, key_means, value_means, layout.sizes, scale)
    out = torch.full(expected.shape, float("nan"), device=DEVICE)
    args = (points, permute(keys, layout.perm), permute(values, layout.perm), layout.offsets, key_means, value_means)
    actual = log_error_probe(*(t.to(DEVICE) for t in args), scale, out=out, **tiles)
    assert actual is out
    return expected, actual.cpu()


def _assert_log_close(actual, expected, atol):
    """Equal where the error is significant; blocks 30 nats below their row's largest are noise in both."""
    assert not bool(actual.isnan().any())
    assert torch.equal(torch.isneginf(actual[..., 2]), torch.ones_like(actual[..., 2], dtype=torch.bool))
    floor = expected.amax(-1, keepdim=True) - 30
    significant = expected > floor
    torch.testing.assert_close(actual[significant], expected[significant].to(actual.dtype), rtol=0, atol=atol)
    assert bool((actual <= floor + 1)[~significant].all())


@pytest.mark.parametrize("d, dv, clusters, rows", [(40, 24, 13, 23), (64, 64, 7, 16), (128, 96, 20, 5)])
def test_probe_equals_reference_float32(d, dv, clusters, rows):
    points, keys, values, labels = _problem(2, 257, d, dv, clusters, rows, seed=d + rows)
    expected, actual = _both(points, keys, values, labels, clusters, d**-0.5)
    # atol 1e-3 on log ε̂ is a relative error of 1e-3 on ε̂.
    _assert_log_close(actual, expected, atol=1e-3)


def test_probe_streams_a_cluster_over_many_tiles_with_a_growing_max():
    # Large logits that rise along the sorted order: the running max changes in every tile.
    points, keys, values, labels = _problem(1, 300, 40, 16, 6, 17, seed=3, key_scale=1.0)
    layout = cluster_layout(labels, 6)
    ramp = torch.linspace(0, 6, 300).unsqueeze(-1)
    keys_sorted = permute(keys, layout.perm) * 0.3 + ramp * points[:, :1] / points[:, :1].norm()
    keys = torch.empty_like(keys).scatter_(1, layout.perm.unsqueeze(-1).expand_as(keys), keys_sorted)
    expected, actual = _both(points, keys, values, labels, 6, 1.0, block_n=16)
    _assert_log_close(actual, expected, atol=1e-3)


def test_probe_float32_close_to_float64_for_tight_clusters():
    # Keys and values within 1e-3 of their means: the error is ~1e-6 of each raw term.
    gen = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 8, (1, 256), generator=gen)
    keys = torch.randn(1, 8, 40, generator=gen, dtype=torch.float64)[0, labels[0]].unsqueeze(0) * 3
    keys = keys + 1e-3 * torch.randn_like(keys)
    values = torch.randn(1, 8, 16, generator=gen, dtype=torch.float64)[0, labels[0]].unsqueeze(0)
    values = values + 1e-3 * torch.randn_like(values)
    points = torch.randn(1, 20, 40, generator=gen, dtype=torch.float64)
    layout = cluster_layout(labels, 8)
    key_means, value_means = cluster_means(keys, labels, layout.sizes), cluster_means(values, labels, layout.sizes)
    expected = probe_ref.log_error_probe(points, keys, values, labels, key_means, value_means, layout.sizes, 0.25)
    args = (points, permute(keys, layout.perm), permute(values, layout.perm), layout.offsets, key_means, value_means)
    actual = log_error_probe(*(t.to(DEVICE, torch.float32 if t.is_floating_point() else t.dtype) for t in args), 0.25)
    torch.testing.assert_close(actual.cpu().double(), expected, rtol=0, atol=0.05)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_match_reference_on_the_same_rounded_data(dtype):
    if DEVICE == "cpu" and dtype == torch.bfloat16:
        pytest.skip("bf16 is wrong in the Triton interpreter")
    points, keys, values, labels = _problem(2, 200, 64, 32, 9, 20, seed=6, key_scale=1.0)
    points, keys, values = (t.to(dtype) for t in (points, keys, values))
    layout = cluster_layout(labels, 9)
    key_means, value_means = cluster_means(keys.float(), labels, layout.sizes), cluster_means(values.float(), labels,
                                                                                              layout.sizes)
    expected = probe_ref.log_error_probe(points.float(), keys.float(), values.float(), labels, key_means, value_means,
                                         layout.sizes, 0.125)
    args = (points, permute(keys, layout.perm), permute(values, layout.perm), layout.offsets,
            key_means.to(dtype), value_means.to(dtype))
    actual = log_error_probe(*(t.to(DEVICE) for t in args), 0.125).cpu()
    # Rounding the means and the centred keys to 8-11 bits moves log ε̂ by a few percent at most.
    _assert_log_close(actual, expected, atol=0.1 if dtype == torch.bfloat16 else 0.02)


def test_bad_arguments_are_named():
    points = torch.zeros(2, 4, 16, device=DEVICE)
    keys, values = torch.zeros(2, 10, 16, device=DEVICE), torch.zeros(2, 10, 8, device=DEVICE)
    offsets = torch.tensor([[0, 4, 10], [0, 10, 10]], device=DEVICE)
    key_means, value_means = torch.zeros(2, 2, 16, device=DEVICE), torch.zeros(2, 2, 8, device=DEVICE)
    with pytest.raises(ValueError, match="keys_sorted"):
        log_error_probe(points, keys[:, :, :8], values, offsets, key_means, value_means, 1.0)
    with pytest.raises(ValueError, match="value_means"):
        log_error_probe(points, keys, values, offsets, key_means, value_means[:, :1], 1.0)
    with pytest.raises(ValueError, match="key_offsets"):
        log_error_probe(points, keys, values, offsets.float(), key_means, value_means, 1.0)
    with pytest.raises(ValueError, match="block_r"):
        log_error_probe(points, keys, values, offsets, key_means, value_means, 1.0, block_r=8)
