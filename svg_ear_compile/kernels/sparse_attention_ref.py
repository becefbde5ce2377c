"""Block-sparse attention with the fused centroid compensation, torch reference.

For a query ``q`` of cluster ``i``, with ``S_i`` its selected key clusters and ``s = 1/√d``::

    o = ( Σ_{t∈S_i} e^{s·q·k_t} v_t + Σ_{j∉S_i} |K_j| e^{s·q·k̄_j} v̄_j )
        / ( Σ_{t∈S_i} e^{s·q·k_t}     + Σ_{j∉S_i} |K_j| e^{s·q·k̄_j} )

i.e. exact attention in which every skipped cluster's keys and values are replaced by their means.
Without compensation the second sums are dropped (SVG2). With ``exact_centroids = T`` only the ``T``
heaviest skipped clusters by ``ℓ_j = s·q̄·k̄_j + log|K_j|`` (``q̄`` the query cluster's mean) keep
their centroid term; the others (the *tail*) become one term per query, first order in
``u = q − q̄``: with ``w_j = e^{ℓ_j − M}`` (``M`` the tail's largest ``ℓ``), ``W = Σw``,
``μ = Σ w·k̄_j / W``, ``A = Σ w·v̄_j`` and ``C = Σ w·(k̄_j − μ) v̄_jᵀ``::

    Σ_tail |K_j| e^{s·q·k̄_j} v̄_j ≈ e^{M + s·u·μ} (A + s·uᵀC),   Σ_tail |K_j| e^{s·q·k̄_j} ≈ e^{M + s·u·μ} W

i.e. one key of logit ``s·u·μ + M + log W`` and value ``(A + s·uᵀC) / W``. *Shared* keys (HunyuanVideo's valid text
tokens) are attended exactly by every query and join the same softmax. Work goes per query
cluster and per chunk of its rows, so no ``N × N`` matrix is ever built.
"""

from __future__ import annotations

import torch

from .block_map import BlockMap
from .permute_ref import ClusterLayout

_MAX_ELEMENTS = 1 << 22


def sparse_attention_ref(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    query_layout: ClusterLayout,
    key_layout: ClusterLayout,
    block_map: BlockMap,
    key_centroids: torch.Tensor,
    value_means: torch.Tensor,
    scale: float,
    compensation: bool,
    shared_keys: torch.Tensor | None = None,
    shared_values: torch.Tensor | None = None,
    shared_valid: torch.Tensor | None = None,
    *,
    exact_centroids: int | None = None,
    query_means: torch.Tensor | None = None,
) -> torch.Tensor:
    """Output rows in the *sorted* query order, ``(G, N, Dv)``.

    ``queries`` are sorted by query cluster and ``keys``/``values`` by key cluster (the layouts'
    ``perm``); ``key_centroids``/``value_means`` are the exact member means. ``shared_keys``
    ``(G, T, D)`` / ``shared_values`` ``(G, T, Dv)`` are attended by every query; ``shared_valid``
    ``(G, T)`` bool drops padded ones (they enter neither the numerator nor the denominator).
    ``exact_centroids`` (with compensation) keeps that many centroid terms per query cluster and
    expands the rest around ``query_means`` ``(G, QC, D)``, the points ``q̄`` (see above).
    """
    if exact_centroids is not None and (not compensation or query_means is None):
        raise ValueError("sparse_attention_ref: exact_centroids needs compensation=True and query_means")
    out = torch.empty(queries.shape[:2] + values.shape[-1:], dtype=values.dtype, device=values.device)
    log_key_sizes = block_map.key_sizes.to(queries.dtype).log()
    query_offsets = query_layout.offsets.tolist()
    for g in range(queries.shape[0]):
        key_labels = key_layout.labels_sorted[g]
        for i in range(len(query_offsets[g]) - 1):
            begin, end = query_offsets[g][i], query_offsets[g][i + 1]
            if begin == end:
                continue
            row_selected = block_map.selected[g, i]
            token_index = row_selected[key_labels].nonzero().squeeze(1)
            block_keys, block_values = keys[g, token_index], values[g, token_index]
            bias = torch.zeros(token_index.shape[0], dtype=queries.dtype, device=queries.device)
            tail = None
            if compensation:
                skipped = (~row_selected & (block_map.key_sizes[g] > 0)).nonzero().squeeze(1)
                if exact_centroids is not None and len(skipped) > exact_centroids:
                    point = query_means[g, i].to(queries.dtype)
                    weight = scale * key_centroids[g, skipped] @ point + log_key_sizes[g, skipped]
                    order = torch.argsort(weight, descending=True)
                    rest = skipped[order[exact_centroids:]]
                    tail = _tail_term(weight[order[exact_centroids:]], key_centroids[g, rest], value_means[g, rest],
                                      point, scale)
                    skipped = skipped[order[:exact_centroids]]
                block_keys = torch.cat([block_keys, key_centroids[g, skipped]])
                block_values = torch.cat([block_values, value_means[g, skipped]])
                bias = torch.cat([bias, log_key_sizes[g, skipped]])
            if shared_keys is not None:
                valid = slice(None) if shared_valid is None else shared_valid[g]
                block_keys = torch.cat([block_keys, shared_keys[g, valid]])
                block_values = torch.cat([block_values, shared_values[g, valid]])
                bias = torch.cat([bias, bias.new_zeros(block_keys.shape[0] - bias.shape[0])])
            rows_per_chunk = max(1, _MAX_ELEMENTS // max(block_keys.shape[0], 1))
            for start in range(begin, end, rows_per_chunk):
                stop = min(end, start + rows_per_chunk)
                logits = scale * queries[g, start:stop] @ block_keys.T + bias
                if tail is None:
                    out[g, start:stop] = torch.softmax(logits, dim=-1) @ block_values
                    continue
                tail_logit, tail_value = tail(queries[g, start:stop])
                weights = torch.softmax(torch.cat([logits, tail_logit[:, None]], dim=1), dim=-1)
                out[g, start:stop] = weights[:, :-1] @ block_values + weights[:, -1:] * tail_value
    return out


def _tail_term(log_weights: torch.Tensor, centroids: torch.Tensor, value_means: torch.Tensor, point: torch.Tensor,
               scale: float):
    """The tail clusters (``ℓ_j``, ``k̄_j``, ``v̄_j``) as a function of queries ``(r, D)`` giving each one
    logit ``(r,)`` and value ``(r, Dv)``, first order around ``point`` (module docstring)."""
    peak = log_weights.max()
    weights = (log_weights - peak).exp()
    total = weights.sum()
    mean_key = weights @ centroids / total
    moment = (weights[:, None] * (centroids - mean_key)).T @ value_means  # C, (D, Dv)
    base_value = weights @ value_means

    def term(queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        offset = queries - point
        return scale * offset @ mean_key + peak + total.log(), (base_value + scale * offset @ moment) / total

    return term
