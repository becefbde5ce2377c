# Routing fills each row's key budget greedily by score after the guaranteed set, and never picks empty clusters.
import math

import pytest
import torch

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.kernels.routing_ref import error_to_cost_score, guaranteed_set, route


def _problem(seed=0, g=2, qc=6, kc=20):
    gen = torch.Generator().manual_seed(seed)
    key_sizes = torch.randint(1, 30, (g, kc), generator=gen)
    key_sizes[:, 3] = 0
    query_sizes = torch.randint(1, 30, (g, qc), generator=gen)
    logits = torch.randn(g, qc, kc, generator=gen, dtype=torch.float64) * 2
    mass = torch.softmax(logits.masked_fill((key_sizes == 0).unsqueeze(1), float("-inf")), -1)
    log_error = torch.randn(g, qc, kc, generator=gen, dtype=torch.float64) * 3
    return mass, log_error.masked_fill((key_sizes == 0).unsqueeze(1), float("-inf")), query_sizes, key_sizes


def test_full_budget_selects_every_nonempty_block_in_both_modes():
    mass, log_error, q_sizes, k_sizes = _problem()
    for routing in ("error_aware", "attention"):
        selected = route(mass, log_error, q_sizes, k_sizes, SvgEarConfig(budget=1.0, routing=routing))
        assert torch.equal(selected, (k_sizes > 0).unsqueeze(1).expand_as(selected))


@pytest.mark.parametrize("budget, fraction", [(0.3, 0.1), (0.05, 0.5)])  # the second: the budget caps the guarantee
def test_error_aware_fill_matches_brute_force_greedy(budget, fraction):
    mass, log_error, q_sizes, k_sizes = _problem(seed=1)
    cfg = SvgEarConfig(budget=budget, guaranteed_frac=fraction, cost_exponent=1.0)
    selected = route(mass, log_error, q_sizes, k_sizes, cfg)
    score = error_to_cost_score(log_error, q_sizes, k_sizes, 1.0)
    for g in range(2):
        nonempty = [j for j in range(20) if k_sizes[g, j] > 0]
        n_guaranteed = max(1, math.ceil(fraction * len(nonempty)))
        row_budget = budget * float(k_sizes[g].sum())
        for i in range(6):
            by_mass = sorted(nonempty, key=lambda j: -float(mass[g, i, j]))
            chosen, used = set(), 0
            for j in by_mass[:n_guaranteed]:
                if used >= row_budget:
                    break
                chosen.add(j)
                used += int(k_sizes[g, j])
            assert chosen  # at least one cluster, whatever the budget
            for j in sorted(set(nonempty) - chosen, key=lambda j: -float(score[g, i, j])):
                if used >= row_budget:
                    break
                chosen.add(j)
                used += int(k_sizes[g, j])
            assert set(selected[g, i].nonzero().squeeze(1).tolist()) == chosen


def test_attention_routing_with_budget_fills_by_mass():
    mass, _, q_sizes, k_sizes = _problem(seed=2)
    selected = route(mass, None, q_sizes, k_sizes, SvgEarConfig(budget=0.25, routing="attention"))
    for g in range(2):
        for i in range(6):
            taken = selected[g, i]
            area = int((k_sizes[g] * taken).sum())
            assert area >= 0.25 * int(k_sizes[g].sum())
            # every taken cluster is at least as heavy as every cluster left out
            left = taken.logical_not() & (k_sizes[g] > 0)
            assert float(mass[g, i][taken].min()) >= float(mass[g, i][left].max())


def test_error_aware_without_budget_uses_top_p_area():
    mass, log_error, q_sizes, k_sizes = _problem(seed=3)
    cfg = SvgEarConfig(top_p=0.7, guaranteed_frac=0.0)
    ear = route(mass, log_error, q_sizes, k_sizes, cfg)
    svg2 = route(mass, None, q_sizes, k_sizes, cfg.replace(routing="attention"))
    sizes = k_sizes.unsqueeze(1)
    ear_area, svg2_area = (ear * sizes).sum(-1), (svg2 * sizes).sum(-1)
    assert bool((ear_area >= svg2_area).all())
    assert bool((ear_area - svg2_area <= k_sizes.max()).all())


def test_guaranteed_set_has_the_heaviest_clusters():
    mass, _, _, k_sizes = _problem(seed=4)
    keep = guaranteed_set(mass, k_sizes, 0.2)
    assert bool((keep.sum(-1) == 4).all())  # ceil(0.2 * 19)
    assert not bool(keep[..., 3].any())
    for g in range(2):
        for i in range(6):
            assert float(mass[g, i][keep[g, i]].min()) >= float(mass[g, i][~keep[g, i]].max())
