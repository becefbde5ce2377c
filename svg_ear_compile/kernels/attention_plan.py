"""The host side of the fused sparse attention: its work list (torch ops) and packed key ranges (:mod:`.range_tables`).

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
  adjacent selected clusters (empty clusters never break a run) coalesce into one token range; two
  Triton launches build them and the tables the kernel walks them by (:mod:`.range_tables`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton

from .block_map import BlockMap
from .permute_ref import ClusterLayout
from .range_tables import range_tables
from .range_tables_ref import range_slots


class AttentionPlan(NamedTuple):
    """Work description built on the device: ``work`` ``(L, 4)`` int32 rows of (group, query cluster, row
    start, row end); the per-row key ranges and tile tables ``range_delta``, ``range_count``,
    ``range_total``, ``tile_range`` and ``range_starts`` as :class:`.range_tables_ref.RangeTables`
    describes them; ``remainder_work`` ``(G·QC, 4)``, like ``work``, holds the short last tiles when the
    plan splits them off (else None)."""

    work: torch.Tensor
    range_delta: torch.Tensor
    range_count: torch.Tensor
    range_total: torch.Tensor
    tile_range: torch.Tensor
    range_starts: torch.Tensor
    remainder_work: torch.Tensor | None = None


def _work_slots(num_rows: int, block_m: int, num_q: int) -> int:
    """Work items per group: each cluster's tiles, at most one partial tile per cluster beyond ⌈N/block_m⌉."""
    return min(num_rows, triton.cdiv(num_rows, block_m) + num_q)


def attention_plan(
    query_layout: ClusterLayout, key_layout: ClusterLayout, block_map: BlockMap, block_m: int, block_n: int,
    extra_keys: int, remainder_m: int | None = None,
) -> AttentionPlan:
    """Build the work lists and packed key ranges on the device (no host sync); ``extra_keys``
    (compensation + shared keys per row) only enters the cost used to order the work.
    ``remainder_m`` (< ``block_m``) splits off the last tile of each cluster when it has at most
    that many rows."""
    tables = range_tables(block_map.selected, key_layout.offsets, key_layout.perm.shape[-1], block_n)
    groups, num_q = block_map.selected.shape[:2]
    offsets = query_layout.offsets
    num_rows = query_layout.perm.shape[1]
    keys_per_row = tables.range_total.long() + extra_keys + 1
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
        remainder_work=remainder_work, **tables._asdict())


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
        "range_delta": (rows, range_slots(num_k)),
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
