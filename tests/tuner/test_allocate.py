# Budget trading between layers: sensitivities from one probe per layer, the cheapest allocation the model
# allows (against SciPy's constrained minimiser), and verification end to end with the model's residual.
import math

import pytest

from svg_ear_compile.tuner._allocate import (
    DEFAULT_EXPONENT,
    EXPONENT_RANGE,
    PROBE_RATIO,
    VERIFY_CHECKS,
    Allocation,
    budget_exponent,
    squared_error,
    trade_budgets,
)


def _psnr(error: float) -> float:
    return -10.0 * math.log10(error)


def _additive(sensitivity, exponent, floor=0.0):
    """A model whose final error is exactly ``floor + Σ a_i·b_i^(−p)``; records every check."""
    checked = []

    def check(budgets):
        checked.append(tuple(budgets))
        return _psnr(floor + sum(a * b ** -exponent for a, b in zip(sensitivity, budgets, strict=True)))

    return check, checked


@pytest.mark.parametrize("exponent", [1.0, 1.5, 2.0])
def test_the_exponent_is_the_slope_of_the_error_over_the_budget(exponent):
    curve = [(b, _psnr(3e-4 * b ** -exponent)) for b in (0.05, 0.09, 0.16, 0.3)]
    assert budget_exponent(curve) == pytest.approx(exponent)
    assert budget_exponent(curve[:1]) == DEFAULT_EXPONENT  # one budget: no slope
    assert budget_exponent([(0.1, 30.0), (0.2, 30.0)]) == EXPONENT_RANGE[0]  # flat: clipped


def test_probes_recover_each_layers_sensitivity():
    sensitivity, exponent = [6e-5, 1e-5, 3e-6, 2e-5], 1.5
    check, checked = _additive(sensitivity, exponent, floor=2e-4)
    start = [0.16, 0.16, 0.2, 0.1]
    probes = [check([*start[:i], PROBE_RATIO * b, *start[i + 1:]]) for i, b in enumerate(start)]
    allocation = Allocation.from_probes(start, check(start), probes, exponent)
    assert allocation.sensitivity == pytest.approx(sensitivity, rel=1e-6)
    budgets = [0.1, 0.3, 0.12, 0.15]  # the model then predicts any other budgets exactly
    assert allocation.predicted_error(budgets) == pytest.approx(squared_error(check(budgets)), rel=1e-9)


def test_a_probe_that_lost_nothing_still_counts_a_little():
    allocation = Allocation.from_probes([0.1, 0.1], 30.0, [29.0, 30.0], 1.0)
    assert 0 < allocation.sensitivity[1] < 1e-2 * allocation.sensitivity[0]


@pytest.mark.parametrize("exponent", [1.0, 1.5])
def test_the_allocation_is_the_cheapest_the_model_allows(exponent):
    optimize = pytest.importorskip("scipy.optimize")
    sensitivity = [8e-5, 1e-5, 2e-5, 5e-6]
    start = [0.16] * 4
    allocation = Allocation(tuple(start), tuple(sensitivity), exponent, sum(a * 0.16 ** -exponent
                                                                           for a in sensitivity))
    target = allocation.start_error
    budgets = allocation.budgets(target)
    assert allocation.predicted_error(budgets) == pytest.approx(target, rel=1e-6)
    bounds = [(PROBE_RATIO * s, s / PROBE_RATIO) for s in start]
    oracle = optimize.minimize(
        sum, x0=start, method="SLSQP", bounds=bounds,
        constraints=[{"type": "ineq", "fun": lambda b: 1.0 - allocation.predicted_error(b) / target}],
        options={"ftol": 1e-12, "maxiter": 500})
    assert oracle.success
    assert sum(budgets) == pytest.approx(oracle.fun, rel=1e-4)
    assert budgets == pytest.approx(oracle.x, rel=1e-2)
    assert sum(budgets) < sum(start)  # the sensitive layer gets more, the rest less


def test_the_allocation_is_none_where_even_the_largest_budgets_miss():
    allocation = Allocation((0.1, 0.1), (1e-4, 1e-4), 1.0, 2e-3)
    assert allocation.budgets(1e-4) is None


def test_trading_meets_the_target_end_to_end_with_less_budget():
    sensitivity, exponent = [6e-5, 4e-6, 5e-6, 3e-6], 1.5
    check, checked = _additive(sensitivity, exponent, floor=1e-4)
    start = [0.16] * 4
    start_psnr = check(start)
    traded = trade_budgets(check, start, start_psnr, target_db=start_psnr - 0.2, exponent=exponent)
    target = start_psnr - 0.2
    assert check(traded.budgets) == pytest.approx(traded.psnr_db) and traded.psnr_db >= target
    assert sum(traded.budgets) < 0.85 * sum(start)
    assert traded.budgets[0] > start[0] and all(b < s for b, s in zip(traded.budgets[1:], start[1:], strict=True))
    probes = checked[1:5]
    assert probes == [tuple(PROBE_RATIO * s if j == i else s for j, s in enumerate(start)) for i in range(4)]


def test_a_missed_allocation_is_corrected_by_its_miss_then_by_the_secant():
    sensitivity, start = [6e-5, 4e-6, 5e-6, 3e-6], [0.16] * 4
    check, checked = _additive(sensitivity, 2.0, floor=1e-4)
    start_psnr = check(start)
    target = start_psnr - 0.1
    # told p = 1 (it is 2), the model expects too little from the budget moved to layer 0: the first allocation misses
    traded = trade_budgets(check, start, start_psnr, target_db=target, exponent=1.0)
    verified = checked[1 + len(start):]
    assert len(verified) == VERIFY_CHECKS
    assert check(verified[0]) < target and check(verified[1]) < target and check(verified[2]) >= target
    assert traded.budgets == verified[2] and traded.psnr_db == pytest.approx(check(verified[2]))
    assert sum(traded.budgets) < 0.85 * sum(start)


def test_nothing_is_kept_when_no_allocation_is_cheaper_than_the_start():
    check, checked = _additive([1e-5, 1e-5], 1.0)
    start = [0.1, 0.1]
    start_psnr = check(start)
    traded = trade_budgets(check, start, start_psnr, target_db=start_psnr, exponent=1.0)
    assert traded.budgets is None and traded.psnr_db is None  # equal layers: the start is already optimal
    assert len(checked) == 1 + len(start)  # the probes only
