"""The per-layer centroid cache that lets k-means warm-start (SVG2: ~50 cold iterations become 1–3).

One :class:`SvgEarState` belongs to one attention layer. It keeps the query and key centroids of the
last call; a call whose shape, dtype or device differs (another resolution, batch, head count or
cluster count) starts cold again instead of failing.

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

import torch


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

    def reset(self) -> None:
        self.query_centroids = self.key_centroids = None
        self.graphs.clear()
