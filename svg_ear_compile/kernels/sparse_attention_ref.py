"""Block-sparse attention with the fused centroid compensation, torch reference.

For a query ``q`` of cluster ``i``, with ``S_i`` its selected key clusters and ``s = 1/√d``::

    o = ( Σ_{t∈S_i} e^{s·q·k_t} v_t + Σ_{j∉S_i} |K_j| e^{s·q·k̄_j} v̄_j )
        / ( Σ_{t∈S_i} e^{s·q·k_t}     + Σ_{j∉S_i} |K_j| e^{s·q·k̄_j} )

i.e. exact attention in which every skipped cluster's keys and values are replaced by their means.
Without compensation the second sums are dropped (SVG2). *Shared* keys (HunyuanVideo's valid text
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
) -> torch.Tensor:
    """Output rows in the *sorted* query order, ``(G, N, Dv)``.

    ``queries`` are sorted by query cluster and ``keys``/``values`` by key cluster (the layouts'
    ``perm``); ``key_centroids``/``value_means`` are the exact member means. ``shared_keys``
    ``(G, T, D)`` / ``shared_values`` ``(G, T, Dv)`` are attended by every query; ``shared_valid``
    ``(G, T)`` bool drops padded ones (they enter neither the numerator nor the denominator).
    """
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
            if compensation:
                skipped = (~row_selected & (block_map.key_sizes[g] > 0)).nonzero().squeeze(1)
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
                out[g, start:stop] = torch.softmax(logits, dim=-1) @ block_values
    return out
