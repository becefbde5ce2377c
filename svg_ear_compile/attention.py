"""SVG-EAR attention as one readable function over the kernel stages (DESIGN.md §2).

    cluster Q and K (k-means, warm-started) → sort tokens by cluster → cluster means →
    centroid mass p_ij → error probe ε̂_ij (EAR) → routing → block-sparse attention with the
    centroid compensation → tokens back in place.

Short sequences (``S < min_seq_len``), the first ``dense_layers`` layers and warm-up steps
(timestep above ``dense_above_timestep``) run exact attention. Inputs of any floating dtype run in
float32 (float64 stays float64) and come back in their own dtype.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

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


def _no_timer(stage: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def validate_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError naming the first problem with the (B, H, S, D) self-attention inputs."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"svg_ear_attention: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"svg_ear_attention: {name} must have rank 4 (B, H, S, D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"svg_ear_attention: {name} must be floating point, got {t.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"svg_ear_attention: q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"svg_ear_attention: q, k, v devices differ: {q.device}, {k.device}, {v.device}")
    if q.shape != k.shape:
        raise ValueError(
            f"svg_ear_attention: q {tuple(q.shape)} and k {tuple(k.shape)} must have the same shape "
            "(self-attention: same batch, heads, sequence length and head dim)"
        )
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"svg_ear_attention: v {tuple(v.shape)} must match k {tuple(k.shape)} in (B, H, S)")
    if 0 in q.shape or v.shape[-1] == 0:
        raise ValueError(f"svg_ear_attention: empty dimension in q {tuple(q.shape)} or v {tuple(v.shape)}")


def _resolve_impl(config: SvgEarConfig) -> str:
    if config.impl == "triton":
        raise NotImplementedError(
            "SvgEarConfig.impl='triton': the Triton kernels are not part of this version yet; "
            "use impl='auto' or impl='reference'"
        )
    return "reference"


def svg_ear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SvgEarConfig | None = None,
    *,
    state: SvgEarState | None = None,
    layer: int | None = None,
    timestep: torch.Tensor | float | None = None,
    return_stats: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Sparse self-attention with error-aware routing and centroid compensation.

    Args:
        q, k, v: ``(B, H, S, D)`` tensors (``v`` may have another head dim), after RoPE/QK-norm.
        config: settings; ``None`` uses :class:`SvgEarConfig` defaults.
        state: this layer's centroid cache; warm calls run ``kmeans_iters`` instead of
            ``kmeans_iters_init`` Lloyd steps.
        layer: layer index, for ``config.layer_overrides`` and ``config.dense_layers``.
        timestep: the model's timestep this call belongs to, for ``config.dense_above_timestep``.
        return_stats: also return a dict: ``density`` (exactly computed share of the S² area,
            mean over batch and heads), ``density_per_head``, ``dense`` (and ``reason``) when exact
            attention ran instead, cluster counts, and for inspection ``query_labels``/``key_labels``
            ``(B, H, S)`` and ``selected`` ``(B, H, QC, KC)``, the block map.

    Returns:
        ``(B, H, S, Dv)`` in ``q``'s dtype, and the stats dict when asked.

    Example:
        >>> import torch
        >>> from svg_ear_compile import SvgEarConfig, svg_ear_attention
        >>> q, k, v = torch.randn(3, 1, 2, 512, 64).unbind(0)
        >>> cfg = SvgEarConfig(num_q_clusters=16, num_k_clusters=32, min_seq_len=0, budget=1.0)
        >>> out = svg_ear_attention(q, k, v, cfg)
        >>> bool(torch.allclose(out, torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-5))
        True
    """
    validate_inputs(q, k, v)
    config = (config if config is not None else SvgEarConfig()).for_layer(layer)
    reason = dense_reason(q.shape[2], config, layer, timestep)
    if reason is not None:
        out, stats = F.scaled_dot_product_attention(q, k, v), {"density": 1.0, "dense": True, "reason": reason}
    else:
        out, stats = run_pipeline(q, k, v, config, state, _no_timer)
    return (out, stats) if return_stats else out


def dense_reason(
    seq_len: int, config: SvgEarConfig, layer: int | None, timestep: torch.Tensor | float | None
) -> str | None:
    """Why this call must run exact attention (short sequence, dense layer, warm-up step), or None."""
    if seq_len < config.min_seq_len:
        return f"S={seq_len} < min_seq_len={config.min_seq_len}"
    if layer is not None and layer < config.dense_layers:
        return f"layer {layer} < dense_layers={config.dense_layers}"
    cut = config.dense_above_timestep
    if cut is not None and timestep is not None:
        value = float(timestep.max()) if isinstance(timestep, torch.Tensor) else float(timestep)
        if value > cut:
            return f"warm-up: timestep {value:g} > dense_above_timestep={cut:g}"
    return None


def run_pipeline(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SvgEarConfig,
    state: SvgEarState | None,
    timer: StageTimer,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The sparse pipeline (no dense fallback); ``timer(stage)`` wraps each stage (benchmarks time with it)."""
    batch, heads, seq_len, head_dim = q.shape
    impl = _resolve_impl(config)

    compute_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    groups = batch * heads
    queries = q.reshape(groups, seq_len, head_dim).to(compute_dtype)
    keys = k.reshape(groups, seq_len, head_dim).to(compute_dtype)
    values = v.reshape(groups, seq_len, v.shape[-1]).to(compute_dtype)
    scale = 1.0 / math.sqrt(head_dim)
    num_q_clusters = min(config.num_q_clusters, seq_len)
    num_k_clusters = min(config.num_k_clusters, seq_len)

    state = state if state is not None else SvgEarState()
    with timer("kmeans_q"):
        q_centroids, q_labels, cold_q = _cluster(state, "query", queries, num_q_clusters, config)
    with timer("kmeans_k"):
        k_centroids, k_labels, cold_k = _cluster(state, "key", keys, num_k_clusters, config)
    state.update(q_centroids, k_centroids, cold=cold_q or cold_k)

    with timer("permute"):
        query_layout = permute_ref.cluster_layout(q_labels, num_q_clusters)
        key_layout = permute_ref.cluster_layout(k_labels, num_k_clusters)
        queries_sorted = permute_ref.permute(queries, query_layout.perm)
        keys_sorted = permute_ref.permute(keys, key_layout.perm)
        values_sorted = permute_ref.permute(values, key_layout.perm)
    with timer("stats"):
        query_means = cluster_stats_ref.cluster_means(queries, q_labels, query_layout.sizes)
        key_means = cluster_stats_ref.cluster_means(keys, k_labels, key_layout.sizes)
        value_means = cluster_stats_ref.cluster_means(values, k_labels, key_layout.sizes)
    with timer("mass"):
        mass = centroid_mass_ref.centroid_mass(query_means, key_means, key_layout.sizes, scale)
    log_error = None
    if config.routing == "error_aware" and (config.budget is None or config.budget < 1.0):
        with timer("probe"):
            log_error = probe_ref.log_error_probe(
                query_means, keys, values, k_labels, key_means, value_means, key_layout.sizes, scale
            )
    with timer("routing"):
        selected = routing_ref.route(mass, log_error, query_layout.sizes, key_layout.sizes, config)
        block_map = BlockMap.from_selection(selected, query_layout.sizes, key_layout.sizes)
    with timer("attention"):
        out_sorted = sparse_attention_ref.sparse_attention_ref(
            queries_sorted, keys_sorted, values_sorted, query_layout, key_layout, block_map,
            key_means, value_means, scale, config.compensation,
        )
    with timer("unpermute"):
        out = permute_ref.unpermute(out_sorted, query_layout.perm)
        out = out.reshape(batch, heads, seq_len, v.shape[-1]).to(q.dtype)
    density = block_map.density()
    stats = {
        "density": float(density.mean()),
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
    state: SvgEarState, kind: str, points: torch.Tensor, num_clusters: int, config: SvgEarConfig
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    init = state.warm_centroids(kind, points, num_clusters)
    cold = init is None
    if cold:
        init = kmeans_ref.strided_init(points, num_clusters)
    iters = config.kmeans_iters_init if cold else config.kmeans_iters
    centroids, labels = kmeans_ref.kmeans(points, init, iters)
    return centroids, labels, cold
