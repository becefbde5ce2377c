"""The per-layer cache that lets k-means warm-start (SVG2: ~50 cold iterations become 1–3).

One :class:`SvgEarState` belongs to one attention layer. It keeps the query and key centroids of the
last call; a call whose shape, dtype or device differs (another resolution, batch, head count or
cluster count) starts cold again instead of failing. With ``SvgEarConfig.refresh_every > 1`` it also
keeps the last call's clustering and block map (:class:`Routing`) for the calls that reuse it.

A denoising loop moves its timestep one way, so a call that moves it back starts a new video
(:meth:`SvgEarState.follow_timestep`): it starts cold, as after ``reset_centroid_caches()``, instead of
attending through the last video's clustering and block map.

    >>> import torch
    >>> from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
    >>> q = k = v = torch.randn(1, 2, 256, 64)
    >>> state = SvgEarState()
    >>> cfg = SvgEarConfig(num_q_clusters=16, num_k_clusters=32, min_seq_len=0, budget=0.3)
    >>> _ = svg_ear_attention(q, k, v, cfg, state=state)
    >>> state.warm
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .kernels.permute_ref import ClusterLayout


@dataclass(frozen=True)
class Routing:
    """One call's clustering and block map, reused by the next ``refresh_every − 1`` calls of its layer.

    ``key`` names what it was made for (config, input shapes, cluster counts): a call with another
    key routes afresh. Labels ``(G, S)``, ``selected`` ``(G, QC, KC)``, density ``(G,)``; ``plan``
    the Triton kernel's work lists and key ranges by name (``plan_work`` …; empty for the reference),
    so that reusing calls skip building them (at Wan2.1-14B 720p about 70 MB per layer)."""

    key: tuple
    query_layout: ClusterLayout
    key_layout: ClusterLayout
    query_labels: torch.Tensor
    key_labels: torch.Tensor
    selected: torch.Tensor
    density_per_head: torch.Tensor
    plan: dict[str, torch.Tensor] = field(default_factory=dict)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The layouts, block map and plan by name (the inputs of a reusing call, see ``pipeline``)."""
        return {**layout_tensors(self.query_layout, self.key_layout), "selected": self.selected, **self.plan}


_LAYOUT_FIELDS = ("perm", "labels_sorted", "sizes", "offsets")


def layout_tensors(query_layout: ClusterLayout, key_layout: ClusterLayout) -> dict[str, torch.Tensor]:
    """The two layouts' tensors by name, ``query_perm`` … ``key_offsets``; :func:`layouts_from` inverts it."""
    return {f"{kind}_{name}": getattr(layout, name) for kind, layout in (("query", query_layout), ("key", key_layout))
            for name in _LAYOUT_FIELDS}


def layouts_from(tensors: dict[str, torch.Tensor]) -> tuple[ClusterLayout, ClusterLayout]:
    """The query and key layouts named in ``tensors`` (as :func:`layout_tensors` names them)."""
    query, key = (ClusterLayout(*(tensors[f"{kind}_{name}"] for name in _LAYOUT_FIELDS)) for kind in ("query", "key"))
    return query, key


class SvgEarState:
    """Cached centroids ``(G, C, D)`` of one layer's queries and keys, and the layer's CUDA graphs.

    ``graphs`` maps an input signature and config to the captured warm pipeline
    (:mod:`svg_ear_compile.graphs`); ``None`` marks one that could not be captured.
    """

    def __init__(self) -> None:
        self.query_centroids: torch.Tensor | None = None
        self.key_centroids: torch.Tensor | None = None
        self.cold_starts = 0
        self.graphs: dict[tuple, object] = {}
        self.routing: Routing | None = None
        self.routing_uses = 0
        self.first_timestep: float | None = None  # this video's first and last timesteps (follow_timestep)
        self.last_timestep: float | None = None

    @property
    def warm(self) -> bool:
        return self.query_centroids is not None and self.key_centroids is not None

    def warm_centroids(self, kind: str, points: torch.Tensor, num_clusters: int) -> torch.Tensor | None:
        """The cached ``kind`` ("query" or "key") centroids if they fit ``points``, else ``None``."""
        cached = self.query_centroids if kind == "query" else self.key_centroids
        expected = (points.shape[0], num_clusters, points.shape[-1])
        if cached is None or tuple(cached.shape) != expected:
            return None
        if cached.device != points.device or cached.dtype != points.dtype:
            return None
        return cached

    def update(self, query_centroids: torch.Tensor, key_centroids: torch.Tensor, *, cold: bool) -> None:
        self.query_centroids = query_centroids.detach()
        self.key_centroids = key_centroids.detach()
        self.cold_starts += int(cold)

    def take_routing(self, key: tuple, refresh_every: int) -> Routing | None:
        """The kept routing if it was made for ``key`` and has served fewer than ``refresh_every``
        calls (this one counted), else None: the call routes afresh."""
        if self.routing is None or self.routing.key != key or self.routing_uses >= refresh_every:
            return None
        self.routing_uses += 1
        return self.routing

    def keep_routing(self, routing: Routing | None, served: int = 1) -> None:
        """Keep a fresh call's routing (None forgets it) as having served ``served`` calls: the fresh
        call is its first; more retire it sooner (``SvgEarConfig.stagger_refresh``)."""
        self.routing, self.routing_uses = routing, served

    def follow_timestep(self, timestep: float) -> bool:
        """Note the timestep of this layer's call; if it moves back against the way this video's timesteps
        went so far (down in Wan and HunyuanVideo; up works alike), start cold (a new video) and return True.

        Equal timesteps (the two calls of classifier-free guidance) and ones moving on (the next step) keep
        the state. A sampler that evaluates the model at a higher noise level within one video starts cold
        there too: slower, never wrong. A video's second distinct timestep sets the direction, so videos of
        a single timestep are not told apart."""
        first, last = self.first_timestep, self.last_timestep
        new_video = first is not None and last != first and (timestep - last) * (last - first) < 0
        if new_video:
            self.start_cold()
        if self.first_timestep is None:
            self.first_timestep = timestep
        self.last_timestep = timestep
        return new_video

    def start_cold(self) -> None:
        """Forget the centroids, the kept routing, the cold-start count and the timesteps noted (a new
        video); graphs stay."""
        self.query_centroids = self.key_centroids = None
        self.cold_starts = 0
        self.first_timestep = self.last_timestep = None
        self.keep_routing(None)

    def reset(self) -> None:
        """Forget everything, the captured graphs too."""
        self.start_cold()
        self.graphs.clear()
