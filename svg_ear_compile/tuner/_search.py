"""Per-layer Optuna studies in a shared storage: run a layer's trials, pick its fastest feasible config.

One study per (layer, round), named ``{prefix}/layer{L:03d}/round{r}``, holds the layer's PSNR target
as a study attribute (set once, so a resumed or second worker uses the same one). A new study first
tries the conservative config, then (in a later round) the earlier rounds' fastest configs that meet
its target. Trials count toward ``n_trials`` only when complete, so a stopped run resumes with what it
had finished. Ctrl-C during a search lets the running trial finish and be stored, then stops (a second
Ctrl-C stops at once); a killed run leaves its running trial behind, which is not counted. Any number
of processes may run the same task on the same storage (an RDB URL or a journal file): they share one
study.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..config import SvgEarConfig
from ._calibration import CalibrationSet
from ._objective import MAX_PSNR, LayerEvaluator, LayerObjective
from ._search_space import SearchSpace

EXACT_LAYER = {"min_seq_len": 2**31 - 1}  # a layer no trial served runs exact attention (SDPA)


@dataclass(frozen=True)
class Task:
    layer: int
    round: int
    target_psnr_db: float


def study_name(prefix: str, layer: int, round_: int) -> str:
    return f"{prefix}/layer{layer:03d}/round{round_}"


def open_storage(spec: str) -> Any:
    """An Optuna storage: an RDB URL (``sqlite:///tune.db``, ``postgresql://…``) or a journal file path."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    return optuna.storages.JournalStorage(JournalFileBackend(spec))


def open_study(storage: Any, name: str, seed: int | None = None, n_trials: int = 30) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, n_trials // 3)),
                                         constant_liar=True)
    return optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler,
                               load_if_exists=True)


def completed(study: Any) -> list[Any]:
    import optuna

    return [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]


def run_task(
    task: Task,
    *,
    storage: Any,
    prefix: str,
    calibration: CalibrationSet,
    base: SvgEarConfig,
    n_trials: int | None,
    timeout: float | None,
    device: str,
    repeats: int,
    seed: int,
    run_calls: int,
    on_trial: Callable[[int], None] | None = None,
) -> None:
    """Run ``task``'s layer study until it has ``n_trials`` complete trials or ``timeout`` seconds pass."""
    import optuna

    study = open_study(storage, study_name(prefix, task.layer, task.round), seed, n_trials or 30)
    if "target_psnr_db" not in study.user_attrs:
        study.set_user_attr("target_psnr_db", task.target_psnr_db)
    target = study.user_attrs["target_psnr_db"]
    if n_trials is not None and len(completed(study)) >= n_trials:
        return
    if timeout is not None and timeout <= 0:
        return
    samples = calibration.samples(task.layer)
    seq_len = samples[0]["q"].shape[2]
    triton = torch.device(device).type == "cuda" and base.impl != "reference"
    space = SearchSpace.for_layer(seq_len, triton=triton, compensation=base.compensation)
    evaluator = LayerEvaluator(samples, base, full_heads=calibration.full_heads, run_calls=run_calls, device=device,
                               repeats=repeats)
    study.set_user_attr("dense_latency_ms", evaluator.dense_latency_ms)
    if not study.get_trials(deepcopy=False):
        for params in [space.conservative(), *earlier_fastest(storage, prefix, task)]:
            study.enqueue_trial(params)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def tag(trial: optuna.trial.Trial) -> float:
        trial.set_user_attr("worker", worker)
        return LayerObjective(evaluator, space, target)(trial)

    callbacks = []
    if n_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=(optuna.trial.TrialState.COMPLETE,)))
    if on_trial is not None:
        callbacks.append(lambda study, trial: on_trial(len(completed(study))))
    optimize(study, tag, timeout=timeout, callbacks=callbacks)


def earlier_fastest(storage: Any, prefix: str, task: Task, count: int = 3) -> list[dict[str, Any]]:
    """The ``count`` fastest configs of ``task``'s layer from earlier rounds that meet its target: a new
    round's study tries them first, so a raised target starts from the configs known to meet it rather
    than from random ones (TPE then searches around them)."""
    import optuna

    trials = []
    for round_ in range(task.round):
        try:
            study = optuna.load_study(study_name=study_name(prefix, task.layer, round_), storage=storage)
        except KeyError:
            continue
        trials += [t for t in completed(study) if t.user_attrs.get("psnr_db", -math.inf) >= task.target_psnr_db]
    unique = {}
    for trial in sorted(trials, key=lambda t: t.value):
        unique.setdefault(tuple(sorted(trial.params.items())), trial.params)
    return list(unique.values())[:count]


def optimize(study: Any, objective: Callable[[Any], float], **kwargs: Any) -> None:
    """``study.optimize(objective, **kwargs)`` (a failing trial stops it); Ctrl-C stops it after the
    running trial, then raises ``KeyboardInterrupt`` (a second Ctrl-C raises at once)."""
    with _stop_after_trial_on_interrupt(study) as interrupted:
        study.optimize(objective, catch=(), **kwargs)
    if interrupted():
        raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_after_trial_on_interrupt(study: Any) -> Iterator[Callable[[], bool]]:
    """SIGINT asks ``study`` to stop after its running trial (storage writes are never cut in half)."""
    requested: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)
        study.stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(requested)
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class LayerChoice:
    layer: int
    config: dict[str, Any]
    latency_ms: float
    psnr_db: float
    target_psnr_db: float | None  # None: chosen end to end (the uniform stage), no per-layer target
    dense_latency_ms: float | None
    trials: int
    trial_points: list[tuple[float, float]]  # (latency_ms, psnr_db) of every complete trial, for the plot


def choose(storage: Any, prefix: str, layer: int, rounds: int, target: float, *,
           keep_sparse: bool = False) -> LayerChoice:
    """The fastest complete trial of ``layer`` (any round up to ``rounds``) whose PSNR meets ``target``.

    Exact attention for that layer when none does, or (unless ``keep_sparse``) when the fastest one is
    no faster than exact attention measured on the same samples."""
    import optuna

    trials, dense = [], None
    for round_ in range(rounds + 1):
        name = study_name(prefix, layer, round_)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            continue
        trials += completed(study)
        dense = study.user_attrs.get("dense_latency_ms", dense)
    points = [(t.value, t.user_attrs.get("psnr_db", -math.inf)) for t in trials]
    feasible = [t for t in trials if t.user_attrs.get("psnr_db", -math.inf) >= target]
    best = min(feasible, key=lambda t: t.value) if feasible else None
    if best is None or (not keep_sparse and dense is not None and best.value >= dense):
        return LayerChoice(layer, dict(EXACT_LAYER), dense or math.nan, MAX_PSNR, target, dense, len(trials), points)
    return LayerChoice(layer, dict(best.params), best.value, best.user_attrs["psnr_db"], target, dense, len(trials),
                       points)
