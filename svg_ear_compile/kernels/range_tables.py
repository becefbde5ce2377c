"""Each block-map row's packed key ranges and tile tables in two Triton launches (oracle:
:func:`.range_tables_ref.range_tables_ref`, ~75 torch launches).

One program per block-map row reads its ``KC`` selection flags and the key layout's offsets once. A range
opens at a selected non-empty cluster ``j`` unless the last such cluster before it ends where ``j``
begins (only empty clusters between: they never break a run); that last end is a running max. With
``before_j`` the selected tokens ahead of cluster ``j`` (a prefix sum), a range opening at ``j`` has
packed start ``before_j`` and delta ``first_j − before_j``. Its start bit is added to its tile's word
(positions are distinct, so adding sets bits), and one count to the first tile ``t`` with
``t·block_n ≥ before_j``; a second launch turns those counts, per row, into each tile's range (a prefix sum).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .range_tables_ref import RangeTables, range_slots, range_tables_ref

# A program holds its row's clusters in registers; wider rows take the torch tables (the same ones).
MOST_CLUSTERS = 4096


@triton.jit
def _larger(a, b):
    return tl.maximum(a, b)


@triton.jit
def _ranges_kernel(selected_ptr, offsets_ptr, delta_ptr, count_ptr, total_ptr, reached_ptr, starts_ptr,
                   num_q_clusters, num_k_clusters, range_width, num_tiles,
                   BLOCK_KC: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_N: tl.constexpr, START_WORDS: tl.constexpr):
    row = tl.program_id(0)
    group = row // num_q_clusters
    j = tl.arange(0, BLOCK_KC)
    inside = j < num_k_clusters
    after = (j >= 1) & inside
    offsets = offsets_ptr + group * (num_k_clusters + 1)
    flags = selected_ptr + row.to(tl.int64) * num_k_clusters
    first = tl.load(offsets + j, mask=inside, other=0).to(tl.int32)
    end = tl.load(offsets + j + 1, mask=inside, other=0).to(tl.int32)
    active = (tl.load(flags + j, mask=inside, other=0) != 0) & (end > first)
    # Cluster j − 1, loaded shifted by one: its end is first_j.
    previous_first = tl.load(offsets + j - 1, mask=after, other=0).to(tl.int32)
    previous_active = (tl.load(flags + j - 1, mask=after, other=0) != 0) & (first > previous_first) & after
    last_end = tl.associative_scan(tl.where(previous_active, first, -1), 0, _larger)
    opens = active & (last_end != first)
    sizes = tl.where(active, end - first, 0)
    before = tl.cumsum(sizes, 0) - sizes
    slot = tl.cumsum(opens.to(tl.int32), 0) - 1
    count = tl.sum(opens.to(tl.int32), 0)
    total = tl.sum(sizes, 0)
    deltas = delta_ptr + row.to(tl.int64) * range_width
    tl.store(deltas + slot, first - before, mask=opens)
    unused = tl.arange(0, BLOCK_W)
    tl.store(deltas + unused, tl.zeros([BLOCK_W], tl.int32) - total, mask=(unused >= count) & (unused < range_width))
    tl.store(count_ptr + row, count)
    tl.store(total_ptr + row, total)
    words = starts_ptr + row.to(tl.int64) * num_tiles * START_WORDS
    within = before % BLOCK_N
    bit = tl.full([BLOCK_KC], 1, tl.int32) << (within % 32)
    tl.atomic_add(words + (before // BLOCK_N) * START_WORDS + within // 32, bit, mask=opens)
    reached = (before + BLOCK_N - 1) // BLOCK_N  # the first tile whose first position is at or past the start
    tl.atomic_add(reached_ptr + row.to(tl.int64) * num_tiles + reached, tl.full([BLOCK_KC], 1, tl.int32),
                  mask=opens & (reached < num_tiles))


@triton.jit
def _tile_range_kernel(tile_range_ptr, count_ptr, total_ptr, range_width, num_tiles,
                       BLOCK_N: tl.constexpr, BLOCK_T: tl.constexpr):
    """In place: per tile, the range starts it has reached (a running count) minus one; tiles at or past
    the row's total also pass its unused range slots, as a search over the padded starts would."""
    row = tl.program_id(0)
    count = tl.load(count_ptr + row)
    total = tl.load(total_ptr + row)
    base = tile_range_ptr + row.to(tl.int64) * num_tiles
    seen = count * 0
    for tile_start in range(0, num_tiles, BLOCK_T):
        tiles = tile_start + tl.arange(0, BLOCK_T)
        inside = tiles < num_tiles
        reached = tl.load(base + tiles, mask=inside, other=0)
        running = tl.cumsum(reached, 0) + seen
        seen += tl.sum(reached, 0)
        past = tl.where(tiles * BLOCK_N >= total, range_width - count, 0)
        tl.store(base + tiles, running - 1 + past, mask=inside)


def range_tables(selected: torch.Tensor, key_offsets: torch.Tensor, num_keys: int, block_n: int) -> RangeTables:
    """:class:`RangeTables` of ``selected`` ``(G, QC, KC)`` bool over the key layout's ``(G, KC+1)``
    offsets of ``num_keys`` keys: two zero fills and two Triton launches, no host sync. Equal to
    :func:`.range_tables_ref.range_tables_ref`, which builds them where the kernels do not run: CPU tensors
    without the interpreter, rows of more than :data:`MOST_CLUSTERS` clusters, no rows or no clusters."""
    groups, num_q, num_k = selected.shape
    runs_here = selected.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"
    if not runs_here or num_k > MOST_CLUSTERS or selected.numel() == 0:
        return range_tables_ref(selected, key_offsets, num_keys, block_n)
    rows, width, device = groups * num_q, range_slots(num_k), selected.device
    num_tiles, words = triton.cdiv(num_keys, block_n), triton.cdiv(block_n, 32)
    delta = torch.empty(rows, width, dtype=torch.int32, device=device)
    count = torch.empty(rows, dtype=torch.int32, device=device)
    total = torch.empty(rows, dtype=torch.int32, device=device)
    tile_range = torch.zeros(rows, num_tiles, dtype=torch.int32, device=device)
    starts = torch.zeros(rows, num_tiles, words, dtype=torch.int32, device=device)
    block_kc = triton.next_power_of_2(num_k)
    _ranges_kernel[(rows,)](
        selected.contiguous().view(torch.uint8), key_offsets.contiguous(), delta, count, total, tile_range, starts,
        num_q, num_k, width, num_tiles, BLOCK_KC=block_kc, BLOCK_W=triton.next_power_of_2(width), BLOCK_N=block_n,
        START_WORDS=words, num_warps=8 if block_kc >= 2048 else 4)
    _tile_range_kernel[(rows,)](tile_range, count, total, width, num_tiles, BLOCK_N=block_n,
                                BLOCK_T=min(1024, triton.next_power_of_2(num_tiles)))
    return RangeTables(delta, count, total, tile_range, starts)
