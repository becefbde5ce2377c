"""Batched Lloyd k-means (SVG2's semantic clustering) in Triton; same contract as ``kmeans_ref``.

Assignment: ``labels[g, n] = argmin_c ‖c_gc‖² − 2·x_gn·c_gc`` (``‖x‖²`` is constant per point),
ties to the lowest index. One program holds a tile of points and walks the centroids tile by tile,
keeping the running minimum and its index in registers, so the ``N × C`` distance matrix never
exists, not even per tile in memory.

Update: ``c_gc ← mean of {x_gn : labels[g, n] = c}``, an empty cluster keeps its centroid. The labels
are sorted (``torch.sort``, on int16 keys), ``searchsorted`` turns the sorted labels into cluster ranges, and
:func:`~svg_ear_compile.kernels.cluster_stats.segment_means` sums each range through the sort
permutation: one program per cluster, no atomics, no copy of the points.

Iteration counts are fixed and nothing in the loop reads a value back to the host.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .cluster_stats import segment_means
from .permute_ref import sort_labels

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_PRECISIONS = ("ieee", "tf32", "tf32x3")


@triton.jit
def _assign_kernel(
    points_ptr, centroids_ptr, labels_ptr,
    N, C, D,
    stride_pg, stride_pn, stride_pd,
    stride_cg, stride_cc, stride_cd,
    stride_lg, stride_ln,
    BLOCK_N: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_D: tl.constexpr, INPUT_PRECISION: tl.constexpr,
):
    group = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    dims = tl.arange(0, BLOCK_D)
    points = tl.load(points_ptr + group * stride_pg + rows[:, None] * stride_pn + dims[None, :] * stride_pd,
                     mask=(rows < N)[:, None] & (dims < D)[None, :], other=0.0)
    best = tl.full([BLOCK_N], float("inf"), dtype=tl.float32)
    best_index = tl.zeros([BLOCK_N], dtype=tl.int32)
    for tile_start in range(0, C, BLOCK_C):
        cols = tile_start + tl.arange(0, BLOCK_C)
        centroids = tl.load(centroids_ptr + group * stride_cg + cols[:, None] * stride_cc + dims[None, :] * stride_cd,
                            mask=(cols < C)[:, None] & (dims < D)[None, :], other=0.0)
        centroid_f32 = centroids.to(tl.float32)
        centroid_sq = tl.sum(centroid_f32 * centroid_f32, axis=1)
        dots = tl.dot(points, tl.trans(centroids), input_precision=INPUT_PRECISION)
        distance = centroid_sq[None, :] - 2.0 * dots
        distance = tl.where((cols < C)[None, :], distance, float("inf"))
        tile_best, tile_index = tl.min(distance, axis=1, return_indices=True, return_indices_tie_break_left=True)
        # Strict '<': on a tie the earlier (lower-index) tile keeps the point.
        better = tile_best < best
        best = tl.where(better, tile_best, best)
        best_index = tl.where(better, tile_start + tile_index, best_index)
    tl.store(labels_ptr + group * stride_lg + rows * stride_ln, best_index.to(tl.int64), mask=rows < N)


def _check(points: torch.Tensor, centroids: torch.Tensor) -> None:
    for name, t in (("points", points), ("centroids", centroids)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"kmeans: {name} must be a (G, ·, D) tensor, got {shape}")
        if t.dtype not in _DTYPES:
            raise ValueError(f"kmeans: {name} must be float16, bfloat16 or float32, got {t.dtype}")
    if centroids.shape[0] != points.shape[0] or centroids.shape[2] != points.shape[2]:
        raise ValueError(f"kmeans: centroids {tuple(centroids.shape)} must be (G, C, D) for points "
                         f"{tuple(points.shape)} (same G and D)")
    if centroids.shape[1] < 1:
        raise ValueError("kmeans: centroids must hold at least one cluster (C >= 1)")
    if centroids.dtype != points.dtype or centroids.device != points.device:
        raise ValueError(f"kmeans: centroids ({centroids.dtype}, {centroids.device}) must match points "
                         f"({points.dtype}, {points.device})")


def kmeans_assign(
    points: torch.Tensor,
    centroids: torch.Tensor,
    *,
    out: torch.Tensor | None = None,
    block_n: int = 128,
    block_c: int = 64,
    input_precision: str = "ieee",
) -> torch.Tensor:
    """Nearest centroid of every point: ``(G, N)`` int64 for points ``(G, N, D)``, centroids ``(G, C, D)``.

    ``input_precision`` is ``tl.dot``'s for float32 inputs: ``"ieee"`` (matches the reference),
    ``"tf32x3"`` (near-fp32, on tensor cores) or ``"tf32"`` (fast; flips near-ties); fp16/bf16 inputs
    ignore it. The default tiles are the fastest of ``benchmarks/sweep_stage_tiles.py`` on an H100.
    """
    _check(points, centroids)
    if input_precision not in _PRECISIONS:
        raise ValueError(f"kmeans_assign: input_precision must be one of {_PRECISIONS}, got {input_precision!r}")
    for name, block in (("block_n", block_n), ("block_c", block_c)):
        if block < 16 or block & (block - 1):
            raise ValueError(f"kmeans_assign: {name} must be a power of two >= 16 (tl.dot), got {block}")
    groups, n, d = points.shape
    if out is None:
        out = torch.empty((groups, n), dtype=torch.int64, device=points.device)
    if tuple(out.shape) != (groups, n) or out.dtype != torch.int64 or out.device != points.device:
        raise ValueError(f"kmeans_assign: out must be int64 of shape {(groups, n)} on {points.device}, "
                         f"got {out.dtype} of shape {tuple(out.shape)} on {out.device}")
    if out.numel() == 0:
        return out
    _assign_kernel[(triton.cdiv(n, block_n), groups)](
        points, centroids, out, n, centroids.shape[1], d,
        *points.stride(), *centroids.stride(), *out.stride(),
        BLOCK_N=block_n, BLOCK_C=block_c, BLOCK_D=max(16, triton.next_power_of_2(d)),
        # fp16/bf16 operands take the usual tensor-core path; the setting only means something for fp32.
        INPUT_PRECISION=input_precision if points.dtype == torch.float32 else "tf32",
    )
    return out


def kmeans_update(points: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor,
                  *, block_n: int = 32) -> torch.Tensor:
    """Mean of each cluster's members ``(G, C, D)``; clusters with no member keep their previous centroid."""
    _check(points, centroids)
    if tuple(labels.shape) != tuple(points.shape[:2]) or labels.dtype != torch.int64:
        raise ValueError(f"kmeans_update: labels must be int64 of shape {tuple(points.shape[:2])}, "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    groups, clusters = centroids.shape[:2]
    labels_sorted, order = sort_labels(labels, clusters)
    bounds = torch.arange(clusters + 1, device=labels.device).expand(groups, -1).contiguous()
    offsets = torch.searchsorted(labels_sorted, bounds)
    new_centroids, _ = segment_means(points, offsets, row_index=order, fallback=centroids, block_n=block_n)
    return new_centroids


def kmeans(
    points: torch.Tensor,
    init_centroids: torch.Tensor,
    iters: int,
    *,
    block_n: int = 128,
    block_c: int = 64,
    input_precision: str = "ieee",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``iters`` Lloyd steps from ``init_centroids``; returns ``(centroids, labels)``.

    The labels are those of the returned centroids (one assignment after the last update), so with
    ``iters=0`` this is a pure assignment to the warm-start centroids. The keyword arguments go to
    :func:`kmeans_assign`.
    """
    if iters < 0:
        raise ValueError(f"kmeans: iters must be >= 0, got {iters}")
    centroids = init_centroids.to(points.dtype)
    labels = torch.empty(points.shape[:2], dtype=torch.int64, device=points.device)
    tiles = {"block_n": block_n, "block_c": block_c, "input_precision": input_precision}
    for _ in range(iters):
        centroids = kmeans_update(points, kmeans_assign(points, centroids, out=labels, **tiles), centroids)
    return centroids, kmeans_assign(points, centroids, out=labels, **tiles)
