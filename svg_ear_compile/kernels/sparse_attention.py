"""Block-sparse attention with the fused centroid compensation, Triton (oracle: :mod:`.sparse_attention_ref`).

For a query ``q`` of cluster ``i`` with selected key clusters ``S_i``, ``s`` the softmax scale and
``T`` the valid shared keys (HunyuanVideo's text tokens)::

    o = ( Σ_{t∈S_i} e^{s·q·k_t} v_t + Σ_{j∉S_i, |K_j|>0} |K_j| e^{s·q·k̄_j} v̄_j + Σ_{t∈T} e^{s·q·k_t} v_t )
        / ( Σ_{t∈S_i} e^{s·q·k_t}     + Σ_{j∉S_i, |K_j|>0} |K_j| e^{s·q·k̄_j}     + Σ_{t∈T} e^{s·q·k_t} )

(the middle sums only with ``compensation``). All three sums join one online softmax (running max,
running sum, float32 accumulator); a compensation term is a key with logit ``s·q·k̄_j + log|K_j|``
and value ``v̄_j``. A row with nothing to attend (empty selection, no compensation, no shared keys)
gets zeros, as the reference does (its softmax over an empty set times an empty value matrix is 0).

Work decomposition (built on the device by :mod:`.attention_plan`, no host sync):

* **Row tiles.** A program takes up to ``block_m`` sorted rows of one query cluster of one group
  and writes them straight to their original positions ``query_layout.perm[g, r]``. The work list
  has a fixed upper bound of ``G·min(N, ⌈N/block_m⌉ + QC)`` items; surplus items exit at once.
  Items run head by head (a head's keys and values stay in L2), within a head the costliest
  (rows × keys to visit) first; the grid is 1-D, one program per item.
* **Key ranges.** A row's selected key clusters are contiguous in the key order, so runs of adjacent
  selected clusters (empty clusters never break a run) coalesce into one token range; ranges
  holding no token are dropped. Per row: up to ``⌈KC/2⌉`` ranges, their count and token total.
* **Packed key tiles.** The kernel walks the concatenation of a row's ranges in ``block_n`` tiles,
  so a tile is full even where clusters are small (~32–75 tokens at KC=1000). The plan gives each
  tile the range of its first token and a bitmask of the positions where ranges start; a prefix sum
  of those bits gives each position its range, hence its key row (gathered). No tile's addresses
  depend on the previous tile, so the loads can be issued ahead. Full tiles load and fold without
  any mask; only a row's last, partial tile is masked. Feature axes are masked only when the head
  dim is not a power of two (removing these masks took about 10% off the kernel on an H100:
  ``benchmarks/RESULTS.md``, fourth session).
* **Compensation** tiles over all KC centroids with selected and empty clusters masked to −inf.
  With ``exact_centroids = T`` it tiles over the row's ``T`` listed clusters instead and folds the
  tail in as one more key per query (logit ``s·u·μ + M + log W``, value ``A/W + uᵀ·sC/W``,
  ``u = q − q̄``; :mod:`.compensation_tail` builds the tables): ``T·(D + Dv) + D·Dv`` multiply-adds
  per query instead of ``KC·(D + Dv)``.
* **Shared keys** tile over ``T`` with padded ones masked out of numerator and denominator.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .attention_plan import AttentionPlan, attention_plan, check_plan
from .block_map import BlockMap
from .compensation_tail import CompensationTail, compensation_tail
from .permute_ref import ClusterLayout

_LOG2_E = 1.4426950408889634
_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _online_softmax_step(scores, scale, values, m_i, l_i, acc, DOT_PRECISION: tl.constexpr,
                         MAY_BE_EMPTY: tl.constexpr):
    """Fold one tile of base-2 logits ``scale·scores`` ``(BM, BN)`` with values ``(BN, BDV)``.

    The row max is taken on the raw scores and the scale applied inside the exponent,
    ``p = 2^(scale·s − m)`` (one fused multiply-add per logit). With ``MAY_BE_EMPTY`` a row whose
    logits so far are all −inf stays 0; without it every row must have a finite logit.
    """
    m_new = tl.maximum(m_i, tl.max(scores, 1) * scale)
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new) if MAY_BE_EMPTY else m_new
    alpha = tl.math.exp2(m_i - m_use)
    p = tl.math.exp2(scores * scale - m_use[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = tl.dot(p.to(values.dtype), values, acc * alpha[:, None], input_precision=DOT_PRECISION)
    return m_new, l_i, acc


@triton.jit
def _fold_column(logits, values, m_i, l_i, acc):
    """Fold one key per row: base-2 logits ``(BM,)`` (−inf: none) with values ``(BM, BDV)`` float32."""
    m_new = tl.maximum(m_i, logits)
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.math.exp2(m_i - m_use)
    p = tl.math.exp2(logits - m_use)
    return m_new, l_i * alpha + p, acc * alpha[:, None] + p[:, None] * values


@triton.jit
def _rows(ptr, rows, row_mask, width: tl.constexpr, BLOCK: tl.constexpr, MASK_ROWS: tl.constexpr):
    """``ptr[rows, :width]`` of a row-major matrix as a ``(len(rows), BLOCK)`` tile, zero in masked rows
    and padding columns. Columns are masked only when ``width < BLOCK``, rows only with ``MASK_ROWS``:
    an unneeded mask costs time in the inner loop."""
    offs = tl.arange(0, BLOCK)
    addresses = ptr + rows[:, None] * width + offs[None, :]
    if width < BLOCK:
        column_mask = offs[None, :] < width
        mask = row_mask[:, None] & column_mask if MASK_ROWS else column_mask
        return tl.load(addresses, mask=mask, other=0.0)
    if MASK_ROWS:
        return tl.load(addresses, mask=row_mask[:, None], other=0.0)
    return tl.load(addresses)


@triton.jit
def _fold_centroids(q, clusters, valid, log2_sizes, centroids_ptr, value_means_ptr, qk_scale, m_i, l_i, acc,
                    HEAD_DIM: tl.constexpr, VALUE_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                    DOT_PRECISION: tl.constexpr):
    """Fold the key clusters at rows ``clusters`` of the centroid and value-mean tables, where ``valid``,
    as keys of base-2 logit ``qk_scale·q·k̄_j + log2_sizes`` and value ``v̄_j``."""
    centroids = _rows(centroids_ptr, clusters, valid, HEAD_DIM, BLOCK_D, True)
    # One fused multiply-add per logit: a column bias of −inf drops the clusters not valid.
    bias = tl.where(valid, log2_sizes, float("-inf"))
    logits = tl.dot(q, tl.trans(centroids), input_precision=DOT_PRECISION) * qk_scale + bias[None, :]
    means = _rows(value_means_ptr, clusters, valid, VALUE_DIM, BLOCK_DV, True)
    return _online_softmax_step(logits, 1.0, means, m_i, l_i, acc, DOT_PRECISION, True)


@triton.jit
def _tile_tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row,
                 delta_ptr, tile_range_ptr, range_starts_ptr, BLOCK_N: tl.constexpr, START_WORDS: tl.constexpr):
    """Key rows of packed positions ``tile_start + lane``: position n lies in range first + (range starts
    in (tile_start, n]), a prefix sum of the tile's start bits. A tile meets at most BLOCK_N ranges, so
    BLOCK_N deltas from ``first`` suffice."""
    tile = block_row * tiles_per_row + tile_start // BLOCK_N
    first = tl.load(tile_range_ptr + tile)
    words = tl.load(range_starts_ptr + tile * START_WORDS + lane // 32)
    flags = (words >> (lane % 32)) & 1
    local = tl.cumsum(flags, 0) - tl.sum(tl.where(lane == 0, flags, 0), 0)
    window = first + lane
    deltas = tl.load(delta_ptr + ranges + window, mask=window < range_count, other=0)
    return tile_start + lane + tl.gather(deltas, local, 0)


@triton.jit
def _sparse_attention_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, perm_ptr, work_ptr,
    delta_ptr, count_ptr, total_ptr, tile_range_ptr, range_starts_ptr,
    selected_ptr, log2_sizes_ptr, centroids_ptr, value_means_ptr,
    exact_ptr, query_means_ptr, tail_key_ptr, tail_log2_weight_ptr, tail_value_ptr, tail_slope_ptr,
    shared_k_ptr, shared_v_ptr, shared_valid_ptr,
    num_rows, num_keys, num_q_clusters, num_k_clusters, range_width, tiles_per_row, num_shared, num_exact,
    qk_scale, stride_qg, stride_qn,
    HEAD_DIM: tl.constexpr, VALUE_DIM: tl.constexpr, QUERIES_IN_PLACE: tl.constexpr,
    COMPENSATION: tl.constexpr, TAIL: tl.constexpr, HAS_SHARED: tl.constexpr, HAS_VALID: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_DV: tl.constexpr, START_WORDS: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    item = work_ptr + tl.program_id(0) * 4
    row_start = tl.load(item + 2)
    row_end = tl.load(item + 3)
    if row_start >= row_end:  # surplus slot of the fixed-size work list
        return
    group = tl.load(item).to(tl.int64)
    block_row = group * num_q_clusters + tl.load(item + 1)

    offs_m = row_start + tl.arange(0, BLOCK_M)
    m_mask = offs_m < row_end
    original_rows = tl.load(perm_ptr + group * num_rows + offs_m, mask=m_mask, other=0)
    # Queries in place are read through the permutation: no sorted copy of them is made.
    q_rows = (original_rows if QUERIES_IN_PLACE else offs_m).to(tl.int64)
    offs_qd = tl.arange(0, BLOCK_D)
    q = tl.load(q_ptr + group * stride_qg + q_rows[:, None] * stride_qn + offs_qd[None, :],
                mask=m_mask[:, None] & (offs_qd[None, :] < HEAD_DIM), other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_DV], tl.float32)

    # Selected key tokens: the row's ranges concatenated, walked in BLOCK_N tiles. Each tile reads its
    # first range from the plan, so no tile's addresses wait on the previous tile (loads pipeline).
    # Full tiles run without masks (every logit is finite); the last, partial tile is masked.
    k_base = k_ptr + group * num_keys * HEAD_DIM
    v_base = v_ptr + group * num_keys * VALUE_DIM
    ranges = block_row * range_width
    range_count = tl.load(count_ptr + block_row)
    total = tl.load(total_ptr + block_row)
    lane = tl.arange(0, BLOCK_N)
    full_end = total // BLOCK_N * BLOCK_N
    for tile_start in range(0, full_end, BLOCK_N):
        tokens = _tile_tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row,
                              delta_ptr, tile_range_ptr, range_starts_ptr, BLOCK_N, START_WORDS)
        keys = _rows(k_base, tokens, lane, HEAD_DIM, BLOCK_D, False)
        scores = tl.dot(q, tl.trans(keys), input_precision=DOT_PRECISION)
        values = _rows(v_base, tokens, lane, VALUE_DIM, BLOCK_DV, False)
        m_i, l_i, acc = _online_softmax_step(scores, qk_scale, values, m_i, l_i, acc, DOT_PRECISION, False)
    if full_end < total:
        n_mask = full_end + lane < total
        tokens = _tile_tokens(full_end, lane, block_row, ranges, range_count, tiles_per_row,
                              delta_ptr, tile_range_ptr, range_starts_ptr, BLOCK_N, START_WORDS)
        keys = _rows(k_base, tokens, n_mask, HEAD_DIM, BLOCK_D, True)
        scores = tl.where(n_mask[None, :], tl.dot(q, tl.trans(keys), input_precision=DOT_PRECISION), float("-inf"))
        values = _rows(v_base, tokens, n_mask, VALUE_DIM, BLOCK_DV, True)
        m_i, l_i, acc = _online_softmax_step(scores, qk_scale, values, m_i, l_i, acc, DOT_PRECISION, False)

    if TAIL:  # the row's listed clusters as centroid logits, then the tail as one key per query
        for exact_start in range(0, num_exact, BLOCK_E):
            offs_e = exact_start + tl.arange(0, BLOCK_E)
            listed = tl.load(exact_ptr + block_row * num_exact + offs_e, mask=offs_e < num_exact, other=-1)
            listed_mask = listed >= 0
            clusters = group * num_k_clusters + tl.where(listed_mask, listed, 0)
            log2_size = tl.load(log2_sizes_ptr + clusters, mask=listed_mask, other=float("-inf"))
            m_i, l_i, acc = _fold_centroids(q, clusters, listed_mask, log2_size, centroids_ptr, value_means_ptr,
                                            qk_scale, m_i, l_i, acc, HEAD_DIM, VALUE_DIM, BLOCK_D, BLOCK_DV,
                                            DOT_PRECISION)
        offs_d = tl.arange(0, BLOCK_D)
        offs_dv = tl.arange(0, BLOCK_DV)
        d_mask = offs_d < HEAD_DIM
        dv_mask = offs_dv < VALUE_DIM
        point = tl.load(query_means_ptr + block_row * HEAD_DIM + offs_d, mask=d_mask, other=0.0)
        offset = tl.where(m_mask[:, None], q.to(tl.float32) - point[None, :], 0.0)  # u = q − q̄
        tail_key = tl.load(tail_key_ptr + block_row * HEAD_DIM + offs_d, mask=d_mask, other=0.0)
        tail_logits = tl.sum(offset * tail_key[None, :], 1) * qk_scale + tl.load(tail_log2_weight_ptr + block_row)
        slope = tl.load(tail_slope_ptr + block_row * HEAD_DIM * VALUE_DIM + offs_d[:, None] * VALUE_DIM
                        + offs_dv[None, :], mask=d_mask[:, None] & dv_mask[None, :], other=0.0)
        tail_value = tl.load(tail_value_ptr + block_row * VALUE_DIM + offs_dv, mask=dv_mask, other=0.0)
        tail_values = tl.dot(offset.to(slope.dtype), slope, input_precision=DOT_PRECISION) + tail_value[None, :]
        m_i, l_i, acc = _fold_column(tail_logits, tail_values, m_i, l_i, acc)
    elif COMPENSATION:  # skipped non-empty clusters: logit s·q·k̄_j + log|K_j|, value v̄_j
        for cluster_start in range(0, num_k_clusters, BLOCK_N):
            offs_c = cluster_start + tl.arange(0, BLOCK_N)
            c_mask = offs_c < num_k_clusters
            chosen = tl.load(selected_ptr + block_row * num_k_clusters + offs_c, mask=c_mask, other=1)
            log2_size = tl.load(log2_sizes_ptr + group * num_k_clusters + offs_c, mask=c_mask,
                                other=float("-inf"))
            skipped = c_mask & (chosen == 0) & (log2_size > float("-inf"))
            m_i, l_i, acc = _fold_centroids(q, group * num_k_clusters + offs_c, skipped, log2_size, centroids_ptr,
                                            value_means_ptr, qk_scale, m_i, l_i, acc, HEAD_DIM, VALUE_DIM, BLOCK_D,
                                            BLOCK_DV, DOT_PRECISION)

    if HAS_SHARED:  # exact shared keys; padded ones enter neither numerator nor denominator
        for shared_start in range(0, num_shared, BLOCK_N):
            offs_t = shared_start + tl.arange(0, BLOCK_N)
            t_mask = offs_t < num_shared
            if HAS_VALID:
                valid = tl.load(shared_valid_ptr + group * num_shared + offs_t, mask=t_mask, other=0)
                t_mask = t_mask & (valid != 0)
            shared_rows = group * num_shared + offs_t
            keys = _rows(shared_k_ptr, shared_rows, t_mask, HEAD_DIM, BLOCK_D, True)
            scores = tl.where(t_mask[None, :], tl.dot(q, tl.trans(keys), input_precision=DOT_PRECISION),
                              float("-inf"))
            values = _rows(shared_v_ptr, shared_rows, t_mask, VALUE_DIM, BLOCK_DV, True)
            m_i, l_i, acc = _online_softmax_step(scores, qk_scale, values, m_i, l_i, acc, DOT_PRECISION, True)

    result = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
    offs_dv = tl.arange(0, BLOCK_DV)
    tl.store(out_ptr + group * num_rows * VALUE_DIM + original_rows[:, None] * VALUE_DIM + offs_dv[None, :],
             result.to(out_ptr.dtype.element_ty), mask=m_mask[:, None] & (offs_dv[None, :] < VALUE_DIM))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"sparse_attention: {message}")


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _validate(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    query_layout: ClusterLayout,
    key_layout: ClusterLayout,
    block_map: BlockMap,
    key_centroids: torch.Tensor,
    value_means: torch.Tensor,
    shared: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None,
    block_m: int,
    block_n: int,
    remainder_m: int | None,
) -> None:
    """Shapes, dtypes and devices only: nothing here reads tensor values (no host sync)."""
    for name, t in (("queries", queries), ("keys_sorted", keys), ("values_sorted", values)):
        _check(t.dim() == 3, f"{name} must be (G, N, D), got shape {_shape(t)}")
        _check(t.dtype in _DTYPES, f"{name} dtype {t.dtype} is not one of float16, bfloat16, float32")
    _check(queries.dtype == keys.dtype == values.dtype,
           f"queries/keys/values dtypes differ: {queries.dtype}, {keys.dtype}, {values.dtype}")
    groups, num_rows, head_dim = queries.shape
    num_q, num_k = block_map.selected.shape[1:]
    value_dim = values.shape[2]
    expected = {
        "keys_sorted": (keys, (groups, key_layout.perm.shape[-1], head_dim)),
        "values_sorted": (values, (groups, key_layout.perm.shape[-1], value_dim)),
        "query_layout.perm": (query_layout.perm, (groups, num_rows)),
        "key_layout.perm": (key_layout.perm, (groups, key_layout.perm.shape[-1])),
        "query_layout.offsets": (query_layout.offsets, (groups, num_q + 1)),
        "key_layout.offsets": (key_layout.offsets, (groups, num_k + 1)),
        "block_map.selected": (block_map.selected, (groups, num_q, num_k)),
        "block_map.key_sizes": (block_map.key_sizes, (groups, num_k)),
        "key_centroids": (key_centroids, (groups, num_k, head_dim)),
        "value_means": (value_means, (groups, num_k, value_dim)),
    }
    if shared is not None:
        shared_keys, shared_values, shared_valid = shared
        num_shared = shared_keys.shape[1] if shared_keys.dim() == 3 else -1
        expected["shared_keys"] = (shared_keys, (groups, num_shared, head_dim))
        expected["shared_values"] = (shared_values, (groups, num_shared, value_dim))
        if shared_valid is not None:
            expected["shared_valid"] = (shared_valid, (groups, num_shared))
            _check(shared_valid.dtype == torch.bool, f"shared_valid must be bool, got {shared_valid.dtype}")
        for name in ("shared_keys", "shared_values"):
            _check(expected[name][0].dtype == queries.dtype,
                   f"{name} dtype {expected[name][0].dtype} must match queries ({queries.dtype})")
    for name, (t, shape) in expected.items():
        _check(_shape(t) == shape, f"{name} has shape {_shape(t)}, expected {shape}")
        _check(t.device == queries.device, f"{name} is on {t.device}, queries on {queries.device}")
    _check(block_map.selected.dtype == torch.bool, f"block_map.selected must be bool, got {block_map.selected.dtype}")
    for name, t in (("key_centroids", key_centroids), ("value_means", value_means)):
        _check(t.is_floating_point(), f"{name} must be floating point, got {t.dtype}")
    for name, size in (("block_m", block_m), ("block_n", block_n)):
        _check(size >= 16 and size & (size - 1) == 0, f"{name}={size} must be a power of two >= 16")
    if remainder_m is not None:
        _check(16 <= remainder_m < block_m and remainder_m & (remainder_m - 1) == 0,
               f"remainder_m={remainder_m} must be a power of two >= 16 and below block_m={block_m}")


def _exact_tile(exact_centroids: int | None, block_n: int) -> int:
    """Columns per tile of the listed centroids: ``T`` rounded up to a power of two (from 16, the
    smallest dot), at most ``block_n``; a 128-wide tile for ``T = 64`` would be half padding."""
    return 16 if exact_centroids is None else min(block_n, max(16, triton.next_power_of_2(exact_centroids)))


def _attended(block_map: BlockMap) -> torch.Tensor:
    """The selected clusters that hold keys: an empty cluster adds no range and no compensation term."""
    return block_map.selected & (block_map.key_sizes > 0).unsqueeze(1)


def _plan(query_layout: ClusterLayout, key_layout: ClusterLayout, block_map: BlockMap, selected: torch.Tensor,
          compensation: bool, exact_centroids: int | None, num_shared: int, block_m: int, block_n: int,
          remainder_m: int | None) -> AttentionPlan:
    compensation_keys = 0 if not compensation else block_map.selected.shape[2] if exact_centroids is None \
        else exact_centroids + 1
    return attention_plan(query_layout, key_layout, BlockMap(selected, block_map.query_sizes, block_map.key_sizes),
                          block_m, block_n, compensation_keys + num_shared, remainder_m)


def sparse_attention_plan(
    query_layout: ClusterLayout,
    key_layout: ClusterLayout,
    block_map: BlockMap,
    compensation: bool,
    *,
    num_shared: int = 0,
    exact_centroids: int | None = None,
    block_m: int = 64,
    block_n: int = 64,
    remainder_m: int | None = None,
) -> AttentionPlan:
    """The plan :func:`sparse_attention` builds for these arguments (``num_shared``: the shared keys'
    count), to pass back as its ``plan`` while the layouts and block map stay the same. Torch ops on
    the device, no host sync."""
    return _plan(query_layout, key_layout, block_map, _attended(block_map), compensation, exact_centroids,
                 num_shared, block_m, block_n, remainder_m)


def sparse_attention(
    queries: torch.Tensor,
    keys_sorted: torch.Tensor,
    values_sorted: torch.Tensor,
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
    block_m: int = 64,
    block_n: int = 64,
    num_warps: int = 4,
    num_stages: int = 2,
    remainder_m: int | None = None,
    out: torch.Tensor | None = None,
    exact_centroids: int | None = None,
    query_means: torch.Tensor | None = None,
    plan: AttentionPlan | None = None,
    queries_in_place: bool = False,
) -> torch.Tensor:
    """SVG-EAR attention output ``(G, N, Dv)`` in the *original* query order, in the values' dtype.

    Equals ``unpermute(sparse_attention_ref(same args), query_layout.perm)``. Inputs are sorted as
    for the reference: ``queries`` by query cluster (or, with ``queries_in_place``, in their original
    order, read through ``query_layout.perm`` with any group and row strides: no sorted copy),
    ``keys_sorted``/``values_sorted`` by key cluster; float16, bfloat16 or float32 (float32 dots run
    in IEEE precision, others on tensor cores; accumulation is float32). ``key_centroids`` and
    ``value_means`` are cast to the inputs' dtype.
    ``shared_keys`` ``(G, T, D)`` / ``shared_values`` ``(G, T, Dv)`` join every row's softmax
    exactly, ``shared_valid`` ``(G, T)`` bool drops padded ones. ``out`` (optional, contiguous
    ``(G, N, Dv)``, values' dtype) receives the result. Tile sizes: see :mod:`.tiles`;
    ``remainder_m`` (a power of two from 16, below ``block_m``) runs each query cluster's last
    tile of at most that many rows in a second launch with ``remainder_m``-row tiles.
    ``exact_centroids``/``query_means`` ``(G, QC, D)``: the compensation's exact centroids and the
    expansion points of the rest, as for the reference. ``plan``: the work lists and key ranges
    :func:`sparse_attention_plan` made for these layouts, block map and settings (a call that reuses
    a routing passes the plan of the call that made it; None: built here).

    Example (full selection: exact attention; ``dev`` is "cpu" under ``TRITON_INTERPRET=1``):
        >>> import os, torch
        >>> from svg_ear_compile.kernels.block_map import BlockMap
        >>> from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
        >>> from svg_ear_compile.kernels.permute_ref import cluster_layout, permute
        >>> dev = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
        >>> q, k, v = torch.randn(3, 1, 40, 16, device=dev).unbind(0)
        >>> q_labels, k_labels = torch.arange(40, device=dev)[None] % 3, torch.arange(40, device=dev)[None] % 5
        >>> ql, kl = cluster_layout(q_labels, 3), cluster_layout(k_labels, 5)
        >>> bm = BlockMap.from_selection(torch.ones(1, 3, 5, dtype=torch.bool, device=dev), ql.sizes, kl.sizes)
        >>> kbar, vbar = cluster_means(k, k_labels, kl.sizes), cluster_means(v, k_labels, kl.sizes)
        >>> o = sparse_attention(permute(q, ql.perm), permute(k, kl.perm), permute(v, kl.perm), ql, kl, bm,
        ...                      kbar, vbar, 0.25, True, block_m=16, block_n=16)
        >>> bool(torch.allclose(o, torch.softmax(0.25 * q @ k.mT, -1) @ v, atol=1e-5))
        True
    """
    if (shared_keys is None) != (shared_values is None):
        raise ValueError("sparse_attention: shared_keys and shared_values must be given together")
    if shared_valid is not None and shared_keys is None:
        raise ValueError("sparse_attention: shared_valid given without shared_keys")
    if not float(scale) > 0:
        raise ValueError(f"sparse_attention: scale={scale} must be positive (each row's running max is taken "
                         "on unscaled scores)")
    shared = None if shared_keys is None else (shared_keys, shared_values, shared_valid)
    if exact_centroids is not None:
        _check(compensation, "exact_centroids needs compensation=True")
        _check(isinstance(exact_centroids, int) and exact_centroids >= 1,
               f"exact_centroids={exact_centroids!r} must be an int >= 1")
        points = (queries.shape[0], block_map.selected.shape[1], queries.shape[2])
        _check(query_means is not None and _shape(query_means) == points
               and query_means.device == queries.device,
               f"exact_centroids needs query_means {points} (G, QC, D) on {queries.device}, got "
               f"{None if query_means is None else (_shape(query_means), str(query_means.device))}")
    _validate(queries, keys_sorted, values_sorted, query_layout, key_layout, block_map,
              key_centroids, value_means, shared, block_m, block_n, remainder_m)
    groups, num_rows, head_dim = queries.shape
    num_keys, value_dim = keys_sorted.shape[1], values_sorted.shape[2]
    num_q, num_k = block_map.selected.shape[1:]
    if out is None:
        out = torch.empty(groups, num_rows, value_dim, dtype=values_sorted.dtype, device=values_sorted.device)
    else:
        _check(_shape(out) == (groups, num_rows, value_dim) and out.dtype == values_sorted.dtype
               and out.device == values_sorted.device and out.is_contiguous(),
               f"out must be a contiguous {(groups, num_rows, value_dim)} {values_sorted.dtype} tensor on "
               f"{values_sorted.device}, got {_shape(out)} {out.dtype} on {out.device}")
    if out.numel() == 0:
        return out

    num_shared = 0 if shared_keys is None else shared_keys.shape[1]
    has_shared = num_shared > 0
    selected = _attended(block_map)
    if plan is None:
        plan = _plan(query_layout, key_layout, block_map, selected, compensation, exact_centroids, num_shared,
                     block_m, block_n, remainder_m)
    else:
        check_plan(plan, groups, num_rows, num_keys, num_q, num_k, block_m, block_n, remainder_m)
    dummy = out  # stands in for pointers the constexpr flags never read
    tail = None
    if exact_centroids is not None:
        tail = compensation_tail(query_means, key_centroids, value_means, block_map.key_sizes, selected, scale,
                                 exact_centroids, queries.dtype)
    if queries.stride(2) != 1 or not queries_in_place:
        queries = queries.contiguous()
    arguments = (
        queries, keys_sorted.contiguous(), values_sorted.contiguous(), out, query_layout.perm.contiguous())
    tables = (
        plan.range_delta, plan.range_count, plan.range_total, plan.tile_range, plan.range_starts,
        selected.contiguous().view(torch.uint8),
        block_map.key_sizes.to(torch.float32).log2().contiguous(),
        key_centroids.to(queries.dtype).contiguous(), value_means.to(values_sorted.dtype).contiguous(),
        *((t.contiguous() for t in tail) if tail is not None else (dummy,) * len(CompensationTail._fields)),
        shared_keys.contiguous() if has_shared else dummy,
        shared_values.contiguous() if has_shared else dummy,
        shared_valid.contiguous().view(torch.uint8) if has_shared and shared_valid is not None else dummy,
        num_rows, num_keys, num_q, num_k, plan.range_delta.shape[1], plan.tile_range.shape[1], num_shared,
        0 if tail is None else tail.exact_clusters.shape[1], float(scale) * _LOG2_E, queries.stride(0),
        queries.stride(1))
    constants = dict(
        HEAD_DIM=head_dim, VALUE_DIM=value_dim, QUERIES_IN_PLACE=bool(queries_in_place),
        COMPENSATION=bool(compensation), TAIL=tail is not None,
        HAS_SHARED=has_shared, HAS_VALID=shared_valid is not None,
        BLOCK_N=block_n, BLOCK_E=_exact_tile(exact_centroids, block_n), START_WORDS=plan.range_starts.shape[-1],
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)), BLOCK_DV=max(16, triton.next_power_of_2(value_dim)),
        DOT_PRECISION="ieee" if queries.dtype == torch.float32 else "tf32",
        num_warps=num_warps, num_stages=num_stages)
    _sparse_attention_kernel[(plan.work.shape[0],)](*arguments, plan.work, *tables, BLOCK_M=block_m, **constants)
    if plan.remainder_work is not None:
        _sparse_attention_kernel[(plan.remainder_work.shape[0],)](*arguments, plan.remainder_work, *tables,
                                                                  BLOCK_M=remainder_m, **constants)
    return out
