"""The sparse SVG-EAR pipeline over the kernel stages (DESIGN.md §2), with no dense fallback.

    cluster Q and K (k-means, warm-started) → sort tokens by cluster → cluster means →
    centroid mass p_ij → error probe ε̂_ij (EAR) → routing → block-sparse attention with the
    centroid compensation (and any shared keys) → tokens back in place.

:func:`svg_ear_compile.svg_ear_attention` decides when this runs; benchmarks call it directly
with a stage timer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import types
from collections.abc import Callable
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
from .state import Routing, SvgEarState, layout_tensors, layouts_from

StageTimer = Callable[[str], contextlib.AbstractContextManager]


def no_timer(stage: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


@dataclasses.dataclass(frozen=True)
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
    refresh_phase: int = 0,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """SVG-EAR over ``(B, H, S, D)`` inputs; ``timer(stage)`` wraps each stage (benchmarks time with it).

    ``shared`` keys join every query's softmax exactly. ``refresh_phase``
    (``SvgEarConfig.stagger_refresh``) shortens the first routing kept after a cold start by that many
    calls. Returns the output in ``q``'s dtype and the stats described in
    :func:`svg_ear_compile.svg_ear_attention` (density over the ``S × S`` area).
    Warm calls of the Triton path on a GPU replay a CUDA graph where ``config.cuda_graph`` wants one
    (:func:`.graphs.wanted`) unless a stage timer is given.
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
    shares_routing = config.batch_shares_routing and batch > 1
    routed = {name: inputs[name][:heads] for name in ("queries", "keys")} if shares_routing else inputs
    warm = (state.warm_centroids("query", routed["queries"], num_q_clusters),
            state.warm_centroids("key", routed["keys"], num_k_clusters))
    cold_q, cold_k = warm[0] is None, warm[1] is None
    step = _SparseStep(config, kernels, timer, num_q_clusters, num_k_clusters, 1.0 / math.sqrt(head_dim),
                       (config.kmeans_iters_init if cold_q else config.kmeans_iters,
                        config.kmeans_iters_init if cold_k else config.kmeans_iters),
                       keep_layouts=config.refresh_every > 1, routing_groups=heads if shares_routing else None)
    can_graph = kernels and timer is no_timer and graphs.can_capture(q.device)
    key = (_config_key(config), graphs.signature(inputs))
    routing = None if cold_q or cold_k else state.take_routing(key, config.refresh_every)
    if routing is not None:
        reuse_inputs = {**inputs, **routing.tensors()}
        if can_graph and graphs.wanted(config.cuda_graph, groups * seq_len, reusing=True):
            outputs = graphs.run_graphed(state.graphs, ("reuse", *key), step.reuse, reuse_inputs, warm)[0]
        else:
            outputs = step.reuse(reuse_inputs, warm, None)[0]
        outputs.update(density_per_head=routing.density_per_head, query_labels=routing.query_labels,
                       key_labels=routing.key_labels, selected=routing.selected)
    else:
        if can_graph and graphs.wanted(config.cuda_graph, groups * seq_len) and not (cold_q or cold_k):
            outputs, centroids = graphs.run_graphed(state.graphs, key, step, inputs, warm)
        else:
            init = (kmeans_ref.strided_init(routed["queries"], num_q_clusters) if cold_q else warm[0],
                    kmeans_ref.strided_init(routed["keys"], num_k_clusters) if cold_k else warm[1])
            outputs, centroids = step(inputs, init, None)
        state.update(*centroids, cold=cold_q or cold_k)
        state.keep_routing(_kept_routing(key, outputs) if config.refresh_every > 1 else None,
                           served=1 + (refresh_phase if cold_q or cold_k else 0))

    density = outputs["density_per_head"]
    stats = {
        "density": density.mean(),  # a device tensor: reading it waits for the GPU, so only callers that ask do
        "density_per_head": density.reshape(batch, heads).float(),
        "dense": False,
        "impl": impl,
        "routing": config.routing,
        "compensation": config.compensation,
        "exact_centroids": config.exact_centroids,
        "num_q_clusters": num_q_clusters,
        "num_k_clusters": num_k_clusters,
        "cold_start": cold_q or cold_k,
        "reused_routing": routing is not None,
        "query_labels": outputs["query_labels"].reshape(batch, heads, seq_len),
        "key_labels": outputs["key_labels"].reshape(batch, heads, seq_len),
        "selected": outputs["selected"].reshape(batch, heads, num_q_clusters, num_k_clusters),
    }
    return outputs["out"].reshape(batch, heads, seq_len, v.shape[-1]).to(q.dtype), stats


@dataclasses.dataclass
class _SparseStep:
    """One call of the pipeline on grouped ``(G, S, D)`` inputs from given initial centroids.

    A function of its tensors only (no state, no host reads), so that :mod:`.graphs` can capture it.
    ``iters`` are the Lloyd iterations (assignment, then update) of the queries and keys. The labels
    are those of the last assignment; its update is the cluster means the attention needs anyway,
    so k-means runs ``iters − 1`` updates of its own and the means become the next call's centroids
    (``iters = 0``: the labels of the given centroids, which stay as they are).

    ``routing_groups`` (``SvgEarConfig.batch_shares_routing``: the heads of one video): only the first
    ``routing_groups`` groups cluster and route (centroids are theirs), and group ``g`` attends through
    the clustering and block map of group ``g mod routing_groups``, with its own key and value cluster
    means for the compensation; every group's attention runs in one launch.
    """

    config: SvgEarConfig
    kernels: types.SimpleNamespace | None
    timer: StageTimer
    num_q_clusters: int
    num_k_clusters: int
    scale: float
    iters: tuple[int, int]
    keep_layouts: bool = False  # also return the layouts (a kept routing needs them)
    routing_groups: int | None = None  # None: every group routes itself

    def __call__(self, inputs: dict[str, torch.Tensor], centroids: tuple[torch.Tensor, torch.Tensor],
                 out: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        config, triton, timer, scale = self.config, self.kernels, self.timer, self.scale
        queries, keys, values = inputs["queries"], inputs["keys"], inputs["values"]
        iters_q, iters_k = self.iters
        routed = self.routing_groups or queries.shape[0]
        videos = queries.shape[0] // routed
        kmeans = triton.kmeans.kmeans if triton else kmeans_ref.kmeans
        # Lloyd iterations but the last update, which is the cluster means computed below anyway.
        with timer("kmeans_q"):
            q_centroids, q_labels = kmeans(queries[:routed], centroids[0], max(iters_q - 1, 0))
        with timer("kmeans_k"):
            k_centroids, k_labels = kmeans(keys[:routed], centroids[1], max(iters_k - 1, 0))

        with timer("permute"):
            query_layout = _tiled(permute_ref.cluster_layout(q_labels, self.num_q_clusters), videos)
            key_layout = _tiled(permute_ref.cluster_layout(k_labels, self.num_k_clusters), videos)
            attention_queries, keys_sorted, values_sorted, (key_means, value_means) = self._sorted(
                inputs, query_layout, key_layout)
        with timer("stats"):
            # Routing needs the routed groups' query means; the compensation's tail needs every group's.
            mean_groups = queries.shape[0] if config.exact_centroids is not None else routed
            points = self._query_means(attention_queries, query_layout, mean_groups)
            query_means, query_sizes = points[:routed], query_layout.sizes[:routed]
        # Routing sees the routed groups only.
        key_sizes, routed_key_means, routed_value_means = (key_layout.sizes[:routed], key_means[:routed],
                                                          value_means[:routed])
        with timer("mass"):
            mass_dtype = torch.float64 if queries.dtype == torch.float64 else torch.float32
            mass = centroid_mass_ref.centroid_mass(query_means.to(mass_dtype), routed_key_means.to(mass_dtype),
                                                   key_sizes, scale)
        log_error = None
        if config.routing == "error_aware" and (config.budget is None or config.budget < 1.0):
            with timer("probe"):
                if triton:
                    log_error = triton.probe.log_error_probe(query_means, keys_sorted[:routed], values_sorted[:routed],
                                                             key_layout.offsets[:routed], routed_key_means,
                                                             routed_value_means, scale)
                else:
                    log_error = probe_ref.log_error_probe(query_means, keys[:routed], values[:routed], k_labels,
                                                          routed_key_means, routed_value_means, key_sizes, scale)
        with timer("routing"):
            selected = _tile(routing_ref.route(mass, log_error, query_sizes, key_sizes, config), videos)
            block_map = BlockMap.from_selection(selected, query_layout.sizes, key_layout.sizes, check_sizes=False)
        result, plan = self._attend(inputs, (attention_queries, keys_sorted, values_sorted), query_layout,
                                    key_layout, block_map, (key_means, value_means), points, out)
        outputs = {"out": result, "density_per_head": block_map.density(), "query_labels": _tile(q_labels, videos),
                   "key_labels": _tile(k_labels, videos), "selected": block_map.selected}
        if self.keep_layouts:  # what reusing calls take (see :class:`~.state.Routing`)
            outputs.update(layout_tensors(query_layout, key_layout), **plan)
        next_centroids = (_lloyd_update(query_means, query_sizes, q_centroids) if iters_q else q_centroids,
                          _lloyd_update(routed_key_means, key_sizes, k_centroids) if iters_k else k_centroids)
        return outputs, next_centroids

    def reuse(self, inputs: dict[str, torch.Tensor], centroids: tuple[torch.Tensor, torch.Tensor],
              out: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """A call that reuses a kept routing (its tensors among ``inputs``, named as by
        :meth:`~.state.Routing.tensors`): no k-means, probe or routing; the key and value cluster means
        that compensation needs come from this call's keys and values. Centroids pass through."""
        query_layout, key_layout = layouts_from(inputs)
        with self.timer("permute"):
            attention_queries, keys_sorted, values_sorted, (key_means, value_means) = self._sorted(
                inputs, query_layout, key_layout)
        with self.timer("stats"):
            query_means = None
            if self.config.exact_centroids is not None:
                query_means = self._query_means(attention_queries, query_layout, attention_queries.shape[0])
        block_map = BlockMap(inputs["selected"], query_layout.sizes, key_layout.sizes)
        result, _ = self._attend(inputs, (attention_queries, keys_sorted, values_sorted), query_layout, key_layout,
                                 block_map, (key_means, value_means), query_means, out)
        return {"out": result}, centroids

    def _sorted(self, inputs: dict[str, torch.Tensor], query_layout: permute_ref.ClusterLayout,
                key_layout: permute_ref.ClusterLayout) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                tuple[torch.Tensor, torch.Tensor]]:
        """Queries as the attention reads them (Triton: in place, through the query permutation; the
        reference: in query-cluster order), keys and values in key-cluster order, and the key
        centroids k̄_j and value means v̄_j (Triton: one pass over the unsorted keys and values)."""
        queries, keys, values = inputs["queries"], inputs["keys"], inputs["values"]
        if self.kernels:
            *sorted_kv, key_means, value_means = self.kernels.cluster_stats.sorted_with_stats(
                keys, values, key_layout.perm, key_layout.offsets)
            return queries, *sorted_kv, (key_means, value_means)
        queries_sorted, keys_sorted, values_sorted = (permute_ref.permute(x, layout.perm) for x, layout in
                                                      ((queries, query_layout), (keys, key_layout),
                                                       (values, key_layout)))
        key_stats = tuple(cluster_stats_ref.cluster_means(x, key_layout.labels_sorted, key_layout.sizes)
                          for x in (keys_sorted, values_sorted))
        return queries_sorted, keys_sorted, values_sorted, key_stats

    def _query_means(self, attention_queries: torch.Tensor, query_layout: permute_ref.ClusterLayout,
                     groups: int) -> torch.Tensor:
        """Query cluster means q̄_i of the first ``groups`` groups, from the queries :meth:`_sorted` gave."""
        if self.kernels:
            return self.kernels.cluster_stats.segment_means(attention_queries[:groups], query_layout.offsets[:groups],
                                                            row_index=query_layout.perm[:groups])[0]
        return cluster_stats_ref.cluster_means(attention_queries[:groups], query_layout.labels_sorted[:groups],
                                               query_layout.sizes[:groups])

    def _attend(self, inputs: dict[str, torch.Tensor], sorted_qkv: tuple[torch.Tensor, ...],
                query_layout: permute_ref.ClusterLayout, key_layout: permute_ref.ClusterLayout, block_map: BlockMap,
                key_stats: tuple[torch.Tensor, torch.Tensor], query_means: torch.Tensor | None,
                out: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Block-sparse attention with compensation (and shared keys), rows back in their original order,
        and the Triton path's plan tensors (taken from ``inputs`` when a reusing call has them, else built)
        for the calls that reuse this routing. ``query_means`` (every group's q̄_i) are read only with
        ``config.exact_centroids``."""
        shared_args = tuple(inputs[name] for name in _SHARED_NAMES if name in inputs)
        attention_args = (*sorted_qkv, query_layout, key_layout, block_map, *key_stats, self.scale,
                          self.config.compensation, *shared_args)
        tail_args = {"exact_centroids": self.config.exact_centroids, "query_means": query_means}
        if self.kernels:
            queries = inputs["queries"]
            tiles = self.kernels.tiles.tile_config(queries.shape[-1], queries.shape[1], queries.device,
                                                   block_m=self.config.block_m, block_n=self.config.block_n,
                                                   density=self.config.budget)
            launch = dict(block_m=tiles.block_m, block_n=tiles.block_n, remainder_m=tiles.remainder_m)
            module = self.kernels.sparse_attention
            plan = self.kernels.attention_plan.plan_from(inputs)
            with self.timer("plan"):
                if plan is None:
                    num_shared = inputs["shared_keys"].shape[1] if "shared_keys" in inputs else 0
                    plan = module.sparse_attention_plan(query_layout, key_layout, block_map, self.config.compensation,
                                                        num_shared=num_shared,
                                                        exact_centroids=self.config.exact_centroids, **launch)
            with self.timer("attention"):  # writes the rows back in place: no separate unpermute
                result = module.sparse_attention(*attention_args, num_warps=tiles.num_warps,
                                                 num_stages=tiles.num_stages, out=out, plan=plan, queries_in_place=True,
                                                 **launch, **tail_args)
            return result, self.kernels.attention_plan.plan_tensors(plan)
        with self.timer("attention"):
            out_sorted = sparse_attention_ref.sparse_attention_ref(*attention_args, **tail_args)
        with self.timer("unpermute"):
            return permute_ref.unpermute(out_sorted, query_layout.perm), {}


_SHARED_NAMES = ("shared_keys", "shared_values", "shared_valid")


def _tile(t: torch.Tensor, copies: int) -> torch.Tensor:
    """``copies`` copies of ``t`` along its first (group) axis (``t`` itself for one)."""
    return t if copies == 1 else t.repeat(copies, *(1,) * (t.dim() - 1))


def _tiled(layout: permute_ref.ClusterLayout, copies: int) -> permute_ref.ClusterLayout:
    """The layout of ``copies`` batches of groups that share ``layout``'s clustering."""
    return layout if copies == 1 else permute_ref.ClusterLayout(*(_tile(getattr(layout, f.name), copies)
                                                                  for f in dataclasses.fields(layout)))


def _kept_routing(key: tuple, outputs: dict[str, torch.Tensor]) -> Routing:
    """The routing of a fresh call's ``outputs`` (which hold its layouts when ``refresh_every > 1``)."""
    return Routing(key, *layouts_from(outputs), outputs["query_labels"], outputs["key_labels"],
                   outputs["selected"], outputs["density_per_head"],
                   plan={name: t for name, t in outputs.items() if name.startswith("plan_")})


def _lloyd_update(means: torch.Tensor, sizes: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """The last Lloyd update from this call's cluster means: an empty cluster keeps its centroid."""
    return torch.where((sizes > 0).unsqueeze(-1), means.to(previous.dtype), previous)


def _config_key(config: SvgEarConfig) -> tuple:
    """The config's fields as a hashable tuple (per-layer overrides aside: they are resolved by now)."""
    return tuple(getattr(config, name) for name in config_fields() if name != "layer_overrides")


def _triton_kernels() -> types.SimpleNamespace:
    """The Triton kernel modules, imported on first use (importing the package never loads Triton)."""
    from .kernels import attention_plan, cluster_stats, kmeans, probe, sparse_attention, tiles

    return types.SimpleNamespace(attention_plan=attention_plan, cluster_stats=cluster_stats, kmeans=kmeans,
                                 probe=probe, sparse_attention=sparse_attention, tiles=tiles)


def _grouped_shared(shared: SharedKeys, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    batch, heads, tokens, _ = shared.keys.shape
    return {"shared_keys": shared.keys.reshape(batch * heads, tokens, -1).to(dtype),
            "shared_values": shared.values.reshape(batch * heads, tokens, -1).to(dtype),
            "shared_valid": shared.valid.repeat_interleave(heads, dim=0)}
