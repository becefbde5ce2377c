"""Batched Lloyd k-means with a warm start (SVG2's semantic clustering), torch reference.

Every group ``g`` clusters its own points: ``labels[g, n] = argmin_c ‖x_gn − c_gc‖²``, then each
centroid moves to the mean of its members; an empty cluster keeps its centroid. Iteration counts are
fixed, so nothing in the loop waits on the host.
"""

from __future__ import annotations

import torch

_CHUNK = 4096


def strided_init(points: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """Cold-start centroids: ``num_clusters`` points taken at evenly spaced token positions.

    Video tokens are laid out frame by frame, so an even stride samples space and time evenly.
    """
    n = points.shape[1]
    index = torch.arange(num_clusters, device=points.device) * n // num_clusters
    return points[:, index].clone()


def kmeans_assign(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Nearest centroid of every point, ``(G, N)`` int64, ties to the lowest index.

    Uses ``‖x − c‖² = ‖x‖² − 2x·c + ‖c‖²`` and drops ``‖x‖²`` (constant per point), chunked over
    points so the ``N × C`` distance matrix never exists whole.
    """
    centroid_sq = centroids.square().sum(-1).unsqueeze(1)
    labels = []
    for start in range(0, points.shape[1], _CHUNK):
        chunk = points[:, start : start + _CHUNK]
        distance = centroid_sq - 2.0 * torch.bmm(chunk, centroids.transpose(1, 2))
        labels.append(distance.argmin(dim=-1))
    return torch.cat(labels, dim=1)


def kmeans_update(points: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Mean of each cluster's members; clusters with no member keep their previous centroid."""
    g, c, d = centroids.shape
    sums = torch.zeros((g, c, d), dtype=points.dtype, device=points.device)
    sums.scatter_add_(1, labels.unsqueeze(-1).expand(-1, -1, d), points)
    counts = torch.zeros((g, c), dtype=points.dtype, device=points.device)
    counts.scatter_add_(1, labels, torch.ones_like(labels, dtype=points.dtype))
    means = sums / counts.clamp_min(1.0).unsqueeze(-1)
    return torch.where(counts.unsqueeze(-1) > 0, means, centroids)


def kmeans(
    points: torch.Tensor, init_centroids: torch.Tensor, iters: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``iters`` Lloyd steps from ``init_centroids``; returns ``(centroids, labels)``.

    The labels are those of the returned centroids (one assignment after the last update), so with
    ``iters=0`` this is a pure assignment to the warm-start centroids.
    """
    centroids = init_centroids.to(points.dtype)
    for _ in range(iters):
        centroids = kmeans_update(points, kmeans_assign(points, centroids), centroids)
    return centroids, kmeans_assign(points, centroids)
