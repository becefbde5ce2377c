"""Centroid attention mass, torch reference.

``p_ij = softmax_j( s·q̄_i·k̄_j + log|K_j| )``: the attention that centroid ``q̄_i`` would give key
cluster ``j`` if all its ``|K_j|`` keys equalled ``k̄_j``. Empty key clusters get ``p = 0``.
"""

from __future__ import annotations

import torch


def centroid_logits(
    query_centroids: torch.Tensor, key_centroids: torch.Tensor, key_sizes: torch.Tensor, scale: float
) -> torch.Tensor:
    """``s·q̄_i·k̄_j + log|K_j|`` as ``(G, QC, KC)``; ``-inf`` for empty key clusters."""
    logits = scale * torch.bmm(query_centroids, key_centroids.transpose(1, 2))
    return logits + key_sizes.to(logits.dtype).log().unsqueeze(1)


def centroid_mass(
    query_centroids: torch.Tensor, key_centroids: torch.Tensor, key_sizes: torch.Tensor, scale: float
) -> torch.Tensor:
    """``p_ij`` as ``(G, QC, KC)``; every row sums to 1."""
    return torch.softmax(centroid_logits(query_centroids, key_centroids, key_sizes, scale), dim=-1)
