"""Per-cluster means (centroids ``k̄_j``, value means ``v̄_j``), torch reference.

The compensation replaces every key and value of a skipped cluster by these means, so they must be
the exact means of the members (not k-means' pre-update centroids). Empty clusters get zeros; their
size of 0 removes them from every later sum.
"""

from __future__ import annotations

import torch


def cluster_means(x: torch.Tensor, labels: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """``means[g, c] = Σ_{n: labels[g,n]=c} x[g, n] / sizes[g, c]`` (zeros where the size is 0)."""
    g, _, d = x.shape
    sums = torch.zeros((g, sizes.shape[1], d), dtype=x.dtype, device=x.device)
    sums.scatter_add_(1, labels.unsqueeze(-1).expand(-1, -1, d), x)
    return sums / sizes.clamp_min(1).to(x.dtype).unsqueeze(-1)
