"""The tail's first moment ``s·Σ_j w_j (k̄_j − μ) v̄_jᵀ``, torch reference of :func:`.compensation_tail.tail_moment`."""

from __future__ import annotations

import torch


def tail_moment_ref(weights: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor,
                    mean_key: torch.Tensor, scale: float) -> torch.Tensor:
    """``(G·QC, D, Dv)``: ``out[g·QC + i] = scale · Σ_j weights[g, i, j]·(k̄_{g,j} − μ_{g,i}) v̄_{g,j}ᵀ``.

    ``weights`` ``(G, QC, KC)``, ``key_centroids`` ``(G, KC, D)``, ``value_means`` ``(G, KC, Dv)``,
    ``mean_key`` ``(G, QC, D)``. One group at a time, so the centred keys ``(QC, KC, D)`` stay small.
    """
    moments = []
    for g in range(weights.shape[0]):
        centred = key_centroids[g][None] - mean_key[g][:, None]  # (QC, KC, D)
        moments.append(scale * torch.einsum("ij,ijd,je->ide", weights[g], centred, value_means[g]))
    return torch.cat(moments)
