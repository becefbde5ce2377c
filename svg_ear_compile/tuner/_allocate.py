"""Budget trading between layers, end to end: each sparse layer's budget set by how much its error costs
the model's final output.

One config for all layers gives every layer the budget the most sensitive one needs. Here the final
squared error (relative to the dense finals' range², ``e = 10^(−PSNR/10)``) is modelled to first order
as a sum over layers around the starting budgets ``β_i`` (where it measured ``e_0``)::

    e(b) = e_0 + Σ_i a_i·(b_i^(−p) − β_i^(−p))

with ``p`` the exponent of one config's error over its budget (``e ∝ b^(−p)``, fitted from the one-config
stage's checks at several budgets). One end-to-end check per layer, with that layer alone at
``PROBE_RATIO·β_i``, gives its sensitivity ``a_i``. Every layer of one shape spends the same run time per
unit of budget, so the cheapest budgets meeting ``e(b) ≤ e_target`` minimise ``Σ b_i``; by Lagrange
``b_i = c·a_i^(1/(p+1))``, with ``c`` the smallest scale that meets the target (bisection), each budget kept
within ``[PROBE_RATIO·β_i, β_i / PROBE_RATIO]`` (the range the probes speak for).

An end-to-end check verifies the allocation, aimed ``AIM_MARGIN_DB`` above the target. Where the
measured error is off that aim, the allocation is redone aiming off by the miss, then along the secant
through the last two (aim, measured) pairs: ``VERIFY_CHECKS`` checks at most, each for an allocation
``MIN_SAVING`` cheaper than the best verified so far (or the start). The cheapest verified allocation
(by ``Σ b_i``) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROBE_RATIO = 0.5  # a probe runs one layer at half its budget
VERIFY_CHECKS = 3
AIM_MARGIN_DB = 0.1  # allocations aim this far above the target: a secant step lands on its aim only roughly
MIN_SAVING = 0.02  # an allocation is checked only when it needs this share less budget than the best so far
DEFAULT_EXPONENT = 1.5  # e ∝ b^(−1.5): the operating point on the trained fixture, budgets 0.08–0.16 (RESULTS.md)
EXPONENT_RANGE = (0.25, 4.0)
_MIN_SENSITIVITY = 1e-3  # of the mean: a layer whose probe cost nothing measurable still counts a little


def squared_error(psnr_db: float) -> float:
    """``e = 10^(−PSNR/10)``: the final squared error relative to the dense finals' range²."""
    return 10.0 ** (-psnr_db / 10.0)


def budget_exponent(curve: Sequence[tuple[float, float]]) -> float:
    """``p`` of ``e ∝ b^(−p)``: the least-squares slope of ``−log e`` over ``log b`` through ``curve``'s
    (budget, final PSNR dB) points, clipped to ``EXPONENT_RANGE``; ``DEFAULT_EXPONENT`` without two
    distinct budgets.

    >>> round(budget_exponent([(0.1, 30.0), (0.2, 30.0 + 10 * math.log10(2))]), 6)
    1.0
    """
    points = [(math.log(b), -math.log(squared_error(psnr))) for b, psnr in curve if b > 0]
    if len({x for x, _ in points}) < 2:
        return DEFAULT_EXPONENT
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in points)
             / sum((x - mean_x) ** 2 for x, _ in points))
    return min(max(slope, EXPONENT_RANGE[0]), EXPONENT_RANGE[1])


@dataclass(frozen=True)
class Allocation:
    """The model behind an allocation: per-layer sensitivities ``a_i`` around ``start`` budgets, the
    exponent ``p``, and the start's measured error ``e_0``."""

    start: tuple[float, ...]
    sensitivity: tuple[float, ...]
    exponent: float
    start_error: float

    @classmethod
    def from_probes(cls, start: Sequence[float], start_psnr_db: float, probe_psnr_db: Sequence[float],
                    exponent: float) -> Allocation:
        """``a_i = (e_i − e_0) / ((PROBE_RATIO·β_i)^(−p) − β_i^(−p))`` from each layer's probe alone at
        ``PROBE_RATIO·β_i``; at least ``_MIN_SENSITIVITY`` of the mean where a probe measured no loss."""
        e0 = squared_error(start_psnr_db)
        raw = [(squared_error(psnr) - e0) / ((PROBE_RATIO * b) ** -exponent - b ** -exponent)
               for b, psnr in zip(start, probe_psnr_db, strict=True)]
        floor = _MIN_SENSITIVITY * max(sum(max(a, 0.0) for a in raw) / len(raw), 1e-30)
        return cls(tuple(start), tuple(max(a, floor) for a in raw), exponent, e0)

    def predicted_error(self, budgets: Sequence[float]) -> float:
        return self.start_error + sum(a * (b ** -self.exponent - s ** -self.exponent)
                                      for a, b, s in zip(self.sensitivity, budgets, self.start, strict=True))

    def budgets(self, target_error: float) -> tuple[float, ...] | None:
        """The cheapest budgets (least ``Σ b_i``) the model predicts meet ``target_error``, each within
        ``[PROBE_RATIO·β_i, β_i / PROBE_RATIO]``; None where even the largest miss."""
        p = self.exponent
        bounds = [(PROBE_RATIO * s, s / PROBE_RATIO) for s in self.start]
        shares = [a ** (1.0 / (p + 1.0)) for a in self.sensitivity]

        def at(scale: float) -> tuple[float, ...]:
            return tuple(min(max(scale * w, low), high) for w, (low, high) in zip(shares, bounds, strict=True))

        if self.predicted_error([high for _, high in bounds]) > target_error:
            return None
        low = min(lo / w for w, (lo, _) in zip(shares, bounds, strict=True))   # every budget at its floor
        high = max(hi / w for w, (_, hi) in zip(shares, bounds, strict=True))  # every budget at its ceiling
        if self.predicted_error(at(low)) <= target_error:
            return at(low)
        for _ in range(60):  # bisection of the scale on a log axis; the error falls as the scale grows
            middle = math.sqrt(low * high)
            low, high = (low, middle) if self.predicted_error(at(middle)) <= target_error else (middle, high)
        return at(high)


@dataclass(frozen=True)
class Traded:
    """What the budget trading found: the model, and the cheapest verified budgets (None: none cheaper)."""

    allocation: Allocation
    budgets: tuple[float, ...] | None
    psnr_db: float | None


def trade_budgets(check: Callable[[Sequence[float]], float], start: Sequence[float], start_psnr_db: float, *,
                  target_db: float, exponent: float,
                  on_check: Callable[[str, Sequence[float], float], None] | None = None) -> Traded:
    """Probe each layer, allocate, verify (see the module docstring). ``check(budgets)`` runs the model end
    to end with those per-layer budgets and returns its final PSNR; ``on_check(kind, budgets, psnr)`` is
    told of every check (``kind``: ``"probe"`` or ``"allocation"``).

    >>> sensitivity = [8.0, 1.0, 1.0]  # the final error: Σ a_i / b_i, so p = 1
    >>> def check(budgets): return -10 * math.log10(sum(a / b for a, b in zip(sensitivity, budgets)) * 1e-4)
    >>> start = [0.2, 0.2, 0.2]
    >>> traded = trade_budgets(check, start, check(start), target_db=check(start) - 0.2, exponent=1.0)
    >>> [round(b, 3) for b in traded.budgets], round(sum(traded.budgets) / sum(start), 3)
    ([0.257, 0.1, 0.1], 0.761)
    """
    report = on_check or (lambda kind, budgets, psnr: None)
    probes = []
    for index, budget in enumerate(start):
        budgets = [*start[:index], PROBE_RATIO * budget, *start[index + 1:]]
        probes.append(check(budgets))
        report("probe", budgets, probes[-1])
    allocation = Allocation.from_probes(start, start_psnr_db, probes, exponent)
    aim_error = squared_error(target_db + AIM_MARGIN_DB)
    best: tuple[tuple[float, ...], float] | None = None
    aims: list[tuple[float, float]] = []  # (error the allocation aimed at, error measured)
    checked: list[tuple[float, ...]] = []
    for _ in range(VERIFY_CHECKS):
        aim = _next_aim(aims, aim_error)
        budgets = allocation.budgets(aim) if aim > 0 else None
        if budgets is None or budgets in checked or sum(budgets) > (1 - MIN_SAVING) * sum(best[0] if best else start):
            break
        psnr_db = check(budgets)
        report("allocation", budgets, psnr_db)
        checked.append(budgets)
        aims.append((aim, squared_error(psnr_db)))
        if psnr_db >= target_db and (best is None or sum(budgets) < sum(best[0])):
            best = (budgets, psnr_db)
    return Traded(allocation, *(best if best else (None, None)))


def _next_aim(aims: Sequence[tuple[float, float]], target_error: float) -> float:
    """The error the next allocation aims at so that the measured one lands on ``target_error``: the
    target itself first, then shifted by the model's last miss, then the secant through the last two
    (aim, measured) pairs."""
    if not aims:
        return target_error
    (aim, measured), slope = aims[-1], 1.0
    if len(aims) > 1 and aims[-2][1] != measured and aims[-2][0] != aim:
        slope = (measured - aims[-2][1]) / (aim - aims[-2][0])
        slope = slope if slope > 0 else 1.0
    return aim + (target_error - measured) / slope
