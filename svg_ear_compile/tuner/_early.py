"""A budget schedule over the denoising steps: the early steps keep (or raise) their budgets, the later
steps run a share of them.

Attention errors of the first, noisiest steps reach the final output; those of later steps barely do.
On the trained fixture (20 steps, guided) halving every layer's budget for five steps at a time took
the final PSNR from 30.21 to 26.20 dB in steps 0–4 and by at most 0.3 dB in any later five; for two
steps at a time, steps 6–17 cost nothing measurable (``benchmarks/probe_step_sensitivity.py``;
``benchmarks/RESULTS.md``, fifteenth session). One budget for every step spends on the late steps
what only the early ones need.

Here every sparse layer ``i`` with budget ``β_i`` runs ``u·β_i`` for the first ``E = ⌈EARLY_FRACTION·N⌉``
of the ``N`` steps (``SvgEarConfig.early_budget``, above the timestep cut between steps ``E − 1`` and
``E``) and ``m·β_i`` after them. For each early boost ``u`` in ``EARLY_BOOSTS`` the smallest late share
``m ∈ [LATE_FLOOR, 1]`` that keeps the final PSNR ≥ the target is bisected on a log scale in
``LATE_CHECKS`` end-to-end checks (the final PSNR grows with ``m``); of the pairs met, the one with the
least work ``E·u + (N − E)·m`` (budget × steps, what the attention kernel's time follows) is kept, if it
is less than the unscheduled ``N``. What its coarse share leaves above the target is spent after it, on
every budget at once (:mod:`._scale`).

    >>> early_steps(20), round(cut_timestep(20), 1)
    (5, 775.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

EARLY_FRACTION = 0.25  # the fixture's first 5 of 20 steps carried 90% of the error (RESULTS.md)
EARLY_BOOSTS = (1.0, 2.0)  # early budgets as multiples of the start's: 2 buys slack for smaller late ones
LATE_FLOOR = 0.125
LATE_CHECKS = 3


def early_steps(steps: int) -> int:
    """``E``: how many of ``steps`` keep the early budget."""
    return max(1, math.ceil(EARLY_FRACTION * steps))


def cut_timestep(steps: int) -> float:
    """The timestep between the last early step and the first late one of the tuner's Euler schedule
    (step ``s`` of ``N`` runs at ``1000·(1 − s/N)``): a midpoint, so rounding cannot move a step across.
    The profile keeps this timestep (a noise level), not a step count: a scheduler that spends more of
    its steps at high noise (a flow shift) runs more of them with the early budget."""
    return 1000.0 * (1.0 - (early_steps(steps) - 0.5) / steps)


@dataclass(frozen=True)
class Schedule:
    early_steps: int
    early_above_timestep: float
    boost: float
    late_share: float
    psnr_db: float
    work: float  # E·u + (N − E)·m, against N unscheduled
    checks: list[list[float]] = field(default_factory=list)  # [boost, late share, final PSNR dB] per check


def schedule_budgets(check: Callable[[float, float], float], steps: int, target_db: float) -> Schedule | None:
    """The cheapest schedule met: ``check(boost, late_share)`` runs the model end to end with the early
    budgets × boost and the late ones × late_share and returns the final PSNR. Each boost gets
    ``LATE_CHECKS`` halvings of its share's log range; the cheapest one met is kept. None when no
    schedule meets ``target_db`` with less work than none (or every step is early)."""
    early = early_steps(steps)
    if early >= steps:
        return None
    checks: list[list[float]] = []
    brackets = {boost: [LATE_FLOOR, 1.0, None] for boost in EARLY_BOOSTS}  # low, high, (share, PSNR) met

    def halve(boost: float) -> None:
        bracket = brackets[boost]
        share = math.sqrt(bracket[0] * bracket[1])
        psnr_db = check(boost, share)
        checks.append([boost, share, psnr_db])
        if psnr_db >= target_db:
            bracket[1:] = share, (share, psnr_db)
        else:
            bracket[0] = share

    def work(boost: float) -> float:
        return early * boost + (steps - early) * brackets[boost][2][0]

    for boost in EARLY_BOOSTS:
        for _ in range(LATE_CHECKS):
            halve(boost)
    met = [boost for boost in EARLY_BOOSTS if brackets[boost][2] is not None and work(boost) < steps]
    if not met:
        return None
    best = min(met, key=work)
    share, psnr_db = brackets[best][2]
    return Schedule(early, cut_timestep(steps), best, share, psnr_db, work(best), checks)
