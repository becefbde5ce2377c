"""EAR's error probe: how badly the centroid would stand in for a block, torch reference.

For a query point ``p`` (a query-cluster centroid ``q̄_i``) and key cluster ``j`` with
``a_t = s·p·k_t`` and ``c = s·p·k̄_j``::

    ε̂_ij = Σ_{t∈K_j} ‖e^{a_t} v_t − e^{c} v̄_j‖²

the squared error the compensation makes on the softmax numerator. With a per-block max
``m = max(c, max_t a_t)``, ``E_t = e^{a_t−m}``, ``C = e^{c−m}`` and the centred form::

    ε̂ e^{−2m} = Σ_t E_t²‖v_t − v̄_j‖² + 2E_t(E_t − C)(v_t − v̄_j)·v̄_j + (E_t − C)²‖v̄_j‖²

every term is small when the block is well summarised, so nothing cancels catastrophically (the
raw expansion ``Σe^{2a}‖v‖² − 2e^{c}Σe^{a}v̄·v + |K|e^{2c}‖v̄‖²`` does). The probe returns
``log ε̂`` (``-inf`` for an empty cluster or an exact summary) so routing can work in log space.
"""

from __future__ import annotations

import torch

_MAX_ELEMENTS = 1 << 22


def log_error_probe(
    query_points: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    key_labels: torch.Tensor,
    key_centroids: torch.Tensor,
    value_means: torch.Tensor,
    key_sizes: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """``log ε̂`` as ``(G, R, KC)`` for ``R`` query points against every key cluster.

    ``keys``/``values``/``key_labels`` are in any token order; ``key_centroids`` and ``value_means``
    must be the exact member means (:func:`~svg_ear_compile.kernels.cluster_stats_ref.cluster_means`).
    Works on chunks of query points so at most ~4M logits exist at once.
    """
    g, n, _ = keys.shape
    num_clusters = key_centroids.shape[1]
    member_mean = torch.gather(value_means, 1, key_labels.unsqueeze(-1).expand(-1, -1, values.shape[-1]))
    deviation = values - member_mean
    deviation_sq = deviation.square().sum(-1).unsqueeze(1)
    deviation_dot_mean = (deviation * member_mean).sum(-1).unsqueeze(1)
    mean_sq = member_mean.square().sum(-1).unsqueeze(1)

    rows_per_chunk = max(1, _MAX_ELEMENTS // max(n, 1))
    out = []
    for start in range(0, query_points.shape[1], rows_per_chunk):
        points = query_points[:, start : start + rows_per_chunk]
        r = points.shape[1]
        token_logits = scale * torch.bmm(points, keys.transpose(1, 2))
        centroid_logits = scale * torch.bmm(points, key_centroids.transpose(1, 2))
        labels = key_labels.unsqueeze(1).expand(-1, r, -1)
        block_max = centroid_logits.scatter_reduce(-1, labels, token_logits, reduce="amax", include_self=True)
        token_max = torch.gather(block_max, -1, labels)
        e = torch.exp(token_logits - token_max)
        gap = e - torch.exp(torch.gather(centroid_logits, -1, labels) - token_max)
        terms = e.square() * deviation_sq + 2.0 * e * gap * deviation_dot_mean + gap.square() * mean_sq
        scaled_error = torch.zeros((g, r, num_clusters), dtype=terms.dtype, device=terms.device)
        scaled_error.scatter_add_(-1, labels, terms)
        out.append(scaled_error.clamp_min(0.0).log() + 2.0 * block_max)
    log_error = torch.cat(out, dim=1)
    return log_error.masked_fill((key_sizes == 0).unsqueeze(1), float("-inf"))
