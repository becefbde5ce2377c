"""Tables of the compensation with ``exact_centroids = T``: the exact centroids and the expanded tail.

For query cluster ``i`` of group ``g`` and its skipped non-empty key clusters ``j``, ranked by
``ℓ_j = s·q̄_i·k̄_j + log|K_j|`` (``q̄_i`` the query cluster's mean), the ``T`` heaviest keep their
centroid logit in the attention kernel; the rest (the *tail*) become one key per query
``q = q̄_i + u`` with (:mod:`.sparse_attention_ref` derives it)::

    logit = s·u·μ + M + log W          value = A/W + uᵀ·(s·C/W)

where ``w_j = e^{ℓ_j − M}`` over the tail, ``M = max ℓ``, ``W = Σ w``, ``μ = Σ w·k̄_j / W``,
``A = Σ w·v̄_j`` and ``C = Σ w·(k̄_j − μ) v̄_jᵀ``. Everything but ``C`` is a few small torch ops;
``C`` is a ``D × Dv`` matrix per query cluster (``KC·D·Dv`` multiply-adds each), which one Triton
program per (group, query cluster) builds without materialising the weighted keys
(oracle: :func:`.compensation_tail_ref.tail_moment_ref`). Keys are centred on ``μ`` before the
product, so ``C`` never comes from the difference of two large terms.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

_LOG2_E = 1.4426950408889634


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
def _tail_moment_kernel(
    weights_ptr, keys_t_ptr, value_means_ptr, mean_key_ptr, out_ptr,
    num_q_clusters, num_k_clusters, scale,
    HEAD_DIM: tl.constexpr, VALUE_DIM: tl.constexpr,
    BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """``out[r] = scale · Σ_j weights[r, j]·(k̄_j − μ_r) v̄_jᵀ`` for block-map row ``r`` (one program).

    The centroids come transposed, ``(D, KC)`` per group, so a tile ``(D, BLOCK_K)`` is already the
    left operand of the product (no transposition in registers) and its loads run along the clusters."""
    row = tl.program_id(0).to(tl.int64)
    group = row // num_q_clusters
    offs_d = tl.arange(0, BLOCK_D)
    offs_dv = tl.arange(0, BLOCK_DV)
    d_mask = offs_d < HEAD_DIM
    dv_mask = offs_dv < VALUE_DIM
    mean_key = tl.load(mean_key_ptr + row * HEAD_DIM + offs_d, mask=d_mask, other=0.0)
    keys_t_base = keys_t_ptr + group * HEAD_DIM * num_k_clusters
    acc = tl.zeros([BLOCK_D, BLOCK_DV], tl.float32)
    for start in range(0, num_k_clusters, BLOCK_K):
        offs_k = start + tl.arange(0, BLOCK_K)
        k_mask = offs_k < num_k_clusters
        weights = tl.load(weights_ptr + row * num_k_clusters + offs_k, mask=k_mask, other=0.0)
        keys_t = tl.load(keys_t_base + offs_d[:, None] * num_k_clusters + offs_k[None, :],
                         mask=d_mask[:, None] & k_mask[None, :], other=0.0)
        means = tl.load(value_means_ptr + (group * num_k_clusters + offs_k)[:, None] * VALUE_DIM + offs_dv[None, :],
                        mask=k_mask[:, None] & dv_mask[None, :], other=0.0)
        centred = ((keys_t.to(tl.float32) - mean_key[:, None]) * weights[None, :]).to(means.dtype)
        acc = tl.dot(centred, means, acc, input_precision=DOT_PRECISION)
    tl.store(out_ptr + row * HEAD_DIM * VALUE_DIM + offs_d[:, None] * VALUE_DIM + offs_dv[None, :],
             (acc * scale).to(out_ptr.dtype.element_ty), mask=d_mask[:, None] & dv_mask[None, :])


def tail_moment(weights: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor,
                mean_key: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """``scale · Σ_j weights[g, i, j]·(k̄_{g,j} − μ_{g,i}) v̄_{g,j}ᵀ`` as ``(G·QC, D, Dv)`` in ``dtype``.

    ``weights`` ``(G, QC, KC)`` and ``mean_key`` ``(G, QC, D)`` float32, ``key_centroids`` ``(G, KC, D)``,
    ``value_means`` ``(G, KC, Dv)``. Centroids and means are read in ``dtype``; the keys are centred and
    weighted in float32, then the products run in ``dtype`` (tensor cores for 16-bit types, IEEE
    float32 otherwise), accumulating in float32.
    """
    groups, num_q, num_k = weights.shape
    head_dim, value_dim = key_centroids.shape[-1], value_means.shape[-1]
    out = torch.empty(groups * num_q, head_dim, value_dim, dtype=dtype, device=weights.device)
    if out.numel() == 0:
        return out
    block_d, block_dv = max(16, triton.next_power_of_2(head_dim)), max(16, triton.next_power_of_2(value_dim))
    _tail_moment_kernel[(groups * num_q,)](
        weights.contiguous(), key_centroids.to(dtype).transpose(1, 2).contiguous(), value_means.to(dtype).contiguous(),
        mean_key.contiguous(), out, num_q, num_k, float(scale), HEAD_DIM=head_dim, VALUE_DIM=value_dim, BLOCK_K=64,
        BLOCK_D=block_d, BLOCK_DV=block_dv, DOT_PRECISION="ieee" if dtype == torch.float32 else "tf32",
        num_warps=8 if block_d * block_dv >= 128 * 128 else 4, num_stages=3)
    return out


def compensation_tail(query_means: torch.Tensor, key_centroids: torch.Tensor, value_means: torch.Tensor,
                      key_sizes: torch.Tensor, selected: torch.Tensor, scale: float, exact_centroids: int,
                      dtype: torch.dtype) -> CompensationTail:
    """The tables the attention kernel reads for ``exact_centroids = T`` (see :class:`CompensationTail`).

    ``query_means`` ``(G, QC, D)``, ``key_centroids`` ``(G, KC, D)``, ``value_means`` ``(G, KC, Dv)``,
    ``key_sizes`` ``(G, KC)``, ``selected`` ``(G, QC, KC)`` bool; ``dtype`` is the slope's (the
    attention's inputs). Torch ops and one Triton launch, no host sync.
    """
    groups, num_q, num_k = selected.shape
    # Few launches: each line is one where it can be (an empty tail's −inf flows through to a −inf
    # log-weight and zero weights). Eager 14B calls once waited on the host issuing these ops.
    present = (key_sizes > 0).unsqueeze(-1)  # an empty cluster's mean is never read, whatever it holds
    points = query_means.float()
    centroids = torch.where(present, key_centroids.float(), 0.0)
    means = torch.where(present, value_means.float(), 0.0)
    log_sizes = key_sizes.float().log().unsqueeze(1)  # −inf: empty cluster
    log_weight = torch.baddbmm(log_sizes, points, centroids.mT, alpha=scale).masked_fill_(selected, float("-inf"))
    top, index = log_weight.topk(min(exact_centroids, num_k), dim=-1)
    tail = log_weight.scatter_(-1, index, float("-inf"))
    peak = tail.amax(-1, keepdim=True)
    weights = (tail - peak.clamp_min(torch.finfo(torch.float32).min)).exp_()  # 0 outside the tail
    total = weights.sum(-1, keepdim=True)
    weights = weights.div_(total.clamp_min(torch.finfo(torch.float32).tiny))
    mean_key = weights @ centroids
    rows = groups * num_q
    return CompensationTail(
        exact_clusters=index.masked_fill_(top == float("-inf"), -1).to(torch.int32).reshape(rows, -1),
        query_means=points.reshape(rows, -1).contiguous(),
        mean_key=mean_key.reshape(rows, -1),
        log2_weight=((peak + total.log()) * _LOG2_E).reshape(rows),
        value=(weights @ means).reshape(rows, -1),
        slope=tail_moment(weights, centroids, means, mean_key, scale, dtype),
    )
