"""The compensation tail's tables from its log weights, torch reference of :func:`.compensation_tail.tail_tables`."""

from __future__ import annotations

import math

import torch


def tail_tables_ref(log_weight: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor,
                    scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per block-map row ``r = g·QC + i``, with ``w = softmax(log_weight[g, i])`` over the tail (−inf: outside):
    ``μ = Σ w·k̄_j`` ``(G·QC, D)``, ``log₂ Σ e^ℓ`` ``(G·QC,)``, ``A = Σ w·v̄_j`` ``(G·QC, Dv)`` and
    ``s·Σ_j w_j (k̄_j − μ) v̄_jᵀ`` ``(G·QC, D, Dv)``; a row with an empty tail gives ``−inf`` and zeros.

    ``log_weight`` ``(G, QC, KC)``, ``key_centroids`` ``(G, KC, D)``, ``value_means`` ``(G, KC, Dv)``.
    """
    in_tail = log_weight > float("-inf")
    log_total = torch.logsumexp(log_weight, -1)  # −inf for an empty tail
    weights = torch.where(in_tail, (log_weight - log_total.nan_to_num(neginf=0.0)[..., None]).exp(), 0.0)
    centroids = key_centroids[:, None].where(in_tail[..., None], 0.0)  # (G, QC, KC, D): no 0·inf
    means = value_means[:, None].where(in_tail[..., None], 0.0)
    mean_key = torch.einsum("gij,gijd->gid", weights, centroids)
    value = torch.einsum("gij,gije->gie", weights, means)
    slope = scale * torch.einsum("gij,gijd,gije->gide", weights, centroids - mean_key[:, :, None], means)
    rows = log_weight.shape[0] * log_weight.shape[1]
    return (mean_key.reshape(rows, -1), (log_total / math.log(2)).reshape(rows), value.reshape(rows, -1),
            slope.reshape(rows, *slope.shape[2:]))
