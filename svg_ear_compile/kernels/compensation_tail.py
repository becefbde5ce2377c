"""Tables of the compensation with ``exact_centroids = T``: the exact centroids and the expanded tail.

For query cluster ``i`` of group ``g`` and its skipped non-empty key clusters ``j``, ranked by
``ℓ_j = s·q̄_i·k̄_j + log|K_j|`` (``q̄_i`` the query cluster's mean), the ``T`` heaviest keep their
centroid logit in the attention kernel; the rest (the *tail*) become one key per query
``q = q̄_i + u`` with (:mod:`.sparse_attention_ref` derives it)::

    logit = s·u·μ + M + log W          value = A/W + uᵀ·(s·C/W)

where ``w_j = e^{ℓ_j − M}`` over the tail, ``M = max ℓ``, ``W = Σ w``, ``μ = Σ w·k̄_j / W``,
``A = Σ w·v̄_j`` and ``C = Σ w·(k̄_j − μ) v̄_jᵀ``. Torch ranks the skipped clusters (one batched
product and a top-``T``); one Triton program per (group, query cluster) then reduces its row of log
weights to ``M``, ``W``, ``μ``, ``A`` and the ``D × Dv`` matrix ``C`` (``KC·D·Dv`` multiply-adds, the bulk of
the work) in two passes over the row, without materialising the weights or the weighted keys
(oracle: :func:`.compensation_tail_ref.tail_tables_ref`). Keys are centred on the heaviest tail
cluster's centroid ``c`` before the product and ``C = Σ w·(k̄_j − c) v̄_jᵀ − (μ − c) Aᵀ``, so ``C`` never
comes from the difference of two terms as large as the keys themselves.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

_LOG2_E = tl.constexpr(1.4426950408889634)


class CompensationTail(NamedTuple):
    """Per block-map row ``r = g·QC + i``: ``exact_clusters`` ``(G·QC, T')`` int32, the key clusters kept
    as centroid logits (``−1``: none, when fewer than ``T'`` are skipped; ``T' = min(T, KC)``);
    ``query_means`` ``(G·QC, D)`` the points ``q̄``; ``mean_key`` ``(G·QC, D)`` ``μ``; ``log2_weight``
    ``(G·QC,)`` ``(M + log W)·log₂e`` (``−inf``: empty tail); ``value`` ``(G·QC, Dv)`` ``A/W``, all
    float32; ``slope`` ``(G·QC, D, Dv)`` ``s·C/W`` in the attention's dtype."""

    exact_clusters: torch.Tensor
    query_means: torch.Tensor
    mean_key: torch.Tensor
    log2_weight: torch.Tensor
    value: torch.Tensor
    slope: torch.Tensor


@triton.jit
def _tail_tables_kernel(
    log_weight_ptr, keys_t_ptr, value_means_ptr, mean_key_ptr, log2_weight_ptr, value_ptr, slope_ptr,
    num_q_clusters, num_k_clusters, scale,
    HEAD_DIM: tl.constexpr, VALUE_DIM: tl.constexpr,
    BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """The tail tables of block-map row ``r`` (one program) from its log weights ``ℓ`` (−inf: not in the tail).

    Pass 1: ``M = max ℓ``, its cluster ``p`` and ``W = Σ e^{ℓ−M}`` (online). Pass 2, ``w = e^{ℓ−M}/W``:
    ``μ − c = Σ w (k̄ − c)``, ``A = Σ w v̄`` and ``Σ w (k̄ − c) v̄ᵀ`` with ``c = k̄_p``. The centroids come
    transposed, ``(D, KC)`` per group, so a tile ``(D, BLOCK_K)`` is the product's left operand as loaded.
    A cluster outside the tail contributes nothing, whatever its centroid and mean hold."""
    row = tl.program_id(0).to(tl.int64)
    group = row // num_q_clusters
    logits_row = log_weight_ptr + row * num_k_clusters
    peak = tl.full([BLOCK_K], float("-inf"), tl.float32)
    peak_index = tl.zeros([BLOCK_K], tl.int32)
    for start in range(0, num_k_clusters, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        logits = tl.load(logits_row + offs_k, mask=offs_k < num_k_clusters, other=float("-inf"))
        higher = logits > peak
        peak_index = tl.where(higher, offs_k, peak_index)
        peak = tl.where(higher, logits, peak)
    top = tl.max(peak, 0)
    top_index = tl.min(tl.where(peak == top, peak_index, num_k_clusters), 0)
    shift = tl.where(top == float("-inf"), 0.0, top)
    total = tl.zeros([BLOCK_K], tl.float32)
    for start in range(0, num_k_clusters, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        logits = tl.load(logits_row + offs_k, mask=offs_k < num_k_clusters, other=float("-inf"))
        total += tl.exp(logits - shift)
    weight_sum = tl.sum(total, 0)
    inverse = tl.where(weight_sum > 0.0, 1.0 / tl.maximum(weight_sum, 1e-30), 0.0)

    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    d_mask = offs_d < HEAD_DIM
    dv_mask = offs_dv < VALUE_DIM
    keys_t_base = keys_t_ptr + group * HEAD_DIM * num_k_clusters
    centre = tl.load(keys_t_base + offs_d * num_k_clusters + tl.minimum(top_index, num_k_clusters - 1),
                     mask=d_mask, other=0.0).to(tl.float32)
    centre = tl.where(top > float("-inf"), centre, 0.0)  # an empty tail: μ = 0
    shifted_mean = tl.zeros([BLOCK_D], tl.float32)
    value = tl.zeros([BLOCK_DV], tl.float32)
    acc = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    for start in range(0, num_k_clusters, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        k_mask = offs_k < num_k_clusters
        weights = tl.exp(tl.load(logits_row + offs_k, mask=k_mask, other=float("-inf")) - shift) * inverse
        in_tail = weights > 0.0
        keys_t = tl.load(keys_t_base + offs_d[:, None] * num_k_clusters + offs_k[None, :],
                         mask=d_mask[:, None] & k_mask[None, :], other=0.0)
        means = tl.load(value_means_ptr + (group * num_k_clusters + offs_k)[:, None] * VALUE_DIM + offs_dv[None, :],
                        mask=k_mask[:, None] & dv_mask[None, :], other=0.0)
        means = tl.where(in_tail[:, None], means, 0.0)
        centred = tl.where(in_tail[None, :], (keys_t.to(tl.float32) - centre[:, None]) * weights[None, :], 0.0)
        shifted_mean += tl.sum(centred, 1)
        value += tl.sum(means.to(tl.float32) * weights[:, None], 0)
        acc = tl.dot(centred.to(means.dtype), means, acc, input_precision=DOT_PRECISION)
    slope = (acc - shifted_mean[:, None] * value[None, :]) * scale
    tl.store(mean_key_ptr + row * HEAD_DIM + offs_d, centre + shifted_mean, mask=d_mask)
    tl.store(value_ptr + row * VALUE_DIM + offs_dv, value, mask=dv_mask)
    tl.store(log2_weight_ptr + row, (shift + tl.log(weight_sum)) * _LOG2_E)
    tl.store(slope_ptr + row * HEAD_DIM * VALUE_DIM + offs_d[:, None] * VALUE_DIM + offs_dv[None, :],
             slope.to(slope_ptr.dtype.element_ty), mask=d_mask[:, None] & dv_mask[None, :])


def tail_tables(log_weight: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor, scale: float,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(μ, (M + log W)·log₂e, A/W, s·C/W)`` per block-map row (see the module docstring) from the tail's
    log weights ``ℓ`` ``(G, QC, KC)`` float32 (−inf: a cluster outside the tail; a row all −inf gives
    ``−inf`` and zeros): ``(G·QC, D)``, ``(G·QC,)``, ``(G·QC, Dv)`` float32 and ``(G·QC, D, Dv)`` in ``dtype``.

    ``key_centroids`` ``(G, KC, D)`` and ``value_means`` ``(G, KC, Dv)`` are read in ``dtype``; the keys are
    centred and weighted in float32, then the products run in ``dtype`` (tensor cores for 16-bit types,
    IEEE float32 otherwise), accumulating in float32.
    """
    groups, num_q, num_k = log_weight.shape
    head_dim, value_dim = key_centroids.shape[-1], value_means.shape[-1]
    rows, device = groups * num_q, log_weight.device
    mean_key = torch.empty(rows, head_dim, dtype=torch.float32, device=device)
    log2_weight = torch.empty(rows, dtype=torch.float32, device=device)
    value = torch.empty(rows, value_dim, dtype=torch.float32, device=device)
    slope = torch.empty(rows, head_dim, value_dim, dtype=dtype, device=device)
    if rows == 0 or num_k == 0:
        return mean_key.zero_(), log2_weight.fill_(float("-inf")), value.zero_(), slope.zero_()
    block_d, block_dv = max(16, triton.next_power_of_2(head_dim)), max(16, triton.next_power_of_2(value_dim))
    _tail_tables_kernel[(rows,)](
        log_weight.contiguous(), key_centroids.to(dtype).transpose(1, 2).contiguous(),
        value_means.to(dtype).contiguous(), mean_key, log2_weight, value, slope, num_q, num_k, float(scale),
        HEAD_DIM=head_dim, VALUE_DIM=value_dim, BLOCK_K=64, BLOCK_D=block_d, BLOCK_DV=block_dv,
        DOT_PRECISION="ieee" if dtype == torch.float32 else "tf32",
        num_warps=8 if block_d * block_dv >= 128 * 128 else 4, num_stages=3)
    return mean_key, log2_weight, value, slope


def compensation_tail(query_means: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor,
                      key_sizes: torch.Tensor, selected: torch.Tensor, scale: float, exact_centroids: int,
                      dtype: torch.dtype) -> CompensationTail:
    """The tables the attention kernel reads for ``exact_centroids = T`` (see :class:`CompensationTail`).

    ``query_means`` ``(G, QC, D)``, ``key_centroids`` ``(G, KC, D)``, ``value_means`` ``(G, KC, Dv)``,
    ``key_sizes`` ``(G, KC)``, ``selected`` ``(G, QC, KC)`` bool; ``dtype`` is the slope's (the
    attention's inputs). Torch ops and one Triton launch, no host sync.
    """
    groups, num_q, num_k = selected.shape
    # Few launches: eager 14B calls once waited on the host issuing these ops. An empty cluster's
    # centroid is never read (its −inf log size keeps it out of the ranking and the tail), whatever it holds.
    present = (key_sizes > 0).unsqueeze(-1)
    points = query_means.float()
    log_sizes = key_sizes.float().log().unsqueeze(1)  # −inf: empty cluster
    log_weight = torch.baddbmm(log_sizes, points, torch.where(present, key_centroids.float(), 0.0).mT, alpha=scale)
    log_weight.masked_fill_(selected, float("-inf"))
    top, index = log_weight.topk(min(exact_centroids, num_k), dim=-1)
    mean_key, log2_weight, value, slope = tail_tables(log_weight.scatter_(-1, index, float("-inf")), key_centroids,
                                                      value_means, scale, dtype)
    rows = groups * num_q
    return CompensationTail(
        exact_clusters=index.masked_fill_(top == float("-inf"), -1).to(torch.int32).reshape(rows, -1),
        query_means=points.reshape(rows, -1).contiguous(),
        mean_key=mean_key, log2_weight=log2_weight, value=value, slope=slope,
    )
