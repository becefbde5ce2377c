"""The whole-model stage: one config for all sparse layers, searched end to end.

The per-layer studies meet per-layer proxies (each layer's attention PSNR on captured samples); the
user asked for the model's final PSNR. Here every Optuna trial is one end-to-end check of a single
config given to every layer the per-layer search kept sparse: minimise the denoising run's time,
subject to final PSNR ≥ target. The study (``{prefix}/uniform``, in the same storage, so a rerun
resumes it) starts from the per-layer search's consensus (each knob's median over the sparse
layers), once with and once without routing reuse, then bisects the budget of the operating point
measured fastest for long clips (:data:`OPERATING_POINT`, routing reused as long as allowed),
starting at the consensus budget. Its fastest feasible config then competes with the per-layer
profile (:func:`svg_ear_compile.tuner._tune.tune`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._end_to_end import EndToEnd
from ._search import EXACT_LAYER, LayerChoice, completed, open_study, optimize
from ._search_space import SearchSpace, nearest


@dataclass(frozen=True)
class UniformResult:
    params: dict[str, Any]
    psnr_db: float
    sparse_ms: float
    dense_ms: float
    trials: int
    budget_curve: list[list[float]] = field(default_factory=list)  # [budget, final PSNR dB]: the best's params
    runner_up: UniformResult | None = None  # the fastest feasible config of another kind (budget, reuse aside)


# 128 query and 1,024 key clusters, 64 listed centroids, one warm k-means iteration after ten cold ones:
# the fastest uniform config meeting 30 dB on the trained fixture's long clip, with guidance batched
# (routing reused for 6 calls, budget 0.16) and as two calls per step (budget 0.02; benchmarks/RESULTS.md,
# eleventh to thirteenth sessions). Where the per-layer search missed it, the one-config stage starts here.
OPERATING_POINT = {"num_q_clusters": 128, "num_k_clusters": 1024, "exact_centroids": 64, "kmeans_iters": 1,
                   "kmeans_iters_init": 10, "cost_exponent": 1.0}


def operating_point(space: SearchSpace, start: dict[str, Any], budget: float) -> dict[str, Any]:
    """:data:`OPERATING_POINT` over ``start`` at ``budget``, each knob moved into ``space``: cluster counts to
    the nearest (log scale) the space holds, iterations and budget clipped to its ranges, every centroid
    where the space has no listed ones, the tile table's tiles."""
    def clip(value: float, bounds: tuple[float, float]) -> float:
        return min(max(value, bounds[0]), bounds[1])

    params = {**start, **OPERATING_POINT,
              "num_q_clusters": nearest(space.query_clusters, OPERATING_POINT["num_q_clusters"]),
              "num_k_clusters": nearest(space.key_clusters, OPERATING_POINT["num_k_clusters"]),
              "kmeans_iters": int(clip(OPERATING_POINT["kmeans_iters"], space.kmeans_iters)),
              "kmeans_iters_init": int(clip(OPERATING_POINT["kmeans_iters_init"], space.kmeans_iters_init)),
              "cost_exponent": clip(OPERATING_POINT["cost_exponent"], space.cost_exponent),
              "budget": clip(budget, space.budget)}
    if space.block_sizes:
        params.update(block_m=None, block_n=None)  # the tile table's, as where this point was measured
    if len(space.exact_centroids) > 1:
        params["exact_centroids"] = OPERATING_POINT["exact_centroids"] if OPERATING_POINT["exact_centroids"] in \
            space.exact_centroids else None
    else:
        params.pop("exact_centroids", None)
    return params


def consensus(choices: list[LayerChoice]) -> dict[str, Any]:
    """Each knob's (low) median over the sparse layers' configs: a value some layer chose, so
    categorical ones (cluster counts, tiles) stay in their sets. ``None`` (``exact_centroids``:
    every centroid) ranks above every number."""
    configs = [c.config for c in choices if c.config != EXACT_LAYER]
    keys = [key for key in configs[0] if key != "refresh_every" and all(key in c for c in configs)]
    return {key: _median_low([c[key] for c in configs]) for key in keys}


def _median_low(values: list[Any]) -> Any:
    ranked = sorted(values, key=lambda value: (value is None, 0 if value is None else value))
    return ranked[(len(ranked) - 1) // 2]


BISECTION_STEPS = 3  # halvings (log scale) of the operating point's budget interval after the first probe


def search_uniform(check: Callable[[dict[str, Any]], EndToEnd], space: SearchSpace, start: dict[str, Any], *,
                   target: float, max_refresh: int, storage: Any, name: str, n_trials: int, timeout: float | None,
                   seed: int, on_trial: Callable[[int, str], None] | None = None) -> UniformResult | None:
    """Run the study until it has ``n_trials`` complete trials (or ``timeout`` s pass); return its
    fastest config meeting ``target``, or None. ``check(params)`` runs the model end to end.

    A new study first runs ``start`` without and with routing reuse, then bisects the budget of
    :func:`operating_point` (routing reused for ``max_refresh`` calls) over the space's budget range:
    the first probe at ``start``'s budget, then ``BISECTION_STEPS`` geometric midpoints of the interval
    left (the final PSNR grows with the budget). Optuna's sampler takes the trials left. The result
    names the fastest feasible config of another kind (other than in budget and routing reuse) as its
    runner-up: with its slack spent per layer it may end faster.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    study = open_study(storage, name, seed, n_trials)
    new_study = not study.get_trials(deepcopy=False)

    def objective(trial: Any) -> float:
        params = {**space.suggest(trial), "refresh_every": trial.suggest_int("refresh_every", 1, max_refresh)}
        measured = check(params)
        trial.set_user_attr("psnr_db", measured.psnr_db)
        trial.set_user_attr("dense_ms", measured.dense_ms)
        trial.set_constraint("psnr", target - measured.psnr_db)
        return measured.sparse_ms

    def report(study: Any, trial: Any) -> None:
        if on_trial is not None and trial.value is not None:
            on_trial(len(completed(study)), f"{trial.user_attrs['psnr_db']:.2f} dB, {trial.value:.1f} ms")

    def run(trials: int, *enqueued: dict[str, Any]) -> bool:
        """Up to ``trials`` more (the enqueued ones first) within the trial count and the time left;
        False when none could run."""
        trials = min(trials, n_trials - len(completed(study)))
        time_left = None if deadline is None else deadline - time.monotonic()
        if trials <= 0 or (time_left is not None and time_left <= 0):
            return False
        for params in enqueued:
            study.enqueue_trial(params)
        optimize(study, objective, n_trials=trials, timeout=time_left, callbacks=[report])
        return True

    def meets_target(budget: float) -> bool | None:
        """The operating point at ``budget``, run as the next trial: whether it met ``target`` (None: not run)."""
        if not run(1, {**operating_point(space, start, budget), "refresh_every": max_refresh}):
            return None
        return study.trials[-1].user_attrs.get("psnr_db", float("-inf")) >= target

    if new_study:
        refreshes = sorted({1, min(2, max_refresh)})
        run(len(refreshes), *({**start, "refresh_every": refresh} for refresh in refreshes))
        if "budget" in start:
            (low, high), budget = space.budget, start["budget"]
            for _ in range(1 + BISECTION_STEPS):
                met = meets_target(budget)
                if met is None:
                    break
                low, high = (low, budget) if met else (budget, high)
                budget = math.sqrt(low * high)
    run(n_trials)
    trials = completed(study)
    feasible = [t for t in trials if t.user_attrs.get("psnr_db", float("-inf")) >= target]
    if not feasible:
        return None
    ranked = sorted(feasible, key=lambda t: t.value)

    def kind(params: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in params.items() if key not in ("budget", "refresh_every")}

    def result(best: Any, runner_up: UniformResult | None = None) -> UniformResult:
        same = [t for t in trials if "budget" in t.params and kind(t.params) == kind(best.params)
                and t.params.get("refresh_every") == best.params.get("refresh_every")]
        curve = sorted([t.params["budget"], t.user_attrs["psnr_db"]] for t in same)
        return UniformResult(dict(best.params), best.user_attrs["psnr_db"], best.value, best.user_attrs["dense_ms"],
                             len(trials), curve, runner_up)

    other = next((t for t in ranked if kind(t.params) != kind(ranked[0].params)), None)
    return result(ranked[0], None if other is None else result(other))
