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

from . import graphs
from .config import SvgEarConfig, config_fields
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
    Warm calls of the Triton path on a GPU replay a CUDA graph (``config.cuda_graph``) unless a
    stage timer is given.
    """
    batch, heads, seq_len, head_dim = q.shape
    impl = resolve_impl(config, q.device, q.dtype)
    kernels = _triton_kernels() if impl == "triton" else None

    # The reference computes in float32 (float64 stays); the Triton kernels take 16-bit inputs as they
    # are (tensor cores) and accumulate in float32.
    compute_dtype = q.dtype if kernels else (torch.float64 if q.dtype == torch.float64 else torch.float32)
    groups = batch * heads
    inputs = {"queries": q.reshape(groups, seq_len, head_dim).to(compute_dtype),
              "keys": k.reshape(groups, seq_len, head_dim).to(compute_dtype),
              "values": v.reshape(groups, seq_len, v.shape[-1]).to(compute_dtype)}
    if shared is not None:
        inputs.update(_grouped_shared(shared, compute_dtype))
    num_q_clusters, num_k_clusters = min(config.num_q_clusters, seq_len), min(config.num_k_clusters, seq_len)
    state = state if state is not None else SvgEarState()
    warm = (state.warm_centroids("query", inputs["queries"], num_q_clusters),
            state.warm_centroids("key", inputs["keys"], num_k_clusters))
    cold_q, cold_k = warm[0] is None, warm[1] is None
    step = _SparseStep(config, kernels, timer, num_q_clusters, num_k_clusters, 1.0 / math.sqrt(head_dim),
                       (config.kmeans_iters_init if cold_q else config.kmeans_iters,
                        config.kmeans_iters_init if cold_k else config.kmeans_iters))
    if kernels and config.cuda_graph and timer is no_timer and not (cold_q or cold_k) and graphs.can_capture(q.device):
        key = (_config_key(config), graphs.signature(inputs))
        outputs, centroids = graphs.run_graphed(state.graphs, key, step, inputs, warm)
    else:
        init = (kmeans_ref.strided_init(inputs["queries"], num_q_clusters) if cold_q else warm[0],
                kmeans_ref.strided_init(inputs["keys"], num_k_clusters) if cold_k else warm[1])
        outputs, centroids = step(inputs, init, None)
    state.update(*centroids, cold=cold_q or cold_k)

    density = outputs["density_per_head"]
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
        "query_labels": outputs["query_labels"].reshape(batch, heads, seq_len),
        "key_labels": outputs["key_labels"].reshape(batch, heads, seq_len),
        "selected": outputs["selected"].reshape(batch, heads, num_q_clusters, num_k_clusters),
    }
    return outputs["out"].reshape(batch, heads, seq_len, v.shape[-1]).to(q.dtype), stats


@dataclass
class _SparseStep:
    """One call of the pipeline on grouped ``(G, S, D)`` inputs from given initial centroids.

    A function of its tensors only (no state, no host reads), so that :mod:`.graphs` can capture it.
    ``iters`` are the Lloyd iterations (assignment, then update) of the queries and keys. The labels
    are those of the last assignment; its update is the cluster means the attention needs anyway,
    so k-means runs ``iters − 1`` updates of its own and the means become the next call's centroids
    (``iters = 0``: the labels of the given centroids, which stay as they are).
    """

    config: SvgEarConfig
    kernels: types.SimpleNamespace | None
    timer: StageTimer
    num_q_clusters: int
    num_k_clusters: int
    scale: float
    iters: tuple[int, int]

    def __call__(self, inputs: dict[str, torch.Tensor], centroids: tuple[torch.Tensor, torch.Tensor],
                 out: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        config, triton, timer, scale = self.config, self.kernels, self.timer, self.scale
        queries, keys, values = inputs["queries"], inputs["keys"], inputs["values"]
        iters_q, iters_k = self.iters
        kmeans = triton.kmeans.kmeans if triton else kmeans_ref.kmeans
        # Lloyd iterations but the last update, which is the cluster means computed below anyway.
        with timer("kmeans_q"):
            q_centroids, q_labels = kmeans(queries, centroids[0], max(iters_q - 1, 0))
        with timer("kmeans_k"):
            k_centroids, k_labels = kmeans(keys, centroids[1], max(iters_k - 1, 0))

        with timer("permute"):
            query_layout = permute_ref.cluster_layout(q_labels, self.num_q_clusters)
            key_layout = permute_ref.cluster_layout(k_labels, self.num_k_clusters)
            if triton:
                queries_sorted = triton.permute.permute_rows(queries, query_layout.perm)[0]
                keys_sorted, values_sorted = triton.permute.permute_rows(keys, key_layout.perm, values)
            else:
                queries_sorted = permute_ref.permute(queries, query_layout.perm)
                keys_sorted = permute_ref.permute(keys, key_layout.perm)
                values_sorted = permute_ref.permute(values, key_layout.perm)
        with timer("stats"):
            if triton:
                query_means = triton.cluster_stats.segment_means(queries_sorted, query_layout.offsets)[0]
                key_means, value_means = triton.cluster_stats.cluster_stats(keys_sorted, values_sorted,
                                                                            key_layout.offsets)
            else:
                query_means = cluster_stats_ref.cluster_means(queries, q_labels, query_layout.sizes)
                key_means = cluster_stats_ref.cluster_means(keys, k_labels, key_layout.sizes)
                value_means = cluster_stats_ref.cluster_means(values, k_labels, key_layout.sizes)
        with timer("mass"):
            mass_dtype = torch.float64 if queries.dtype == torch.float64 else torch.float32
            mass = centroid_mass_ref.centroid_mass(query_means.to(mass_dtype), key_means.to(mass_dtype),
                                                   key_layout.sizes, scale)
        log_error = None
        if config.routing == "error_aware" and (config.budget is None or config.budget < 1.0):
            with timer("probe"):
                if triton:
                    log_error = triton.probe.log_error_probe(query_means, keys_sorted, values_sorted,
                                                             key_layout.offsets, key_means, value_means, scale)
                else:
                    log_error = probe_ref.log_error_probe(query_means, keys, values, k_labels, key_means,
                                                          value_means, key_layout.sizes, scale)
        with timer("routing"):
            selected = routing_ref.route(mass, log_error, query_layout.sizes, key_layout.sizes, config)
            block_map = BlockMap.from_selection(selected, query_layout.sizes, key_layout.sizes, check_sizes=False)
        shared_args = tuple(inputs[name] for name in _SHARED_NAMES if name in inputs)
        attention_args = (queries_sorted, keys_sorted, values_sorted, query_layout, key_layout, block_map,
                          key_means, value_means, scale, config.compensation, *shared_args)
        if triton:
            tiles = triton.tiles.tile_config(queries.shape[-1], queries.shape[1], queries.device,
                                             block_m=config.block_m, block_n=config.block_n)
            with timer("attention"):  # writes the rows back in place: no separate unpermute
                result = triton.sparse_attention.sparse_attention(
                    *attention_args, block_m=tiles.block_m, block_n=tiles.block_n, num_warps=tiles.num_warps,
                    num_stages=tiles.num_stages, remainder_m=tiles.remainder_m, out=out)
        else:
            with timer("attention"):
                out_sorted = sparse_attention_ref.sparse_attention_ref(*attention_args)
            with timer("unpermute"):
                result = permute_ref.unpermute(out_sorted, query_layout.perm)
        outputs = {"out": result, "density_per_head": block_map.density(), "query_labels": q_labels,
                   "key_labels": k_labels, "selected": block_map.selected}
        next_centroids = (_lloyd_update(query_means, query_layout.sizes, q_centroids) if iters_q else q_centroids,
                          _lloyd_update(key_means, key_layout.sizes, k_centroids) if iters_k else k_centroids)
        return outputs, next_centroids


_SHARED_NAMES = ("shared_keys", "shared_values", "shared_valid")


def _lloyd_update(means: torch.Tensor, sizes: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """The last Lloyd update from this call's cluster means: an empty cluster keeps its centroid."""
    return torch.where((sizes > 0).unsqueeze(-1), means.to(previous.dtype), previous)


def _config_key(config: SvgEarConfig) -> tuple:
    """The config's fields as a hashable tuple (per-layer overrides aside: they are resolved by now)."""
    return tuple(getattr(config, name) for name in config_fields() if name != "layer_overrides")


def _triton_kernels() -> types.SimpleNamespace:
    """The Triton kernel modules, imported on first use (importing the package never loads Triton)."""
    from .kernels import cluster_stats, kmeans, permute, probe, sparse_attention, tiles

    return types.SimpleNamespace(cluster_stats=cluster_stats, kmeans=kmeans, permute=permute, probe=probe,
                                 sparse_attention=sparse_attention, tiles=tiles)


def _grouped_shared(shared: SharedKeys, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    batch, heads, tokens, _ = shared.keys.shape
    return {"shared_keys": shared.keys.reshape(batch * heads, tokens, -1).to(dtype),
            "shared_values": shared.values.reshape(batch * heads, tokens, -1).to(dtype),
            "shared_valid": shared.valid.repeat_interleave(heads, dim=0)}
