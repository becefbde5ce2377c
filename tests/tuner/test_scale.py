# Every budget scaled by one factor to the target: the factor kept meets the target and is the smallest
# met, a power law is hit in one check with its exponent and within a few without it, the floor and the
# check count hold; the tuner's wrapper scales budgets and early budgets of the sparse layers only.
import math

import pytest

from svg_ear_compile.tuner._allocate import AIM_MARGIN_DB
from svg_ear_compile.tuner._scale import CLOSE_DB, SCALE_CHECKS, SCALE_FLOOR, scale_to_target
from svg_ear_compile.tuner._search import EXACT_LAYER


def _power_law(start_db: float, exponent: float):
    """Final PSNR of ``e ∝ s^(−p)``: ``start_db + 10·p·log10(s)``."""
    return lambda factor: start_db + 10.0 * exponent * math.log10(factor)


def _factor_at(start_db: float, exponent: float, psnr_db: float) -> float:
    """Oracle: the factor at which that power law reaches ``psnr_db``."""
    return 10.0 ** ((psnr_db - start_db) / (10.0 * exponent))


@pytest.mark.parametrize("start_db", [30.5, 31.0, 32.5])
def test_a_power_law_with_its_exponent_lands_on_the_aim_in_one_check(start_db):
    scaled = scale_to_target(_power_law(start_db, 1.7), start_db, target_db=30.0, exponent=1.7)
    assert len(scaled.checks) == 1
    assert scaled.factor == pytest.approx(_factor_at(start_db, 1.7, 30.0 + AIM_MARGIN_DB))
    assert scaled.psnr_db == pytest.approx(30.0 + AIM_MARGIN_DB)


@pytest.mark.parametrize("assumed", [0.5, 1.0, 3.0, 4.0])
def test_a_wrong_exponent_is_corrected_along_the_secant(assumed):
    start_db, true_exponent = 31.0, 1.7
    psnr = _power_law(start_db, true_exponent)
    scaled = scale_to_target(psnr, start_db, target_db=30.0, exponent=assumed)
    assert 30.0 <= scaled.psnr_db <= 30.0 + CLOSE_DB
    assert len(scaled.checks) <= SCALE_CHECKS
    assert scaled.factor == min(f for f, p in scaled.checks if p >= 30.0)
    assert all(f >= SCALE_FLOOR for f, _ in scaled.checks)
    assert scaled.psnr_db == pytest.approx(psnr(scaled.factor))


def test_the_kept_factor_meets_the_target_on_a_noisy_non_power_law():
    def psnr(factor):  # flat down to 0.9, then a cliff, with a wobble: no model fits it
        return 31.0 + 0.05 * math.sin(40 * factor) if factor >= 0.9 else 25.0 + 5.0 * factor

    scaled = scale_to_target(psnr, 31.0, target_db=30.0, exponent=1.5)
    assert scaled is not None and scaled.psnr_db >= 30.0 and scaled.psnr_db == psnr(scaled.factor)
    assert scaled.factor >= 0.9
    checked_met = [f for f, p in scaled.checks if p >= 30.0]
    assert scaled.factor == min(checked_met)


def test_nothing_is_tried_without_slack_and_nothing_kept_when_every_factor_misses():
    calls = []
    assert scale_to_target(lambda f: calls.append(f) or 99.0, 30.0 + CLOSE_DB, target_db=30.0, exponent=1.5) is None
    assert scale_to_target(lambda f: calls.append(f) or 99.0, 29.0, target_db=30.0, exponent=1.5) is None
    assert calls == []
    missing = scale_to_target(lambda f: calls.append(f) or 20.0, 33.0, target_db=30.0, exponent=1.5)
    assert missing is None and len(calls) == SCALE_CHECKS
    assert calls == sorted(calls)  # each miss raises the factor: the bracket's lower end moves up


def test_the_tuners_wrapper_scales_the_sparse_layers_budgets_and_early_budgets():
    from svg_ear_compile.tuner._end_to_end import EndToEnd
    from svg_ear_compile.tuner._search import LayerChoice
    from svg_ear_compile.tuner._tune import scale_budgets

    start = [LayerChoice(0, {"budget": 0.05, "early_budget": 0.8, "early_above_timestep": 775.0,
                             "refresh_every": 6}, 1.0, 40.0, None, 2.0, 1, []),
             LayerChoice(1, EXACT_LAYER, 2.0, 99.0, None, 2.0, 1, []),
             LayerChoice(2, {"budget": 0.08, "refresh_every": 6}, 1.0, 40.0, None, 2.0, 1, [])]
    psnr = _power_law(31.5, 2.0)

    def check(choices):
        configs = {c.layer: c.config for c in choices}
        assert configs[1] == EXACT_LAYER, "the exact layer is never changed"
        factor = configs[2]["budget"] / 0.08
        assert configs[0]["budget"] / 0.05 == pytest.approx(factor, rel=1e-3)
        assert configs[0]["early_budget"] / 0.8 == pytest.approx(factor, rel=1e-3)
        return EndToEnd(psnr(factor), 100.0, float("nan"))

    history = [{"round": 0, "psnr_db": 31.5, "dense_ms": 100.0, "sparse_ms": 50.0}]
    progress = type("P", (), {"phase": lambda *a: None, "update": lambda *a: None})()
    initial = EndToEnd(31.5, 100.0, 50.0)
    choices, result, record = scale_budgets(check, start, initial, 30.0, 2.0, history, progress)
    factor = _factor_at(31.5, 2.0, 30.0 + AIM_MARGIN_DB)
    assert record["applied"] and record["factor"] == pytest.approx(factor)
    assert choices[0].config == {"budget": pytest.approx(0.05 * factor, rel=1e-3),
                                 "early_budget": pytest.approx(0.8 * factor, rel=1e-3),
                                 "early_above_timestep": 775.0, "refresh_every": 6}
    assert choices[2].config["budget"] == pytest.approx(0.08 * factor, rel=1e-3)
    assert result.psnr_db == pytest.approx(30.0 + AIM_MARGIN_DB, abs=0.01)  # budgets rounded to 4 digits
    assert sum("budget_scale" in h for h in history) == 1
    assert start[0].config["budget"] == 0.05  # nothing changed in place
    assert scale_budgets(check, start, EndToEnd(30.1, 100.0, 50.0), 30.0, 2.0, history, progress) == (
        start, EndToEnd(30.1, 100.0, 50.0), None)
    only_exact = [start[1]]
    assert scale_budgets(check, only_exact, initial, 30.0, 2.0, history, progress) == (only_exact, initial, None)


def test_no_factor_is_checked_twice_nor_above_one_met():
    def psnr(factor):  # the error falls as the budgets shrink: the measured slope is of no use
        return 40.0 if factor < 0.95 else 31.0

    scaled = scale_to_target(psnr, 31.0, target_db=30.0, exponent=1.5)
    factors = [f for f, _ in scaled.checks]
    assert len(set(factors)) == len(factors)
    assert factors == sorted(factors, reverse=True)
    assert scaled.factor == factors[-1]
