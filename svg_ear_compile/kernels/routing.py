"""Block selection with each row's greedy fill in one Triton program (oracle: :mod:`.routing_ref`).

The budgets, the error-to-cost score and SVG2's top-p set stay torch ops (:func:`.routing_ref.routing_fill`);
the fill itself, the guaranteed set and then the clusters by decreasing priority until the row's budget
is reached (two stable sorts of the row, two prefix sums and two scatters in torch, ~30 launches over
``(G, QC, KC)``), runs as one program per row: each sort is a bitonic sort of the row's ``KC`` keys
``(value, position)`` packed into int64, so ties keep their order as torch's stable sort does, and the
selection equals the reference's.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..config import SvgEarConfig
from . import routing_ref

# A program holds its row's clusters in registers to sort them; wider rows take the torch fill (same selection).
MOST_CLUSTERS = 4096


@triton.jit
def _descending(values, lane, inside):
    """Positions of ``values`` (float32, no NaN) from largest to smallest, equal values by position;
    lanes past ``inside`` last. A float's bits, negatives' magnitude flipped, order as int32; flipping all
    bits turns that into descending order, and the position in the low 32 bits breaks ties."""
    bits = (values + 0.0).to(tl.int32, bitcast=True)  # + 0.0: −0 counts as +0, as in a comparison
    ascending = tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    key = tl.where(inside, ~ascending, 0x7FFFFFFF).to(tl.int64) * 4294967296 + lane
    return (tl.sort(key, 0) & 0xFFFFFFFF).to(tl.int32)


@triton.jit
def _fill_kernel(mass_ptr, priority_ptr, sizes_ptr, budget_ptr, out_ptr, num_q_clusters, num_k_clusters,
                 guaranteed_fraction, WITHIN_BUDGET: tl.constexpr, BLOCK_KC: tl.constexpr):
    row = tl.program_id(0)
    group = row // num_q_clusters
    lane = tl.arange(0, BLOCK_KC)
    inside = lane < num_k_clusters
    base = row.to(tl.int64) * num_k_clusters
    sizes_ptr += group.to(tl.int64) * num_k_clusters
    out_ptr += base
    budget = tl.load(budget_ptr + row)

    # The guaranteed set: the heaviest clusters by mass, written to the row before the fill reads it.
    sizes = tl.load(sizes_ptr + lane, mask=inside, other=0)
    count = tl.maximum(tl.ceil(guaranteed_fraction * tl.sum((sizes > 0).to(tl.float32), 0)), 1.0)
    order = _descending(tl.load(mass_ptr + base + lane, mask=inside, other=0.0), lane, inside)
    real = order < num_k_clusters
    ranked_sizes = tl.load(sizes_ptr + order, mask=real, other=0)
    kept = lane.to(tl.float32) < count
    if WITHIN_BUDGET:
        kept_sizes = tl.where(kept, ranked_sizes, 0)
        kept = kept & ((tl.cumsum(kept_sizes, 0) - kept_sizes).to(tl.float32) < budget)
    guaranteed = kept & (ranked_sizes > 0)
    used = tl.sum(tl.where(guaranteed, ranked_sizes, 0), 0)
    tl.store(out_ptr + order, guaranteed.to(tl.int8), mask=real)
    tl.debug_barrier()

    # The fill: the other non-empty clusters by decreasing priority while the row's keys are below budget.
    candidate = (sizes > 0) & (tl.load(out_ptr + lane, mask=inside, other=1) == 0)
    priority = tl.load(priority_ptr + base + lane, mask=inside, other=float("-inf"))
    priority = tl.where(candidate & (priority == priority), priority, float("-inf"))  # NaN: last
    order = _descending(priority, lane, inside)
    real = order < num_k_clusters
    ranked_sizes = tl.load(sizes_ptr + order, mask=real, other=0)
    ranked_candidate = real & (ranked_sizes > 0) & (tl.load(out_ptr + order, mask=real, other=1) == 0)
    ranked_sizes = tl.where(ranked_candidate, ranked_sizes, 0)
    before = used + tl.cumsum(ranked_sizes, 0) - ranked_sizes
    take = ranked_candidate & (before.to(tl.float32) < budget)
    tl.store(out_ptr + order, tl.full([BLOCK_KC], 1, tl.int8), mask=take)


def run_fill(fill: routing_ref.Fill, key_sizes: torch.Tensor) -> torch.Tensor:
    """:func:`.routing_ref.run_fill` in one launch: boolean ``(G, QC, KC)``, the same selection (float32
    mass and priority, NaN-free mass); rows of more than :data:`MOST_CLUSTERS` clusters run the torch fill."""
    groups, num_q, num_k = fill.mass.shape
    if num_k > MOST_CLUSTERS:
        return routing_ref.run_fill(fill, key_sizes)
    selected = torch.empty(groups, num_q, num_k, dtype=torch.bool, device=fill.mass.device)
    if selected.numel() == 0:
        return selected
    block_kc = triton.next_power_of_2(num_k)
    _fill_kernel[(groups * num_q,)](
        fill.mass.float().contiguous(), fill.priority.float().contiguous(), key_sizes.to(torch.int32).contiguous(),
        fill.budget_keys.float().contiguous(), selected.view(torch.uint8), num_q, num_k,
        float(fill.guaranteed_fraction), WITHIN_BUDGET=fill.guarantee_within_budget, BLOCK_KC=block_kc,
        num_warps=8 if block_kc >= 2048 else 4)
    return selected


def route(mass: torch.Tensor, log_error: torch.Tensor | None, query_sizes: torch.Tensor, key_sizes: torch.Tensor,
          config: SvgEarConfig) -> torch.Tensor:
    """:func:`.routing_ref.route` with the greedy fill in Triton: the same selection."""
    fill = routing_ref.routing_fill(mass, log_error, query_sizes, key_sizes, config)
    return fill if isinstance(fill, torch.Tensor) else run_fill(fill, key_sizes)
