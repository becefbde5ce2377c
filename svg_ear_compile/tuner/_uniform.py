"""The whole-model stage: one config for all sparse layers, searched end to end.

The per-layer studies meet per-layer proxies (each layer's attention PSNR on captured samples); the
user asked for the model's final PSNR. Here every Optuna trial is one end-to-end check of a single
config given to every layer the per-layer search kept sparse: minimise the denoising run's time,
subject to final PSNR ≥ target. The study (``{prefix}/uniform``, in the same storage, so a rerun
resumes it) starts from the per-layer search's consensus (each knob's median over the sparse
layers), once with and once without routing reuse. Its fastest feasible config then competes with
the per-layer profile (:func:`svg_ear_compile.tuner._tune.tune`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._end_to_end import EndToEnd
from ._search import EXACT_LAYER, LayerChoice, completed, open_study, optimize
from ._search_space import SearchSpace


@dataclass(frozen=True)
class UniformResult:
    params: dict[str, Any]
    psnr_db: float
    sparse_ms: float
    dense_ms: float
    trials: int


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


def search_uniform(check: Callable[[dict[str, Any]], EndToEnd], space: SearchSpace, start: dict[str, Any], *,
                   target: float, max_refresh: int, storage: Any, name: str, n_trials: int, timeout: float | None,
                   seed: int, on_trial: Callable[[int, str], None] | None = None) -> UniformResult | None:
    """Run the study until it has ``n_trials`` complete trials (or ``timeout`` s pass); return its
    fastest config meeting ``target``, or None. ``check(params)`` runs the model end to end."""

    study = open_study(storage, name, seed, n_trials)
    if not study.get_trials(deepcopy=False):
        for refresh in sorted({1, min(2, max_refresh)}):
            study.enqueue_trial({**start, "refresh_every": refresh})

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

    remaining = n_trials - len(completed(study))
    if remaining > 0 and (timeout is None or timeout > 0):
        optimize(study, objective, n_trials=remaining, timeout=timeout, callbacks=[report])
    trials = completed(study)
    feasible = [t for t in trials if t.user_attrs.get("psnr_db", float("-inf")) >= target]
    if not feasible:
        return None
    best = min(feasible, key=lambda t: t.value)
    return UniformResult(dict(best.params), best.user_attrs["psnr_db"], best.value, best.user_attrs["dense_ms"],
                         len(trials))
