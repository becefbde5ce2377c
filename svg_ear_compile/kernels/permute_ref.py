"""Cluster-contiguous token order (SVG2's semantic-aware permutation), torch reference.

Sorting tokens by cluster label makes every cluster a contiguous range ``[offsets[c], offsets[c+1])``,
so a block (query cluster × key cluster) is a dense tile. ``unpermute`` puts results back in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ClusterLayout:
    """Where each cluster lives after sorting: ``perm[g, r]`` is the original index of sorted row r."""

    perm: torch.Tensor
    labels_sorted: torch.Tensor
    sizes: torch.Tensor
    offsets: torch.Tensor


def sort_labels(labels: torch.Tensor, num_clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(labels, dim=1, stable=True)`` of int64 labels in ``[0, num_clusters)``: the same
    ``(sorted labels, order)``, the sort run on the narrowest integer type that holds the labels (a
    radix sort makes one pass per 8 key bits: int16 keys take 2 passes where int64 take 8)."""
    narrow = torch.int16 if num_clusters <= 2**15 else torch.int32 if num_clusters <= 2**31 else torch.int64
    labels_sorted, order = torch.sort(labels.to(narrow), dim=1, stable=True)
    return labels_sorted.to(labels.dtype), order


def cluster_layout(labels: torch.Tensor, num_clusters: int) -> ClusterLayout:
    """Stable sort by label; ``sizes`` is ``(G, C)`` and ``offsets`` its exclusive prefix sum ``(G, C+1)``."""
    labels_sorted, perm = sort_labels(labels, num_clusters)
    sizes = torch.zeros(labels.shape[0], num_clusters, dtype=torch.int64, device=labels.device)
    sizes.scatter_add_(1, labels, torch.ones_like(labels))
    offsets = torch.nn.functional.pad(sizes.cumsum(1), (1, 0))
    return ClusterLayout(perm=perm, labels_sorted=labels_sorted, sizes=sizes, offsets=offsets)


def permute(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (G, N, D) in the order ``perm`` (G, N)."""
    return torch.gather(x, 1, perm.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def unpermute(x_sorted: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`permute`: row r of ``x_sorted`` goes back to position ``perm[g, r]``."""
    out = torch.empty_like(x_sorted)
    out.scatter_(1, perm.unsqueeze(-1).expand(-1, -1, x_sorted.shape[-1]), x_sorted)
    return out
