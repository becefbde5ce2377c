"""The sparse SVG-EAR pipeline over the kernel stages (DESIGN.md §2), with no dense fallback.

    cluster Q and K (k-means, warm-started) → sort tokens by cluster → cluster means →
    centroid mass p_ij → error probe ε̂_ij (EAR) → routing → block-sparse attention with the
    centroid compensation (and any shared keys) → tokens back in place.

:func:`svg_ear_compile.svg_ear_attention` decides when this runs; benchmarks call it directly
with a stage timer.
"""

from __future__ import annotations

import contextlib
import math
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .config import SvgEarConfig
from .kernels import (
    centroid_mass_ref,
    cluster_stats_ref,
    kmeans_ref,
    permute_ref,
    probe_ref,
    routing_ref,
    sparse_attention_ref,
)
from .kernels.block_map import BlockMap
from .state import SvgEarState

StageTimer = Callable[[str], contextlib.AbstractContextManager]


def no_timer(stage: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class SharedKeys:
    """Keys every query attends exactly (HunyuanVideo's text tokens): ``(B, H, T, D)``, ``(B, H, T, Dv)``
    and ``valid`` ``(B, T)`` bool (padded ones enter neither attention nor compensation)."""

    keys: torch.Tensor
    values: torch.Tensor
    valid: torch.Tensor


def resolve_impl(config: SvgEarConfig, device: torch.device, dtype: torch.dtype) -> str:
    """``"triton"`` or ``"reference"``: ``auto`` takes Triton on CUDA for 16/32-bit floats.

    ``impl="triton"`` elsewhere is an error naming the problem (on a CPU it needs Triton's
    interpreter, ``TRITON_INTERPRET=1``, set before the first kernel is imported).
    """
    if config.impl == "reference":
        return "reference"
    supported = dtype in (torch.float16, torch.bfloat16, torch.float32)
    if config.impl == "auto":
        return "triton" if device.type == "cuda" and supported else "reference"
    if not supported:
        raise ValueError(f"SvgEarConfig.impl='triton' runs float16, bfloat16 or float32 inputs, got {dtype}; "
                         "use impl='reference' (or 'auto')")
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(f"SvgEarConfig.impl='triton' needs a CUDA device, got {device} (on a CPU set "
                         "TRITON_INTERPRET=1 before importing svg_ear_compile to use Triton's interpreter)")
    return "triton"


def run_pipeline(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SvgEarConfig,
    state: SvgEarState | None,
    timer: StageTimer = no_timer,
    shared: SharedKeys | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SVG-EAR over ``(B, H, S, D)`` inputs; ``timer(stage)`` wraps each stage (benchmarks time with it).

    ``shared`` keys join every query's softmax exactly. Returns the output in ``q``'s dtype and the
    stats described in :func:`svg_ear_compile.svg_ear_attention` (density over the ``S × S`` area).
    """
    batch, heads, seq_len, head_dim = q.shape
    impl = resolve_impl(config, q.device, q.dtype)
    triton = _triton_kernels() if impl == "triton" else None

    # The reference computes in float32 (float64 stays); the Triton kernels take 16-bit inputs as they
    # are (tensor cores) and accumulate in float32.
    compute_dtype = q.dtype if triton else (torch.float64 if q.dtype == torch.float64 else torch.float32)
    groups = batch * heads
    queries = q.reshape(groups, seq_len, head_dim).to(compute_dtype)
    keys = k.reshape(groups, seq_len, head_dim).to(compute_dtype)
    values = v.reshape(groups, seq_len, v.shape[-1]).to(compute_dtype)
    scale = 1.0 / math.sqrt(head_dim)
    num_q_clusters = min(config.num_q_clusters, seq_len)
    num_k_clusters = min(config.num_k_clusters, seq_len)

    state = state if state is not None else SvgEarState()
    with timer("kmeans_q"):
        q_centroids, q_labels, cold_q = _cluster(state, "query", queries, num_q_clusters, config, triton)
    with timer("kmeans_k"):
        k_centroids, k_labels, cold_k = _cluster(state, "key", keys, num_k_clusters, config, triton)
    state.update(q_centroids, k_centroids, cold=cold_q or cold_k)

    with timer("permute"):
        query_layout = permute_ref.cluster_layout(q_labels, num_q_clusters)
        key_layout = permute_ref.cluster_layout(k_labels, num_k_clusters)
        queries_sorted = permute_ref.permute(queries, query_layout.perm)
        keys_sorted = permute_ref.permute(keys, key_layout.perm)
        values_sorted = permute_ref.permute(values, key_layout.perm)
    with timer("stats"):
        if triton:
            query_means = triton.cluster_stats.segment_means(queries_sorted, query_layout.offsets)[0]
            key_means, value_means = triton.cluster_stats.cluster_stats(keys_sorted, values_sorted, key_layout.offsets)
        else:
            query_means = cluster_stats_ref.cluster_means(queries, q_labels, query_layout.sizes)
            key_means = cluster_stats_ref.cluster_means(keys, k_labels, key_layout.sizes)
            value_means = cluster_stats_ref.cluster_means(values, k_labels, key_layout.sizes)
    with timer("mass"):
        mass_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
        mass = centroid_mass_ref.centroid_mass(query_means.to(mass_dtype), key_means.to(mass_dtype),
                                               key_layout.sizes, scale)
    log_error = None
    if config.routing == "error_aware" and (config.budget is None or config.budget < 1.0):
        with timer("probe"):
            if triton:
                log_error = triton.probe.log_error_probe(query_means, keys_sorted, values_sorted, key_layout.offsets,
                                                         key_means, value_means, scale)
            else:
                log_error = probe_ref.log_error_probe(
                    query_means, keys, values, k_labels, key_means, value_means, key_layout.sizes, scale
                )
    with timer("routing"):
        selected = routing_ref.route(mass, log_error, query_layout.sizes, key_layout.sizes, config)
        block_map = BlockMap.from_selection(selected, query_layout.sizes, key_layout.sizes, check_sizes=False)
    shared_args = () if shared is None else _grouped_shared(shared, compute_dtype)
    attention_args = (queries_sorted, keys_sorted, values_sorted, query_layout, key_layout, block_map,
                      key_means, value_means, scale, config.compensation, *shared_args)
    if triton:
        tiles = triton.tiles.tile_config(head_dim, seq_len, q.device, block_m=config.block_m, block_n=config.block_n)
        with timer("attention"):  # writes the rows back in place: no separate unpermute
            out = triton.sparse_attention.sparse_attention(
                *attention_args, block_m=tiles.block_m, block_n=tiles.block_n, num_warps=tiles.num_warps,
                num_stages=tiles.num_stages)
    else:
        with timer("attention"):
            out_sorted = sparse_attention_ref.sparse_attention_ref(*attention_args)
        with timer("unpermute"):
            out = permute_ref.unpermute(out_sorted, query_layout.perm)
    out = out.reshape(batch, heads, seq_len, v.shape[-1]).to(q.dtype)
    density = block_map.density()
    stats = {
        "density": density.mean(),  # a device tensor: reading it waits for the GPU, so only callers that ask do
        "density_per_head": density.reshape(batch, heads).float(),
        "dense": False,
        "impl": impl,
        "routing": config.routing,
        "compensation": config.compensation,
        "num_q_clusters": num_q_clusters,
        "num_k_clusters": num_k_clusters,
        "cold_start": cold_q or cold_k,
        "query_labels": q_labels.reshape(batch, heads, seq_len),
        "key_labels": k_labels.reshape(batch, heads, seq_len),
        "selected": block_map.selected.reshape(batch, heads, num_q_clusters, num_k_clusters),
    }
    return out, stats


def _cluster(
    state: SvgEarState,
    kind: str,
    points: torch.Tensor,
    num_clusters: int,
    config: SvgEarConfig,
    triton: types.SimpleNamespace | None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    init = state.warm_centroids(kind, points, num_clusters)
    cold = init is None
    if cold:
        init = kmeans_ref.strided_init(points, num_clusters)
    iters = config.kmeans_iters_init if cold else config.kmeans_iters
    kmeans = triton.kmeans.kmeans if triton else kmeans_ref.kmeans
    centroids, labels = kmeans(points, init, iters)
    return centroids, labels, cold


def _triton_kernels() -> types.SimpleNamespace:
    """The Triton kernel modules, imported on first use (importing the package never loads Triton)."""
    from .kernels import cluster_stats, kmeans, probe, sparse_attention, tiles

    return types.SimpleNamespace(cluster_stats=cluster_stats, kmeans=kmeans, probe=probe,
                                 sparse_attention=sparse_attention, tiles=tiles)


def _grouped_shared(shared: SharedKeys, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, heads, tokens, _ = shared.keys.shape
    keys = shared.keys.reshape(batch * heads, tokens, -1).to(dtype)
    values = shared.values.reshape(batch * heads, tokens, -1).to(dtype)
    valid = shared.valid.repeat_interleave(heads, dim=0)
    return keys, values, valid
