"""The last of the slack: every sparse budget, early and late, scaled by one factor ``s < 1`` until the
final PSNR lands just above the target.

The stages before this one move in coarse steps (a bisection's last bracket, an allocation's aim) and
left 0.6–0.9 dB above a 30 dB target unspent on the fixture (``benchmarks/RESULTS.md``, fifteenth
session). Scaling every budget by one factor keeps the proportions those stages chose.

With the final squared error modelled as ``e(s) = e_1·s^(−p)`` around the start (``s = 1``, measured
``e_1``; ``p`` the exponent of one config's error over its budget), the factor aimed at
``target + AIM_MARGIN_DB`` is ``s = (e_1 / e_aim)^(1/p)``. Each later check follows the secant of
``log e`` over ``log s`` through the two measured points nearest the aim, and falls back to the
bracket's midpoint where the secant leaves the bracket (smallest factor met, largest missed, at first
``SCALE_FLOOR``). At most ``SCALE_CHECKS`` checks; the search stops once a met check lands within
``CLOSE_DB`` of the target or the next factor would save less than ``MIN_SAVING``. The smallest factor
met is kept.

    >>> def final_psnr(s): return 32.0 + 20.0 * math.log10(s)  # e ∝ s^(−2)
    >>> scaled = scale_to_target(final_psnr, 32.0, target_db=30.0, exponent=2.0)
    >>> round(scaled.factor, 3), round(scaled.psnr_db, 2), len(scaled.checks)
    (0.804, 30.1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ._allocate import AIM_MARGIN_DB, squared_error

SCALE_CHECKS = 3
SCALE_FLOOR = 0.5  # the smallest factor tried: below it the fitted exponent no longer speaks for the error
CLOSE_DB = 0.25  # a met check this close to the target ends the search
MIN_SAVING = 0.02  # a factor is checked only when it is this much smaller than the smallest met


@dataclass(frozen=True)
class Scaled:
    factor: float
    psnr_db: float
    checks: list[list[float]] = field(default_factory=list)  # [factor, final PSNR dB] per check


def scale_to_target(check: Callable[[float], float], start_psnr_db: float, *, target_db: float,
                    exponent: float) -> Scaled | None:
    """The smallest factor met: ``check(s)`` runs the model end to end with every sparse budget × ``s``
    and returns its final PSNR. None when the start already lies within ``CLOSE_DB`` of the target (or
    below it) or no checked factor met it."""
    if start_psnr_db - target_db <= CLOSE_DB:
        return None
    aim = math.log(squared_error(target_db + AIM_MARGIN_DB))
    points = [(0.0, math.log(squared_error(start_psnr_db)))]  # (log s, log e)
    met, missed = 0.0, math.log(SCALE_FLOOR)
    best: tuple[float, float] | None = None
    checks: list[list[float]] = []
    for _ in range(SCALE_CHECKS):
        log_factor = _next_log_factor(points, aim, exponent, met, missed)
        if log_factor > met + math.log(1.0 - MIN_SAVING):
            break
        factor = math.exp(log_factor)
        psnr_db = check(factor)
        checks.append([factor, psnr_db])
        points.append((log_factor, math.log(squared_error(psnr_db))))
        if psnr_db < target_db:
            missed = log_factor
            continue
        met, best = log_factor, (factor, psnr_db)
        if psnr_db - target_db <= CLOSE_DB:
            break
    return None if best is None else Scaled(*best, checks)


def _next_log_factor(points: list[tuple[float, float]], aim: float, exponent: float, met: float,
                     missed: float) -> float:
    """``log s`` where the secant through the two points nearest ``aim`` (in ``log e``) reaches it, with
    slope ``−exponent`` while only the start is known or where the measured slope is not negative; the
    bracket's midpoint where that falls outside ``(missed, met)``."""
    nearest = sorted(points, key=lambda point: abs(point[1] - aim))[:2]
    slope = -exponent
    if len(nearest) == 2 and nearest[0][0] != nearest[1][0]:
        measured = (nearest[1][1] - nearest[0][1]) / (nearest[1][0] - nearest[0][0])
        slope = measured if measured < 0 else slope
    log_factor = nearest[0][0] + (aim - nearest[0][1]) / slope
    return log_factor if missed < log_factor < met else (missed + met) / 2
