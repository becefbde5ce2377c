"""What the per-layer search may choose: cluster counts, k-means iterations, kernel tiles, budget, γ.

Ranges scale with the sequence length S (upstream: QC 200–400 and KC ~1000 at 32k–119k tokens):

    query clusters  powers of two in [S/2048, S/64]   (at least 2 … 8)
    key clusters    powers of two in [S/256,  S/16]   (at least 4 … 16)
    budget          log-uniform in [0.03, 0.6]  (share of the S² area computed exactly)
    cost_exponent   γ in [0.5, 1.5]
    kmeans_iters    1 … 4 warm-started Lloyd steps
    kmeans_iters_init  5 … 50 Lloyd steps on a layer's first (cold) call, log-uniform
    exact_centroids {every centroid, 32, 64, 128}, only with compensation: how many skipped key
                    clusters keep their centroid logit, the rest expanded (cheap at many key clusters)
    block_m/block_n {the tile table's, 32, 64, 128}, only where the Triton kernel runs (on the reference
                    path they change nothing); the table's tiles come with their measured warps and stages

    >>> space = SearchSpace.for_layer(75_600, triton=True)
    >>> space.query_clusters, space.key_clusters
    ((64, 128, 256, 512, 1024), (512, 1024, 2048, 4096))
    >>> SearchSpace.for_layer(48, triton=False).key_clusters
    (4, 8, 16)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config import SvgEarConfig

BLOCK_SIZES = (None, 32, 64, 128)  # None: the tile table's (kernels/tiles.py)
BUDGET_RANGE = (0.03, 0.6)
EXACT_CENTROIDS = (None, 32, 64, 128)


def _powers_of_two(low: float, high: float, cap: int) -> tuple[int, ...]:
    values, p = [], 1
    while p <= min(high, cap):
        if p >= low:
            values.append(p)
        p *= 2
    return tuple(values) or (max(1, min(cap, int(high))),)


@dataclass(frozen=True)
class SearchSpace:
    query_clusters: tuple[int, ...]
    key_clusters: tuple[int, ...]
    kmeans_iters: tuple[int, int] = (1, 4)
    kmeans_iters_init: tuple[int, int] = (5, 50)
    budget: tuple[float, float] = BUDGET_RANGE
    cost_exponent: tuple[float, float] = (0.5, 1.5)
    block_sizes: tuple[int, ...] = ()
    exact_centroids: tuple[int | None, ...] = (None,)

    @classmethod
    def for_layer(cls, seq_len: int, *, triton: bool, compensation: bool = True) -> SearchSpace:
        """The space for a layer of ``seq_len`` tokens; kernel tiles only when ``triton`` runs, the
        compensation's form only with ``compensation``."""
        return cls(
            query_clusters=_powers_of_two(max(2, seq_len / 2048), max(8, seq_len / 64), min(seq_len, 1024)),
            key_clusters=_powers_of_two(max(4, seq_len / 256), max(16, seq_len / 16), min(seq_len, 4096)),
            block_sizes=BLOCK_SIZES if triton else (),
            exact_centroids=EXACT_CENTROIDS if compensation else (None,),
        )

    def suggest(self, trial: Any) -> dict[str, Any]:
        """A layer override (``SvgEarConfig`` fields) drawn through an Optuna trial."""
        params = {
            "num_q_clusters": trial.suggest_categorical("num_q_clusters", list(self.query_clusters)),
            "num_k_clusters": trial.suggest_categorical("num_k_clusters", list(self.key_clusters)),
            "kmeans_iters": trial.suggest_int("kmeans_iters", *self.kmeans_iters),
            "kmeans_iters_init": trial.suggest_int("kmeans_iters_init", *self.kmeans_iters_init, log=True),
            "budget": trial.suggest_float("budget", *self.budget, log=True),
            "cost_exponent": trial.suggest_float("cost_exponent", *self.cost_exponent),
        }
        if self.block_sizes:
            params["block_m"] = trial.suggest_categorical("block_m", list(self.block_sizes))
            params["block_n"] = trial.suggest_categorical("block_n", list(self.block_sizes))
        if len(self.exact_centroids) > 1:
            params["exact_centroids"] = trial.suggest_categorical("exact_centroids", list(self.exact_centroids))
        return params

    def conservative(self) -> dict[str, Any]:
        """A first trial likely to meet a PSNR target: most clusters, the largest budget, γ = 1."""
        params = {"num_q_clusters": self.query_clusters[-1], "num_k_clusters": self.key_clusters[-1],
                  "kmeans_iters": self.kmeans_iters[1], "kmeans_iters_init": self.kmeans_iters_init[1],
                  "budget": self.budget[1], "cost_exponent": 1.0}
        if self.block_sizes:
            params.update(block_m=None, block_n=None)
        if len(self.exact_centroids) > 1:
            params["exact_centroids"] = None  # every centroid: the most accurate compensation
        return params


def uniform_config(base: SvgEarConfig, seq_len: int, budget: float) -> SvgEarConfig:
    """The hand-set alternative to a profile: ``base`` at ``budget`` for every layer.

    Its cluster counts move to the nearest (log scale) in the per-layer search range for ``seq_len``,
    so the defaults 256 and 1,024 (upstream's choice at 32k-119k tokens) stay where they fit.

        >>> c = uniform_config(SvgEarConfig(), 75_600, 0.1)
        >>> c.num_q_clusters, c.num_k_clusters, c.budget
        (256, 1024, 0.1)
        >>> uniform_config(SvgEarConfig(), 9_216, 0.1).num_q_clusters
        128
    """
    space = SearchSpace.for_layer(seq_len, triton=False)
    return base.replace(num_q_clusters=nearest(space.query_clusters, base.num_q_clusters),
                        num_k_clusters=nearest(space.key_clusters, base.num_k_clusters), budget=budget)


def nearest(values: tuple[int, ...], wanted: int) -> int:
    """The value of ``values`` nearest ``wanted`` on a log scale (the smaller one on a tie)."""
    return min(values, key=lambda v: (abs(math.log2(v / wanted)), v))
