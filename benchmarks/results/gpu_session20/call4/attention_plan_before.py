"""The host side of the fused sparse attention: its work list and packed key ranges, torch ops only.

* **Row tiles.** One work item is up to ``block_m`` sorted rows of one query cluster of one group.
  The list has a fixed length ``G·min(N, ⌈N/block_m⌉ + QC)`` (no host sync to size the grid);
  surplus items are empty. Items are grouped by group (head), and within a group ordered by cost
  (rows × keys to visit), largest first: the items that run side by side read one head's keys and
  values, which stay in L2 (7–10% off the kernel on an H100 at 2–3% density, against one global cost
  order: ``benchmarks/RESULTS.md``, thirteenth session).
* **Remainder tiles** (optional, ``remainder_m``). A cluster's last partial tile of at most
  ``remainder_m`` rows moves to a second list of ``G·QC`` items, run with ``remainder_m``-row tiles,
  so it computes fewer padding rows (``benchmarks/query_tile_fill.py`` counts them).
* **Key ranges.** A block-map row's selected key clusters are contiguous in the key order, so runs of
  adjacent selected clusters (empty clusters never break a run) coalesce into one token range.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
import triton

from .block_map import BlockMap
from .permute_ref import ClusterLayout


class AttentionPlan(NamedTuple):
    """Host-built work description: ``work`` ``(L, 4)`` int32 rows of (group, query cluster, row start,
    row end); per (group, query cluster) row of the block map, ``range_delta`` ``(G·QC, W)`` (key index =
    packed index + delta, for each range r in the packed token list),
    ``range_count``/``range_total`` ``(G·QC,)``, ``tile_range`` ``(G·QC, ⌈Nk/block_n⌉)``: the range
    holding the first packed token of each ``block_n`` tile (so no tile depends on the previous one),
    and ``range_starts`` ``(G·QC, ⌈Nk/block_n⌉, ⌈block_n/32⌉)`` int32: bit ``p % 32`` of word ``p // 32``
    of tile t is set when a range starts at packed position ``t·block_n + p``. ``remainder_work``
    ``(G·QC, 4)``, like ``work``, holds the short last tiles when the plan splits them off (else None)."""

    work: torch.Tensor
    range_delta: torch.Tensor
    range_count: torch.Tensor
    range_total: torch.Tensor
    tile_range: torch.Tensor
    range_starts: torch.Tensor
    remainder_work: torch.Tensor | None = None


def _compact(keep: torch.Tensor, values: torch.Tensor, width: int) -> torch.Tensor:
    """``values[keep]`` moved to the front of the last axis (order kept), zero-padded to ``width``."""
    slot = torch.where(keep, keep.long().cumsum(-1) - 1, width)
    out = values.new_zeros(values.shape[:-1] + (width + 1,))
    out.scatter_(-1, slot, values)
    return out[..., :width]


def _range_slots(num_k: int) -> int:
    """Most ranges a row can have: selected runs alternate with skipped clusters."""
    return (num_k + 1) // 2


def _work_slots(num_rows: int, block_m: int, num_q: int) -> int:
    """Work items per group: each cluster's tiles, at most one partial tile per cluster beyond ⌈N/block_m⌉."""
    return min(num_rows, triton.cdiv(num_rows, block_m) + num_q)


def key_ranges(selected: torch.Tensor, key_offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coalesced token ranges of each block-map row: ``(begin, length)``, both ``(G, QC, ⌈KC/2⌉)``.

    Ranges are sorted, disjoint, non-empty and cover exactly the tokens of the selected clusters;
    unused slots have length 0. ``key_offsets`` is the key layout's ``(G, KC+1)`` offsets.
    """
    groups, num_q, num_k = selected.shape
    width = _range_slots(num_k)
    first_token = key_offsets[:, None, :-1].expand(groups, num_q, num_k)
    end_token = key_offsets[:, None, 1:].expand(groups, num_q, num_k)
    in_run = selected | (first_token == end_token)
    opens = in_run & ~F.pad(in_run[..., :-1], (1, 0))
    closes = in_run & ~F.pad(in_run[..., 1:], (0, 1))
    begin, end = _compact(opens, first_token, width), _compact(closes, end_token, width)
    length = end - begin
    keep = length > 0
    return _compact(keep, begin, width), _compact(keep, length, width)


def attention_plan(
    query_layout: ClusterLayout, key_layout: ClusterLayout, block_map: BlockMap, block_m: int, block_n: int,
    extra_keys: int, remainder_m: int | None = None,
) -> AttentionPlan:
    """Build the work lists and packed key ranges with torch ops only (no host sync); ``extra_keys``
    (compensation + shared keys per row) only enters the cost used to order the work.
    ``remainder_m`` (< ``block_m``) splits off the last tile of each cluster when it has at most
    that many rows."""
    begin, length = key_ranges(block_map.selected, key_layout.offsets)
    groups, num_q, width = begin.shape
    vstart = (length.cumsum(-1) - length).reshape(groups * num_q, width).to(torch.int32).contiguous()
    range_total = length.sum(-1)
    # Unused range slots start at the row's total, past every tile the kernel visits.
    tile_starts = torch.arange(0, key_layout.perm.shape[-1], block_n, device=vstart.device, dtype=torch.int32)
    tile_range = torch.searchsorted(vstart, tile_starts.expand(vstart.shape[0], -1).contiguous(), right=True) - 1
    range_count = (length > 0).sum(-1).reshape(-1)

    offsets = query_layout.offsets
    num_rows = query_layout.perm.shape[1]
    keys_per_row = range_total.reshape(-1) + extra_keys + 1
    sizes = (offsets[:, 1:] - offsets[:, :-1]).reshape(-1)
    chunks = (sizes + block_m - 1) // block_m
    remainder_work = None
    if remainder_m is not None:
        last_rows = sizes - (chunks - 1) * block_m
        short_last = (sizes > 0) & (last_rows <= remainder_m)
        chunks = chunks - short_last.long()
        block_rows = torch.arange(groups * num_q, device=offsets.device)
        last_start = torch.where(short_last, offsets[:, :-1].reshape(-1) + chunks * block_m, 0)
        last_end = torch.where(short_last, offsets[:, 1:].reshape(-1), 0)
        remainder_work = _ordered_work(block_rows, num_q, last_start, last_end, keys_per_row, short_last)
    chunk_end = chunks.cumsum(0)
    per_group = _work_slots(num_rows, block_m, num_q)
    slot = torch.arange(groups * per_group, device=offsets.device)
    owner = torch.searchsorted(chunk_end, slot, right=True)
    real = owner < groups * num_q
    owner = owner.clamp_max(groups * num_q - 1)
    group, cluster = owner // num_q, owner % num_q
    row_start = offsets[group, cluster] + (slot - chunk_end[owner] + chunks[owner]) * block_m
    row_end = torch.minimum(row_start + block_m, offsets[group, cluster + 1])
    row_start, row_end = torch.where(real, row_start, 0), torch.where(real, row_end, 0)
    return AttentionPlan(
        work=_ordered_work(owner, num_q, row_start, row_end, keys_per_row, real),
        remainder_work=remainder_work,
        range_delta=(begin.reshape(groups * num_q, width) - vstart).to(torch.int32).contiguous(),
        range_count=range_count.to(torch.int32).contiguous(),
        range_total=range_total.reshape(-1).to(torch.int32).contiguous(),
        tile_range=tile_range.to(torch.int32).contiguous(),
        range_starts=_range_start_bits(vstart, range_count, tile_starts.shape[0], block_n),
    )


def _ordered_work(owner: torch.Tensor, num_q: int, row_start: torch.Tensor, row_end: torch.Tensor,
                  keys_per_row: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Work items (group, query cluster, row start, row end) of block-map rows ``owner``: group by group,
    within a group costliest (rows × keys to visit) first; empty items last."""
    group = owner // num_q
    cost = (row_end - row_start) * keys_per_row[owner]
    # Two stable sorts: by cost, then by group (empty items after every group). Ties keep a cluster's
    # chunks adjacent.
    order = torch.argsort(cost, descending=True, stable=True)
    order = order[torch.argsort(torch.where(real, group, group.max() + 1)[order], stable=True)]
    work = torch.stack([group, owner % num_q, row_start, row_end], dim=1)[order]
    return work.to(torch.int32).contiguous()


def _range_start_bits(vstart: torch.Tensor, range_count: torch.Tensor, num_tiles: int, block_n: int) -> torch.Tensor:
    """Per tile, a bitmask of the packed positions where a range starts (see :class:`AttentionPlan`).

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


def plan_tensors(plan: AttentionPlan) -> dict[str, torch.Tensor]:
    """The plan's tensors by name, ``plan_work`` …; :func:`plan_from` inverts it."""
    return {f"plan_{name}": t for name, t in plan._asdict().items() if t is not None}


def plan_from(tensors: dict[str, torch.Tensor]) -> AttentionPlan | None:
    """The plan named in ``tensors`` (as :func:`plan_tensors` names them), None when there is none."""
    if "plan_work" not in tensors:
        return None
    return AttentionPlan(**{name: tensors.get(f"plan_{name}") for name in AttentionPlan._fields})


def check_plan(plan: AttentionPlan, groups: int, num_rows: int, num_keys: int, num_q: int, num_k: int,
               block_m: int, block_n: int, remainder_m: int | None) -> None:
    """Raise if ``plan`` lacks the shapes :func:`attention_plan` gives these sizes and tiles: a plan made
    for other layouts or tiles would send the kernel to wrong key rows."""
    rows, tiles = groups * num_q, triton.cdiv(num_keys, block_n)
    expected = {
        "work": (groups * _work_slots(num_rows, block_m, num_q), 4),
        "range_delta": (rows, _range_slots(num_k)),
        "range_count": (rows,),
        "range_total": (rows,),
        "tile_range": (rows, tiles),
        "range_starts": (rows, tiles, triton.cdiv(block_n, 32)),
    }
    for name, shape in expected.items():
        got = getattr(plan, name)
        if tuple(got.shape) != shape or got.dtype != torch.int32:
            raise ValueError(f"attention plan: plan.{name} is {got.dtype} {tuple(got.shape)}, expected int32 {shape} "
                             "(a plan made for other layouts or tiles: build it for the same block_m/block_n)")
    if (plan.remainder_work is None) != (remainder_m is None):
        state = "absent" if plan.remainder_work is None else "present"
        raise ValueError(f"attention plan: plan.remainder_work is {state} but remainder_m={remainder_m}")
