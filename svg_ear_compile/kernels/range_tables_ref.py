"""Each block-map row's packed key ranges and the tables the attention kernel walks them by, torch
reference of :func:`.range_tables.range_tables`.

A block-map row's selected key clusters are contiguous in the key order, so runs of adjacent selected
clusters (empty clusters never break a run) coalesce into one token range; ranges holding no token are
dropped. The kernel walks the concatenation of a row's ranges (its *packed* tokens) in ``block_n`` tiles.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
import triton


class RangeTables(NamedTuple):
    """Per block-map row (``G·QC`` rows), all int32: ``range_delta`` ``(rows, ⌈KC/2⌉)``, key index = packed
    index + delta for each range in packed order (unused slots: ``−range_total``); ``range_count`` and
    ``range_total`` ``(rows,)``; ``tile_range`` ``(rows, ⌈Nk/block_n⌉)``, the range holding each tile's
    first packed token (the kernel never reads it past the row's total); ``range_starts``
    ``(rows, ⌈Nk/block_n⌉, ⌈block_n/32⌉)``, bit ``p % 32`` of word ``p // 32`` of tile ``t`` set when a range
    starts at packed position ``t·block_n + p``."""

    range_delta: torch.Tensor
    range_count: torch.Tensor
    range_total: torch.Tensor
    tile_range: torch.Tensor
    range_starts: torch.Tensor


def range_slots(num_k: int) -> int:
    """Most ranges a row can have: selected runs alternate with skipped clusters."""
    return (num_k + 1) // 2


def _compact(keep: torch.Tensor, values: torch.Tensor, width: int) -> torch.Tensor:
    """``values[keep]`` moved to the front of the last axis (order kept), zero-padded to ``width``."""
    slot = torch.where(keep, keep.long().cumsum(-1) - 1, width)
    out = values.new_zeros(values.shape[:-1] + (width + 1,))
    out.scatter_(-1, slot, values)
    return out[..., :width]


def key_ranges(selected: torch.Tensor, key_offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coalesced token ranges of each block-map row: ``(begin, length)``, both ``(G, QC, ⌈KC/2⌉)``.

    Ranges are sorted, disjoint, non-empty and cover exactly the tokens of the selected clusters;
    unused slots have length 0. ``key_offsets`` is the key layout's ``(G, KC+1)`` offsets.
    """
    groups, num_q, num_k = selected.shape
    width = range_slots(num_k)
    first_token = key_offsets[:, None, :-1].expand(groups, num_q, num_k)
    end_token = key_offsets[:, None, 1:].expand(groups, num_q, num_k)
    in_run = selected | (first_token == end_token)
    opens = in_run & ~F.pad(in_run[..., :-1], (1, 0))
    closes = in_run & ~F.pad(in_run[..., 1:], (0, 1))
    begin, end = _compact(opens, first_token, width), _compact(closes, end_token, width)
    length = end - begin
    keep = length > 0
    return _compact(keep, begin, width), _compact(keep, length, width)


def range_tables_ref(selected: torch.Tensor, key_offsets: torch.Tensor, num_keys: int, block_n: int) -> RangeTables:
    """:class:`RangeTables` of ``selected`` ``(G, QC, KC)`` bool over the key layout's ``(G, KC+1)``
    offsets of ``num_keys`` keys, with torch ops (~75 launches)."""
    begin, length = key_ranges(selected, key_offsets)
    groups, num_q, width = begin.shape
    vstart = (length.cumsum(-1) - length).reshape(groups * num_q, width).to(torch.int32).contiguous()
    # Unused range slots start at the row's total, past every tile the kernel visits.
    tile_starts = torch.arange(0, num_keys, block_n, device=vstart.device, dtype=torch.int32)
    tile_range = torch.searchsorted(vstart, tile_starts.expand(vstart.shape[0], -1).contiguous(), right=True) - 1
    range_count = (length > 0).sum(-1).reshape(-1)
    return RangeTables(
        range_delta=(begin.reshape(groups * num_q, width) - vstart).to(torch.int32).contiguous(),
        range_count=range_count.to(torch.int32).contiguous(),
        range_total=length.sum(-1).reshape(-1).to(torch.int32).contiguous(),
        tile_range=tile_range.to(torch.int32).contiguous(),
        range_starts=_range_start_bits(vstart, range_count, tile_starts.shape[0], block_n),
    )


def _range_start_bits(vstart: torch.Tensor, range_count: torch.Tensor, num_tiles: int, block_n: int) -> torch.Tensor:
    """Per tile, a bitmask of the packed positions where a range starts (see :class:`RangeTables`).

    Starts are distinct, so adding their bits (scatter-add) sets them; bit 31 wraps to the sign bit,
    which the kernel's shift-and-mask reads back the same. Unused range slots each add to a spare word
    of their own: pointing them all at one word would serialise millions of atomic adds."""
    rows, width = vstart.shape
    words = triton.cdiv(block_n, 32)
    position = vstart.long()
    within = position % block_n
    row = torch.arange(rows, device=vstart.device)[:, None]
    slot = (row * num_tiles + position // block_n) * words + within // 32
    used = rows * num_tiles * words
    spare = used + row * width + torch.arange(width, device=vstart.device)
    slot = torch.where(torch.arange(width, device=vstart.device) < range_count[:, None], slot, spare)
    bits = torch.bitwise_left_shift(torch.ones_like(vstart), (within % 32).to(torch.int32))
    mask = torch.zeros(used + rows * width, dtype=torch.int32, device=vstart.device)
    mask.scatter_add_(0, slot.reshape(-1), bits.reshape(-1))
    return mask[:used].view(rows, num_tiles, words)
