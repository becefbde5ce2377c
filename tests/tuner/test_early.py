# The budget schedule over steps: the cut falls between the right steps, the bisection finds the smallest
# late share met, and the cheapest (boost, share) pair is kept; the tuner's wrapper writes it per layer.
import math

import pytest
import torch

from svg_ear_compile.tuner._early import (
    EARLY_BOOSTS,
    LATE_CHECKS,
    LATE_FLOOR,
    cut_timestep,
    early_steps,
    schedule_budgets,
)
from svg_ear_compile.tuner._search import EXACT_LAYER


@pytest.mark.parametrize("steps", [2, 4, 7, 20, 50])
def test_the_cut_separates_the_early_steps_of_the_tuners_schedule(steps):
    timesteps = [1000.0 * sigma for sigma in torch.linspace(1.0, 0.0, steps + 1).tolist()[:steps]]
    early = [t > cut_timestep(steps) for t in timesteps]
    assert early == [step < early_steps(steps) for step in range(steps)]
    assert early_steps(steps) == math.ceil(steps / 4)


def _final_psnr(boost: float, share: float) -> float:
    """A final error that the early steps dominate: 1e-4 + 9e-4·u^−1.5 + 1e-4·m^−1.5."""
    return -10 * math.log10(1e-4 + 9e-4 * boost ** -1.5 + 1e-4 * share ** -1.5)


def _smallest_met(boost: float, target: float, halvings: int) -> float | None:
    """Oracle: for a final PSNR rising with the late share, ``halvings`` bisection steps of the log range
    find the smallest share met among the grid of their possible midpoints."""
    grid = [LATE_FLOOR ** (j / 2 ** halvings) for j in range(2 ** halvings - 1, 0, -1)]
    return next((m for m in grid if _final_psnr(boost, m) >= target), None)


@pytest.mark.parametrize("target", [29.0, 29.5, 30.0, 31.5])
def test_the_cheapest_schedule_met_is_kept(target):
    steps, expected = 20, None
    for boost in EARLY_BOOSTS:
        share = _smallest_met(boost, target, LATE_CHECKS)
        work = None if share is None else 5 * boost + 15 * share
        if work is not None and work < steps and (expected is None or work < expected[1]):
            expected = (boost, work)
    schedule = schedule_budgets(_final_psnr, steps, target)
    if expected is None:
        assert schedule is None
        return
    share = _smallest_met(expected[0], target, LATE_CHECKS)
    assert (schedule.boost, schedule.late_share, schedule.work) == pytest.approx(
        (expected[0], share, 5 * expected[0] + 15 * share))
    assert schedule.psnr_db == _final_psnr(schedule.boost, schedule.late_share) >= target
    assert (schedule.early_steps, schedule.early_above_timestep) == (5, cut_timestep(steps))
    assert len(schedule.checks) == len(EARLY_BOOSTS) * LATE_CHECKS


def test_no_schedule_without_late_steps_or_when_none_is_met():
    assert schedule_budgets(_final_psnr, 1, 0.0) is None
    assert schedule_budgets(_final_psnr, 20, 99.0) is None


def test_the_tuners_wrapper_schedules_every_sparse_layer_and_records_it():
    from svg_ear_compile.tuner._end_to_end import EndToEnd
    from svg_ear_compile.tuner._search import LayerChoice
    from svg_ear_compile.tuner._tune import schedule_over_steps

    start = [LayerChoice(0, {"budget": 0.16, "refresh_every": 6}, 1.0, 40.0, None, 2.0, 1, []),
             LayerChoice(1, EXACT_LAYER, 2.0, 99.0, None, 2.0, 1, []),
             LayerChoice(2, {"budget": 0.08, "refresh_every": 6}, 1.0, 40.0, None, 2.0, 1, [])]

    def check(choices):
        configs = {c.layer: c.config for c in choices}
        assert configs[1] == EXACT_LAYER, "the exact layer is never changed"
        first = configs[0]
        boost = first.get("early_budget", 0.16) / 0.16
        share = first["budget"] / 0.16
        return EndToEnd(_final_psnr(boost, share), 100.0, float("nan"))

    history = [{"round": 0, "psnr_db": 30.0, "dense_ms": 100.0, "sparse_ms": 50.0}]
    progress = type("P", (), {"phase": lambda *a: None, "update": lambda *a: None})()
    initial = check(start)
    choices, result, record = schedule_over_steps(check, start, initial, 29.5, 20, history, progress)
    expected = schedule_budgets(_final_psnr, 20, 29.5)
    assert record["applied"] and (record["boost"], record["late_share"]) == (expected.boost, expected.late_share)
    for index, budget in ((0, 0.16), (2, 0.08)):
        config = choices[index].config
        assert config["budget"] == pytest.approx(budget * expected.late_share, rel=1e-3)
        assert config["early_budget"] == pytest.approx(min(1.0, budget * expected.boost), rel=1e-3)
        assert config["early_above_timestep"] == pytest.approx(cut_timestep(20))
        assert config["refresh_every"] == 6
    assert result.psnr_db == pytest.approx(expected.psnr_db, abs=0.05)  # budgets rounded to 4 digits
    assert sum("step_schedule" in h for h in history) == len(EARLY_BOOSTS) * LATE_CHECKS
    assert start[0].config == {"budget": 0.16, "refresh_every": 6}  # nothing changed in place
    unchanged = schedule_over_steps(check, start, initial, 99.0, 20, history, progress)
    assert unchanged[:2] == (start, initial) and not unchanged[2]["applied"]
    only_exact = [start[1]]
    assert schedule_over_steps(check, only_exact, initial, 29.5, 20, history, progress) == (only_exact, initial, None)
