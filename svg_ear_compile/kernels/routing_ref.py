"""Block selection: EAR's error-to-cost routing and SVG2's mass routing, torch reference.

Per query-cluster row ``i`` a budget of keys is filled greedily:

* EAR (``routing="error_aware"``): a guaranteed set (the ``guaranteed_frac`` heaviest key clusters
  by centroid mass, at least one, and no more than the budget needs), then the rest by
  ``score_ij = log ε̂_ij − γ·log(|Q_i||K_j|)``.
  Without an explicit ``budget`` the row's budget is the area SVG2's top-p set would use.
* SVG2 (``routing="attention"``): the top-p set by mass, or with ``budget`` a fill by mass.

``budget >= 1`` selects every non-empty block, which makes the op exact attention.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..config import SvgEarConfig
from .topp_ref import select_top_p


def error_to_cost_score(
    log_error: torch.Tensor, query_sizes: torch.Tensor, key_sizes: torch.Tensor, cost_exponent: float
) -> torch.Tensor:
    """``log ε̂_ij − γ·log(|Q_i||K_j|)``: compensation error per unit of exact work (log space)."""
    cost = query_sizes.to(log_error.dtype).log().unsqueeze(-1) + key_sizes.to(log_error.dtype).log().unsqueeze(1)
    return log_error - cost_exponent * cost

def greedy_fill(
    priority: torch.Tensor, key_sizes: torch.Tensor, budget_keys: torch.Tensor, preselected: torch.Tensor
) -> torch.Tensor:
    """Per row, ``preselected`` plus the next clusters by decreasing ``priority`` while the row's
    selected key count is below ``budget_keys`` (``(G, QC)``); the last one taken may overshoot."""
    sizes = key_sizes.unsqueeze(1).expand_as(priority)
    candidate = (sizes > 0) & ~preselected
    used = (sizes * preselected).sum(-1, keepdim=True)
    ranked = priority.masked_fill(~candidate, float("-inf"))
    ranked = torch.where(torch.isnan(ranked), torch.full_like(ranked, float("-inf")), ranked)
    order = ranked.argsort(dim=-1, descending=True, stable=True)
    sorted_sizes = torch.gather(sizes * candidate, -1, order)
    before = used + sorted_sizes.cumsum(-1) - sorted_sizes
    take_sorted = (before < budget_keys.unsqueeze(-1)) & torch.gather(candidate, -1, order)
    take = torch.zeros_like(take_sorted).scatter_(-1, order, take_sorted)
    return preselected | take

def guaranteed_set(
    mass: torch.Tensor, key_sizes: torch.Tensor, fraction: float, budget_keys: torch.Tensor | None = None
) -> torch.Tensor:
    """The ``max(1, ceil(fraction · #non-empty clusters))`` heaviest clusters of each row; with
    ``budget_keys`` (``(G, QC)``) only as many of them, heaviest first, as it takes to reach the row's
    budget (at least one), so a small explicit budget is not overridden by the guarantee."""
    nonempty = (key_sizes > 0).sum(-1)
    count = torch.clamp(torch.ceil(fraction * nonempty.to(mass.dtype)), min=1).to(torch.int64)
    order = mass.argsort(dim=-1, descending=True, stable=True)
    rank_kept = (torch.arange(mass.shape[-1], device=mass.device) < count.view(-1, 1, 1)).expand_as(mass)
    if budget_keys is not None:
        sorted_sizes = torch.gather(key_sizes.unsqueeze(1).expand_as(mass), -1, order) * rank_kept
        before = sorted_sizes.cumsum(-1) - sorted_sizes
        rank_kept = rank_kept & (before < budget_keys.unsqueeze(-1))
    keep = torch.zeros_like(rank_kept).scatter_(-1, order, rank_kept)
    return keep & (key_sizes > 0).unsqueeze(1)

class Fill(NamedTuple):
    """A greedy fill to run per row: the guaranteed set (the heaviest clusters by ``mass``, a
    ``guaranteed_fraction`` of them, at least one; with ``guarantee_within_budget`` only as many as reach
    ``budget_keys``), then clusters by decreasing ``priority`` up to ``budget_keys`` ``(G, QC)``."""

    mass: torch.Tensor
    priority: torch.Tensor
    budget_keys: torch.Tensor
    guaranteed_fraction: float
    guarantee_within_budget: bool


def routing_fill(
    mass: torch.Tensor,
    log_error: torch.Tensor | None,
    query_sizes: torch.Tensor,
    key_sizes: torch.Tensor,
    config: SvgEarConfig,
) -> torch.Tensor | Fill:
    """The selection where no fill is needed (an exact budget, SVG2's top-p set), else the fill to run."""
    num_keys = key_sizes.sum(-1, keepdim=True).to(mass.dtype)
    nonempty = (key_sizes > 0).unsqueeze(1).expand_as(mass)
    if config.budget is not None and config.budget >= 1.0:
        return nonempty.clone()
    if config.budget is not None:
        budget_keys = (config.budget * num_keys).expand(mass.shape[:2])
    else:
        top_p = select_top_p(mass, key_sizes, config.top_p)
        if config.routing == "attention":
            return top_p
        budget_keys = (top_p * key_sizes.unsqueeze(1)).sum(-1).to(mass.dtype)

    if config.routing == "attention":
        return Fill(mass, mass, budget_keys, 0.0, False)
    if log_error is None:
        raise ValueError("error-aware routing needs the probe's log_error")
    score = error_to_cost_score(log_error, query_sizes, key_sizes, config.cost_exponent)
    return Fill(mass, score, budget_keys, config.guaranteed_frac, True)


def run_fill(fill: Fill, key_sizes: torch.Tensor) -> torch.Tensor:
    """The selection of :class:`Fill` ``fill``: boolean ``(G, QC, KC)``."""
    guaranteed = guaranteed_set(fill.mass, key_sizes, fill.guaranteed_fraction,
                                fill.budget_keys if fill.guarantee_within_budget else None)
    return greedy_fill(fill.priority, key_sizes, fill.budget_keys, guaranteed)


def route(
    mass: torch.Tensor,
    log_error: torch.Tensor | None,
    query_sizes: torch.Tensor,
    key_sizes: torch.Tensor,
    config: SvgEarConfig,
) -> torch.Tensor:
    """The blocks computed exactly, boolean ``(G, QC, KC)``; every other block is compensated
    (``config.compensation``) or dropped."""
    fill = routing_fill(mass, log_error, query_sizes, key_sizes, config)
    return fill if isinstance(fill, torch.Tensor) else run_fill(fill, key_sizes)
