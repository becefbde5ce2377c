"""The whole tuning run: calibration → per-layer search → end-to-end check (a few rounds) → profile + plot.

Per-layer targets start at ``psnr_target + layer_margin``. When the model's final-latent PSNR misses
``psnr_target`` by ``d`` dB, every sparse layer is searched again (a new study per round; earlier
trials still count, at most ``rounds`` times) with the target ``max(target, achieved) + d + 1`` dB:
to first order the final error is a sum of the layers' errors, so cutting each layer's squared error
by ``d`` dB cuts the final one by as much. Once a raised round meets the target, a short bisection
gives back the overshoot (:func:`relax_targets`). A layer whose fastest feasible config is no faster than
exact attention runs exact attention (unless ``keep_sparse``). Then, end to end: a study of one config
for all layers that may run sparse (:func:`_end_to_end_candidates`; :mod:`._uniform`) replaces the
per-layer result when it is faster. Its PSNR above the target is then spent (:func:`spend_slack`): each
sparse layer in turn reuses its routing over more calls (up to ``max_refresh``, tried at once first)
while the final PSNR stays on target (:func:`refine_per_layer`); then budget moves between layers by
their measured end-to-end sensitivity (:func:`trade_between_layers`), or, where no allocation was
verified, each layer takes smaller budgets one step at a time. The one-config stage's runner-up of
another kind goes through the same, and the faster of the two is kept. The profile records what was
achieved, met or not.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import pathlib
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..config import SvgEarConfig
from ..profiles import LayerResult, Profile, ProfileError, write_profile
from . import _end_to_end
from ._allocate import DEFAULT_EXPONENT, PROBE_RATIO, VERIFY_CHECKS, budget_exponent, trade_budgets
from ._calibration import capture
from ._early import EARLY_BOOSTS, LATE_CHECKS, cut_timestep, schedule_budgets
from ._model import Guidance, TunerError, load_model
from ._objective import LayerEvaluator
from ._scale import CLOSE_DB, SCALE_CHECKS, scale_to_target
from ._search import EXACT_LAYER, LayerChoice, Task, choose, completed, open_storage, study_name
from ._search_space import BUDGET_RANGE, SearchSpace, uniform_config
from ._uniform import consensus, search_uniform
from ._workers import run_job, run_workers, write_job


@dataclass
class TuneSettings:
    """Everything ``svg-ear-tune`` takes (see :mod:`svg_ear_compile.tuner.cli` for the flags)."""

    model: str
    out: str
    psnr_target: float = 30.0
    resolution: str | None = None
    steps: int = 10
    seeds: list[int] = field(default_factory=lambda: [0])
    conditions: str | None = None
    capture_steps: int = 2
    max_heads: int = 2
    layer_margin: float = 3.0
    n_trials: int | None = 30
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    workers: int | None = None
    rounds: int = 3
    min_seq_len: int = 1024
    device: str | None = None
    dtype: str | None = None
    repeats: int | None = None
    seed: int = 0
    plot: bool = True
    uniform_budgets: list[float] = field(default_factory=list)
    keep_sparse: bool = False
    max_refresh: int = 6
    uniform_trials: int = 24
    guidance: float = 1.0
    guidance_batched: bool = False
    command: str = ""

    @property
    def guidance_mode(self) -> Guidance:
        return Guidance(self.guidance, self.guidance_batched)

    def as_command(self) -> str:
        """The ``svg-ear-tune`` line that runs these settings (what a profile records when none was given)."""
        flags = {"--model": self.model, "--resolution": self.resolution, "--steps": self.steps,
                 "--seeds": ",".join(map(str, self.seeds)), "--conditions": self.conditions,
                 "--capture-steps": self.capture_steps, "--max-heads": self.max_heads,
                 "--psnr-target": self.psnr_target, "--layer-margin": self.layer_margin,
                 "--trials": self.n_trials or 0, "--timeout": self.timeout, "--storage": self.storage,
                 "--study-name": self.study_name, "--out": self.out, "--workers": self.workers,
                 "--rounds": self.rounds, "--min-seq-len": self.min_seq_len, "--device": self.device,
                 "--dtype": self.dtype, "--repeats": self.repeats, "--seed": self.seed,
                 "--max-refresh": self.max_refresh, "--uniform-trials": self.uniform_trials,
                 "--guidance": self.guidance if self.guidance != 1.0 else None,
                 "--guidance-calls": "batched" if self.guidance_batched else None}
        words = ["svg-ear-tune"] + [w for k, v in flags.items() if v is not None for w in (k, str(v))]
        if self.uniform_budgets:
            words += ["--uniform-budgets", *map(str, self.uniform_budgets)]
        words += ["--keep-sparse"] if self.keep_sparse else []
        return shlex.join(words + ([] if self.plot else ["--no-plot"]))


class Progress(Protocol):
    def phase(self, text: str, total: int) -> None: ...
    def update(self, done: int, text: str) -> None: ...


class _Silent:
    def phase(self, text: str, total: int) -> None:
        pass

    def update(self, done: int, text: str) -> None:
        pass


@dataclass
class TuneResult:
    profile: Profile
    profile_path: pathlib.Path
    plot_path: pathlib.Path | None
    choices: list[LayerChoice]


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def _check_writable(out: pathlib.Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as error:
        raise TunerError(f"--out {str(out)!r}: cannot write there ({error.strerror or error})") from None


def _load_conditions(path: str | None) -> list[dict[str, Any]] | None:
    """``--conditions``: a torch file with a list of dicts of model inputs (e.g. ``encoder_hidden_states``)."""
    if path is None:
        return None
    try:
        conditions = torch.load(path, weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch.load raises many kinds)
        raise TunerError(f"--conditions {path!r}: cannot load it ({type(error).__name__}: {error})") from None
    if isinstance(conditions, dict):
        conditions = [conditions]
    if not isinstance(conditions, list) or not conditions or not all(isinstance(c, dict) for c in conditions):
        raise TunerError(f"--conditions {path!r}: expected a list of dicts of model inputs")
    return conditions


def _base_fields(settings: TuneSettings) -> dict[str, Any]:
    """The fields every layer's config shares (a profile's ``base_config``). Batched guidance routes both
    prompts alike (``batch_shares_routing``): their errors then cancel in ``v_u + w·(v_c − v_u)``
    (+2.6 to +2.9 dB on the fixture at equal density, ``benchmarks/RESULTS.md``, ninth session)."""
    fields: dict[str, Any] = {"min_seq_len": settings.min_seq_len}
    if settings.guidance_mode.batch > 1:
        fields["batch_shares_routing"] = True
    return fields


def _guidance_slug(guidance: Guidance) -> str:
    """The study-name part that keeps differently guided calibrations apart ('' without guidance)."""
    return f"/cfg{guidance.scale:g}{'b' if guidance.batched else 'x2'}" if guidance.active else ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def _versions() -> dict[str, str]:
    import optuna

    from .. import __version__

    versions = {"torch": str(torch.__version__), "optuna": str(optuna.__version__), "svg_ear_compile": __version__}
    for name in ("triton", "diffusers"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                continue
        versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def tune(settings: TuneSettings, progress: Progress | None = None) -> TuneResult:
    """Run the whole search; returns the profile written under ``settings.out`` (see the module docstring)."""
    progress = progress or _Silent()
    if settings.n_trials is None and settings.timeout is None:
        raise TunerError("give a trial budget (--trials) and/or a time limit (--timeout)")
    if settings.max_refresh < 1:
        raise TunerError(f"--max-refresh {settings.max_refresh}: must be at least 1 (1: no routing reuse)")
    if settings.uniform_trials < 0:
        raise TunerError(f"--uniform-trials {settings.uniform_trials}: must be at least 0 (0: no uniform stage)")
    guidance = settings.guidance_mode  # checks the scale
    out = pathlib.Path(settings.out)
    _check_writable(out)
    device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = _DTYPES[settings.dtype or ("bf16" if device.startswith("cuda") else "fp32")]
    device_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    conditions = _load_conditions(settings.conditions)
    tune_model = load_model(settings.model, resolution=settings.resolution, device=device, dtype=dtype)
    for condition in conditions or [None]:
        guidance.split(tune_model.inputs_for(0, condition))  # a missing unconditional input fails here, not later
    base = SvgEarConfig(**_base_fields(settings))

    progress.phase("calibration (dense run)", 0)
    capture_settings = {"model": settings.model, "config_hash": tune_model.config_hash(),
                        "resolution": settings.resolution, "steps": settings.steps, "seeds": list(settings.seeds),
                        "conditions": settings.conditions, "capture_steps": settings.capture_steps,
                        "max_heads": settings.max_heads, "min_seq_len": settings.min_seq_len,
                        "device": device_name, "dtype": str(dtype), "guidance": settings.guidance,
                        "guidance_batched": settings.guidance_batched}
    calibration = capture(tune_model, out / "calibration", seeds=settings.seeds, steps=settings.steps,
                          capture_steps=settings.capture_steps, max_heads=settings.max_heads,
                          min_seq_len=settings.min_seq_len, conditions=conditions, guidance=guidance,
                          settings=capture_settings)
    progress.update(len(settings.seeds), f"{len(calibration.layers)} layers captured")
    signature = calibration.signature
    storage_spec = settings.storage or str(out / "study.journal")
    prefix = settings.study_name or (f"svg-ear/{signature.class_name}/{signature.config_hash}/{_slug(device_name)}/"
                                     f"S{signature.seq_len}/psnr{settings.psnr_target:g}+{settings.layer_margin:g}/"
                                     f"steps{settings.steps}{_guidance_slug(guidance)}")
    storage = open_storage(storage_spec)
    workers = settings.workers or max(1, torch.cuda.device_count() if device.startswith("cuda") else 1)
    repeats = settings.repeats or (5 if device.startswith("cuda") else 1)
    layer_deadline, deadline = search_deadlines(time.time(), settings.timeout, settings.uniform_trials)
    targets = {layer: settings.psnr_target + settings.layer_margin for layer in calibration.layers}
    job = {"calibration": str(calibration.directory), "storage": storage_spec, "prefix": prefix,
           "n_trials": settings.n_trials, "base": base.to_dict(), "device": device, "repeats": repeats,
           "seed": settings.seed, "run_calls": settings.steps * guidance.calls_per_step}

    rounds: list[dict[str, float]] = []
    tasks = [Task(layer, 0, targets[layer]) for layer in calibration.layers]
    raised_db = 0.0

    dense_ms: float | None = None  # the dense run is timed once, by the first check

    def check(choices: list[LayerChoice], timed: bool = True) -> _end_to_end.EndToEnd:
        nonlocal dense_ms
        config = base.replace(layer_overrides={c.layer: c.config for c in choices})
        result = _end_to_end.check(tune_model, config, calibration, steps=settings.steps, conditions=conditions,
                                   dense_ms=dense_ms, guidance=guidance, timed=timed)
        dense_ms = result.dense_ms
        return result

    def choose_all(round_: int, offset_db: float = 0.0) -> list[LayerChoice]:
        return [choose(storage, prefix, layer, round_, targets[layer] - offset_db, keep_sparse=settings.keep_sparse)
                for layer in calibration.layers]

    for round_ in range(settings.rounds + 1):
        _search(tasks, {**job, "deadline": layer_deadline}, storage, workers, out, progress, round_)
        targets.update({task.layer: _study_target(storage, prefix, task) for task in tasks})
        choices = choose_all(round_)
        progress.phase(f"round {round_}: end-to-end check", 1)
        result = check(choices)
        rounds.append({"round": round_, "psnr_db": result.psnr_db, "dense_ms": result.dense_ms,
                       "sparse_ms": result.sparse_ms})
        progress.update(1, f"PSNR {result.psnr_db:.2f} dB (target {settings.psnr_target:g})")
        if result.psnr_db >= settings.psnr_target or round_ == settings.rounds:
            break
        raised_db = settings.psnr_target - result.psnr_db + 1.0
        tasks = [Task(c.layer, round_ + 1, max(targets[c.layer], c.psnr_db) + raised_db)
                 for c in choices if c.config != EXACT_LAYER]
        if not tasks:
            break

    relaxed_db = 0.0
    if raised_db > 0 and result.psnr_db >= settings.psnr_target:
        progress.phase("relaxing the raised targets (end-to-end checks)", RELAX_STEPS)
        choices, result, relaxed_db = relax_targets(choose_all, check, choices, result, round_, raised_db,
                                                    settings.psnr_target, rounds, progress)
    searched = choices  # each measured on its layer's samples by its trials
    chosen_by, uniform_search = "per-layer search", None
    candidates = _end_to_end_candidates(choices)
    sparse = bool(candidates)
    if settings.uniform_trials and sparse:
        space = SearchSpace.for_layer(signature.seq_len, triton=device.startswith("cuda"),
                                      compensation=base.compensation)
        progress.phase("one config for all sparse layers (end-to-end trials)", settings.uniform_trials)

        def check_uniform(params: dict[str, Any]) -> _end_to_end.EndToEnd:
            measured = check(_with_config(choices, params, candidates))
            rounds.append({"round": round_, "uniform_search": 1.0, "psnr_db": measured.psnr_db,
                           "dense_ms": measured.dense_ms, "sparse_ms": measured.sparse_ms})
            return measured

        time_left = None if deadline is None else max(0.0, deadline - time.time())
        if time_left == 0.0:
            progress.update(0, "skipped: the per-layer search spent the --timeout")
        uniform_search = search_uniform(
            check_uniform, space, consensus(choices),
            target=settings.psnr_target, max_refresh=settings.max_refresh, storage=storage, name=f"{prefix}/uniform",
            n_trials=settings.uniform_trials, timeout=time_left, seed=settings.seed, on_trial=progress.update)
        if uniform_search is not None and (result.psnr_db < settings.psnr_target
                                           or uniform_search.sparse_ms < result.sparse_ms):
            chosen_by = "uniform search"
            choices = _with_config(choices, uniform_search.params, candidates)
            result = _end_to_end.EndToEnd(uniform_search.psnr_db, uniform_search.dense_ms, uniform_search.sparse_ms)
    slack_records, finalist_record = {"budget_trading": None, "step_schedule": None, "budget_scale": None}, []
    if result.psnr_db >= settings.psnr_target and sparse:
        by_uniform = chosen_by == "uniform search"
        exponent = budget_exponent(uniform_search.budget_curve) if by_uniform else DEFAULT_EXPONENT
        finalists = [(choices, result, exponent)]
        if by_uniform and (runner_up := uniform_search.runner_up) is not None:
            finalists.append((_with_config(choices, runner_up.params, candidates),
                              _end_to_end.EndToEnd(runner_up.psnr_db, runner_up.dense_ms, runner_up.sparse_ms),
                              budget_exponent(runner_up.budget_curve)))
        outcomes = [spend_slack(check, *finalist, settings.psnr_target, settings.max_refresh, settings.steps, rounds,
                                progress) for finalist in finalists]
        (choices, result, slack_records), start = min(zip(outcomes, finalists, strict=True),
                                                      key=lambda o: o[0][1].sparse_ms)
        finalist_record = [{"start_psnr_db": f[1].psnr_db, "start_ms": f[1].sparse_ms, "psnr_db": o[1].psnr_db,
                            "sparse_ms": o[1].sparse_ms, "chosen": f is start}
                           for f, o in zip(finalists, outcomes, strict=True)]
    choices = [c if c.config == s.config else
               _measured(calibration, base, c, c.config, device, repeats, job["run_calls"])
               for c, s in zip(choices, searched, strict=True)]
    uniform = _uniform_baselines(settings, tune_model, base, calibration, conditions, progress)
    profile = Profile(
        device=device_name, model=signature, base_config=_base_fields(settings),
        layers=[LayerResult(layer=c.layer, config=c.config, latency_ms=c.latency_ms, psnr_db=c.psnr_db,
                            target_psnr_db=c.target_psnr_db, dense_latency_ms=c.dense_latency_ms, trials=c.trials)
                for c in choices],
        end_to_end={"psnr_db": result.psnr_db, "target_psnr_db": settings.psnr_target,
                    "met_target": result.psnr_db >= settings.psnr_target, "speedup": result.speedup,
                    "dense_ms": result.dense_ms, "sparse_ms": result.sparse_ms, "rounds": round_ + 1,
                    "relaxed_db": relaxed_db, "chosen_by": chosen_by,
                    "uniform_search": None if uniform_search is None else dataclasses.asdict(uniform_search),
                    **slack_records, "finalists": finalist_record,
                    "steps": settings.steps, "seeds": list(settings.seeds), "study": prefix, "storage": storage_spec,
                    "guidance": settings.guidance, "guidance_batched": settings.guidance_batched,
                    **_versus_uniform(uniform, result.sparse_ms, settings.psnr_target)},
        versions=_versions(), created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=settings.command or settings.as_command(),
    )
    stem = (f"{_slug(device_name)}__{signature.class_name}__L{signature.num_layers}_H{signature.num_heads}"
            f"_D{signature.head_dim}_S{signature.seq_len_bucket}")
    plot_path = None
    try:
        if settings.plot:
            from ._plot import write_pareto_png

            plot_path = write_pareto_png(out / f"{stem}.pareto.png", choices, rounds, result.dense_ms,
                                         settings.psnr_target, uniform)
        profile_path = write_profile(profile, out / f"{stem}.yaml")
    except ProfileError as error:
        raise TunerError(str(error)) from None
    return TuneResult(profile, profile_path, plot_path, choices)


RELAX_STEPS = 3
PER_LAYER_SHARE = 0.6  # of --timeout, when the one-config stage runs after it (the CLI help says 60%)


def search_deadlines(start: float, timeout: float | None, uniform_trials: int) -> tuple[float | None, float | None]:
    """When the per-layer search and when all searches must stop (None: no time limit). With a
    one-config stage the per-layer search gets ``PER_LAYER_SHARE`` of ``timeout``: the stage that wins
    on long clips (``benchmarks/RESULTS.md``) is not starved by it (at ``--timeout 150`` on the fixture
    the per-layer search took it all and the one-config stage was skipped)."""
    if timeout is None:
        return None, None
    share = PER_LAYER_SHARE if uniform_trials else 1.0
    return start + share * timeout, start + timeout


def relax_targets(choose_all: Callable[[int, float], list[LayerChoice]],
                  check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                  result: _end_to_end.EndToEnd, round_: int, raised_db: float, target: float,
                  history: list[dict[str, float]], progress: Progress) -> tuple[list[LayerChoice],
                                                                                 _end_to_end.EndToEnd, float]:
    """Give back what a retune round over-raised: the largest common offset ``δ`` in ``[0, raised_db]``
    (bisection, ``RELAX_STEPS`` end-to-end checks, existing trials only) such that every layer at
    ``target_layer − δ`` still keeps the model's final PSNR ≥ ``target``.

    A round raises every layer by the whole deficit + 1 dB, which usually overshoots (the final error
    is not exactly the sum of the layers'); each lowered target lets a layer take a faster trial.
    Returns the chosen layers, their end-to-end result and ``δ``; an offset that changes no layer's
    choice is taken without a check.
    """
    best, low, high = (choices, result, 0.0), 0.0, raised_db
    for step in range(1, RELAX_STEPS + 1):
        offset = (low + high) / 2
        candidate = choose_all(round_, offset)
        if [c.config for c in candidate] == [c.config for c in best[0]]:
            low = offset
            best = (candidate, best[1], offset)
        else:
            measured = check(candidate)
            history.append({"round": round_, "relax_db": offset, "psnr_db": measured.psnr_db,
                            "dense_ms": measured.dense_ms, "sparse_ms": measured.sparse_ms})
            if measured.psnr_db >= target:
                low, best = offset, (candidate, measured, offset)
            else:
                high = offset
        progress.update(step, f"-{offset:.2f} dB: PSNR {best[1].psnr_db:.2f} dB")
    return best


def spend_slack(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                result: _end_to_end.EndToEnd, exponent: float, target: float, max_refresh: int, steps: int,
                history: list[dict[str, float]], progress: Progress
                ) -> tuple[list[LayerChoice], _end_to_end.EndToEnd, dict[str, Any]]:
    """Turn a result's PSNR above ``target`` into speed, end to end: routing reuse per layer
    (:func:`refine_per_layer`), fewer listed centroids (:func:`list_fewer_centroids`), then budget traded
    between layers (:func:`trade_between_layers`), or, where no allocation was verified, smaller budgets
    one layer at a time, then a budget schedule over the ``steps`` (:func:`schedule_over_steps`), then
    every budget scaled down to the target (:func:`scale_budgets`). Their checks run untimed
    (``check(choices, timed=False)``: the PSNR alone decides); what they end with is timed once. Returns
    the chosen layers, their result and what the profile records (``budget_trading``, ``step_schedule``,
    ``budget_scale``)."""
    def psnr_only(candidate: list[LayerChoice]) -> _end_to_end.EndToEnd:
        return check(candidate, timed=False)

    start = result
    choices, result = refine_per_layer(psnr_only, choices, result, target, max_refresh, history, progress,
                                       kinds=("refresh_every",))
    choices, result = list_fewer_centroids(psnr_only, choices, result, target, history, progress)
    choices, result, trading = trade_between_layers(psnr_only, choices, result, target, exponent, history, progress)
    if trading is None or trading["budgets"] is None:
        choices, result = refine_per_layer(psnr_only, choices, result, target, max_refresh, history, progress,
                                           kinds=("budget",))
    choices, result, schedule = schedule_over_steps(psnr_only, choices, result, target, steps, history, progress)
    choices, result, scale = scale_budgets(psnr_only, choices, result, target, exponent, history, progress)
    return (choices, (start if result is start else check(choices)),
            {"budget_trading": trading, "step_schedule": schedule, "budget_scale": scale})


def schedule_over_steps(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                        result: _end_to_end.EndToEnd, target: float, steps: int,
                        history: list[dict[str, float]], progress: Progress
                        ) -> tuple[list[LayerChoice], _end_to_end.EndToEnd, dict[str, Any] | None]:
    """Every sparse layer with a budget keeps it (× a boost) for the early steps and runs a share of it
    after them (:func:`._early.schedule_budgets`). Returns the chosen layers (unchanged unless a schedule
    met ``target``), their end-to-end result, and what the profile records of it (None: no budgets)."""
    scheduled = _budgeted(choices)
    if not scheduled:
        return choices, result, None
    progress.phase("budget schedule over steps (end-to-end checks)", len(EARLY_BOOSTS) * LATE_CHECKS)
    measured: dict[tuple[float, float], tuple[list[LayerChoice], _end_to_end.EndToEnd]] = {}
    cut = round(cut_timestep(steps), 3)

    def check_schedule(boost: float, share: float) -> float:
        candidate = [dataclasses.replace(c, config={
            **c.config, "budget": _four_digits(c.config["budget"] * share),
            "early_budget": _four_digits(min(1.0, c.config["budget"] * boost)),
            "early_above_timestep": cut}) if index in scheduled else c
            for index, c in enumerate(choices)]
        measured[boost, share] = candidate, check(candidate)
        outcome = measured[boost, share][1]
        history.append({"round": history[-1]["round"], "step_schedule": share, "psnr_db": outcome.psnr_db,
                        "dense_ms": outcome.dense_ms, "sparse_ms": outcome.sparse_ms})
        progress.update(len(measured), f"early x{boost:g}, late x{share:.3g}: {outcome.psnr_db:.2f} dB"
                                       f"{_time_text(outcome)}")
        return outcome.psnr_db

    schedule = schedule_budgets(check_schedule, steps, target)
    if schedule is None:
        return choices, result, {"applied": False, "checks": [[b, m, measured[b, m][1].psnr_db]
                                                              for b, m in measured]}
    record = {"applied": True, **dataclasses.asdict(schedule)}
    return (*measured[schedule.boost, schedule.late_share], record)


LISTED_CENTROIDS = 128  # the most the search space lists: the smallest step from every centroid


def list_fewer_centroids(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                         result: _end_to_end.EndToEnd, target: float, history: list[dict[str, float]],
                         progress: Progress) -> tuple[list[LayerChoice], _end_to_end.EndToEnd]:
    """Every sparse layer that adds each skipped key cluster back through its own centroid logit
    (``exact_centroids`` None, ``KC·(D + Dv)`` multiply-adds per query) lists only the
    ``LISTED_CENTROIDS`` heaviest instead, the rest folded into one first-order logit
    (``T·(D + Dv) + D·Dv``), in one end-to-end check, kept when the final PSNR holds. At 3% density and
    1,024 key clusters every centroid is 35% of the kernel (``benchmarks/RESULTS.md``, ninth GPU session);
    the one-config stage's consensus start keeps every centroid."""
    listing = {index: {**c.config, "exact_centroids": LISTED_CENTROIDS} for index, c in enumerate(choices)
               if c.config != EXACT_LAYER and "exact_centroids" in c.config and c.config["exact_centroids"] is None
               and c.config.get("num_k_clusters", 0) > LISTED_CENTROIDS}
    if not listing:
        return choices, result
    progress.phase("fewer listed centroids (end-to-end check)", 1)
    candidate, measured, kept = _check_moves(check, choices, listing, "exact_centroids", target, history, progress, 1)
    return (candidate, measured) if kept else (choices, result)


def scale_budgets(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                  result: _end_to_end.EndToEnd, target: float, exponent: float,
                  history: list[dict[str, float]], progress: Progress
                  ) -> tuple[list[LayerChoice], _end_to_end.EndToEnd, dict[str, Any] | None]:
    """Every sparse layer's budget (and early budget) × one factor, the smallest that keeps the final
    PSNR ≥ ``target`` (:func:`._scale.scale_to_target`). Returns the chosen layers (unchanged unless a
    factor was met), their end-to-end result, and what the profile records of it (None: no budgets, or
    too little slack to try)."""
    scaled = _budgeted(choices)
    if not scaled or result.psnr_db - target <= CLOSE_DB:
        return choices, result, None
    progress.phase("every budget scaled to the target (end-to-end checks)", SCALE_CHECKS)
    measured: dict[float, tuple[list[LayerChoice], _end_to_end.EndToEnd]] = {}

    def check_factor(factor: float) -> float:
        candidate = [dataclasses.replace(c, config={**c.config, **{
            key: _four_digits(min(1.0, c.config[key] * factor)) for key in ("budget", "early_budget")
            if key in c.config}}) if index in scaled else c for index, c in enumerate(choices)]
        measured[factor] = candidate, check(candidate)
        outcome = measured[factor][1]
        history.append({"round": history[-1]["round"], "budget_scale": factor, "psnr_db": outcome.psnr_db,
                        "dense_ms": outcome.dense_ms, "sparse_ms": outcome.sparse_ms})
        progress.update(len(measured), f"budgets x{factor:.3g}: {outcome.psnr_db:.2f} dB{_time_text(outcome)}")
        return outcome.psnr_db

    found = scale_to_target(check_factor, result.psnr_db, target_db=target, exponent=exponent)
    record = {"applied": found is not None, "checks": [[f, m[1].psnr_db] for f, m in measured.items()]}
    if found is None:
        return choices, result, record
    return (*measured[found.factor], {**record, "factor": found.factor, "psnr_db": found.psnr_db})


def trade_between_layers(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                         result: _end_to_end.EndToEnd, target: float, exponent: float,
                         history: list[dict[str, float]], progress: Progress
                         ) -> tuple[list[LayerChoice], _end_to_end.EndToEnd, dict[str, Any] | None]:
    """Move budget from the layers the final output tolerates errors in to those it does not
    (:func:`._allocate.trade_budgets`: one probe per sparse layer, then verified allocations), when at
    least two sparse layers have a budget. Returns the chosen layers (unchanged unless a verified
    allocation needs less budget in all), their end-to-end result, and what the profile records of it
    (None: nothing to trade)."""
    trading = _budgeted(choices)
    if len(trading) < 2:
        return choices, result, None
    progress.phase("budget trading between layers (end-to-end checks)", len(trading) + VERIFY_CHECKS)
    measured_by_budgets: dict[tuple[float, ...], tuple[list[LayerChoice], _end_to_end.EndToEnd]] = {}

    def with_budgets(budgets: Sequence[float]) -> list[LayerChoice]:
        by_index = dict(zip(trading, budgets, strict=True))
        return [dataclasses.replace(c, config={**c.config, "budget": _four_digits(by_index[i])})
                if i in by_index else c for i, c in enumerate(choices)]

    def check_budgets(budgets: Sequence[float]) -> float:
        candidate = with_budgets(budgets)
        measured = check(candidate)
        measured_by_budgets[tuple(budgets)] = (candidate, measured)
        return measured.psnr_db

    def report(kind: str, budgets: Sequence[float], psnr_db: float) -> None:
        measured = measured_by_budgets[tuple(budgets)][1]
        history.append({"round": history[-1]["round"], kind: 1.0, "psnr_db": psnr_db, "dense_ms": measured.dense_ms,
                        "sparse_ms": measured.sparse_ms})
        text = ", ".join(f"{b:.3g}" for b in budgets)
        progress.update(len(measured_by_budgets), f"{kind} [{text}]: {psnr_db:.2f} dB{_time_text(measured)}")

    start = [choices[i].config["budget"] for i in trading]
    traded = trade_budgets(check_budgets, start, result.psnr_db, target_db=target, exponent=exponent,
                           on_check=report)
    record = {"exponent": exponent, "probe_ratio": PROBE_RATIO, "layers": [choices[i].layer for i in trading],
              "start_budgets": start, "sensitivity": _shares(traded.allocation.sensitivity),
              "budgets": None if traded.budgets is None else [_four_digits(b) for b in traded.budgets],
              "psnr_db": traded.psnr_db}
    if traded.budgets is None:
        return choices, result, record
    return (*measured_by_budgets[traded.budgets], record)


def _time_text(measured: _end_to_end.EndToEnd) -> str:
    """``", 1520.3 ms"`` for a timed check, nothing for an untimed one."""
    return f", {measured.sparse_ms:.1f} ms" if math.isfinite(measured.sparse_ms) else ""


def _shares(values: Sequence[float]) -> list[float]:
    """``values`` as fractions of their sum, to 4 significant digits (a profile's sensitivities)."""
    total = sum(values)
    return [_four_digits(v / total) for v in values]


def _four_digits(value: float) -> float:
    """``value`` to 4 significant digits: what a profile records of a traded budget or a share."""
    return float(f"{value:.4g}")


BUDGET_STEP = 0.85  # a refinement move multiplies one layer's budget by this


def _cheaper(config: dict[str, Any], kind: str, max_refresh: int) -> dict[str, Any] | None:
    """A layer's next cheaper neighbour of one ``kind``, doing a subset of the work (None: none left):
    ``"refresh_every"`` reuses its routing one call longer, ``"budget"`` computes a smaller share of its
    blocks exactly."""
    if kind == "refresh_every":
        refresh = config.get("refresh_every", 1)
        return {**config, "refresh_every": refresh + 1} if refresh < max_refresh else None
    budget = config.get("budget")
    if budget is None or budget * BUDGET_STEP < BUDGET_RANGE[0]:
        return None
    return {**config, "budget": budget * BUDGET_STEP}


def refine_per_layer(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                     result: _end_to_end.EndToEnd, target: float, max_refresh: int,
                     history: list[dict[str, float]], progress: Progress,
                     kinds: Collection[str] = ("refresh_every", "budget")) -> tuple[list[LayerChoice],
                                                                                    _end_to_end.EndToEnd]:
    """Greedy, end to end, layer by layer in index order: take a sparse layer's cheaper neighbours of
    the given ``kinds`` while the model's final PSNR stays ≥ ``target``. Routing reuse first tries
    ``max_refresh`` at once (one check where the layer tolerates it, as most did on the fixture), and
    where that misses steps up one call at a time below it (:func:`_cheaper`); then budget ×
    ``BUDGET_STEP``. A layer stops at its first miss of each kind.

    Before the layers one by one, every layer that can reuse routing longer tries ``max_refresh`` in
    one check (all six layers of the fixture took it, twice); where that misses, layer by layer.

    Every move does a subset of the work, so only the PSNR decides; run times are recorded, not
    compared (one run's noise, 5–12% on an H100, exceeds one layer's saving). How long a layer's
    attention pattern lasts across steps, and how much of its error the final output tolerates,
    shows only end to end.
    """
    sparse = [index for index, c in enumerate(choices) if c.config != EXACT_LAYER]
    progress.phase("per-layer refinement (end-to-end checks)", 0)
    done = 0

    def attempt(moves: dict[int, dict[str, Any]], kind: str) -> bool:
        """Keep the moved layers when the final PSNR holds."""
        nonlocal choices, result, done
        done += 1
        candidate, measured, kept = _check_moves(check, choices, moves, kind, target, history, progress, done)
        if kept:
            choices, result = candidate, measured
        return kept

    longer = {index: {**choices[index].config, "refresh_every": max_refresh} for index in sparse
              if choices[index].config.get("refresh_every", 1) < max_refresh - 1}
    if "refresh_every" in kinds and len(longer) > 1:
        attempt(longer, "refresh_every")
    for index in sparse:
        refresh_cap = max_refresh
        config = choices[index].config
        if "refresh_every" in kinds and config.get("refresh_every", 1) < max_refresh - 1 and not attempt(
                {index: {**config, "refresh_every": max_refresh}}, "refresh_every"):
            refresh_cap = max_refresh - 1  # the longest reuse missed: step up below it
        for kind, cap in (("refresh_every", refresh_cap), ("budget", max_refresh)):
            while kind in kinds and (move := _cheaper(choices[index].config, kind, cap)) is not None \
                    and attempt({index: move}, kind):
                pass
    return choices, result


def _check_moves(check: Callable[[list[LayerChoice]], _end_to_end.EndToEnd], choices: list[LayerChoice],
                 moves: dict[int, dict[str, Any]], kind: str, target: float, history: list[dict[str, float]],
                 progress: Progress, done: int) -> tuple[list[LayerChoice], _end_to_end.EndToEnd, bool]:
    """``choices`` with the layers at ``moves``' indices given their moved configs (``kind``: the field
    moved), checked end to end, recorded in ``history`` and reported as check ``done``: the candidate, its
    result, and whether the final PSNR holds ``target``."""
    candidate = list(choices)
    for index, move in moves.items():
        candidate[index] = dataclasses.replace(choices[index], config=move)
    measured = check(candidate)
    layers = [choices[index].layer for index in moves]
    value = next(iter(moves.values()))[kind]
    which = {"layer": layers[0]} if len(layers) == 1 else {"layers": layers}
    history.append({"round": history[-1]["round"], **which, kind: value, "psnr_db": measured.psnr_db,
                    "dense_ms": measured.dense_ms, "sparse_ms": measured.sparse_ms})
    kept = measured.psnr_db >= target
    named = f"layer {layers[0]}" if len(layers) == 1 else "layers " + ", ".join(map(str, layers))
    progress.update(done, f"{named} {kind}={value:.3g}: {measured.psnr_db:.2f} dB"
                          f"{_time_text(measured)} ({'kept' if kept else 'not kept'})")
    return candidate, measured, kept


def _budgeted(choices: list[LayerChoice]) -> list[int]:
    """The indices of the sparse layers whose config sets a budget: what the budget stages move."""
    return [index for index, c in enumerate(choices) if c.config != EXACT_LAYER and "budget" in c.config]


def _with_config(choices: list[LayerChoice], config: dict[str, Any], indices: Collection[int]) -> list[LayerChoice]:
    """``choices`` with ``config`` for the layers at ``indices``."""
    return [dataclasses.replace(c, config=dict(config)) if index in indices else c for index, c in enumerate(choices)]


def _end_to_end_candidates(choices: list[LayerChoice]) -> set[int]:
    """Indices of the layers the end-to-end stages may run sparse: the sparse ones, and those the per-layer
    search left exact although some trial of theirs ran faster than exact attention (their per-layer
    target was out of reach, which only the final output can confirm; on the fixture a raised round asked
    one layer for 58 dB and left it exact at 24 ms per call against 7 ms sparse)."""
    def faster_than_exact(choice: LayerChoice) -> bool:
        return choice.dense_latency_ms is not None and any(
            latency < choice.dense_latency_ms for latency, _ in choice.trial_points)

    return {index for index, c in enumerate(choices) if c.config != EXACT_LAYER or faster_than_exact(c)}


def _measured(calibration: Any, base: SvgEarConfig, choice: LayerChoice, params: dict[str, Any], device: str,
              repeats: int, run_calls: int) -> LayerChoice:
    """``choice`` under ``params``, measured on its layer's samples as a trial would be (routing reuse
    aside: the captured steps are not adjacent); a config chosen end to end has no per-layer target."""
    if choice.config == EXACT_LAYER:
        return choice
    evaluator = LayerEvaluator(calibration.samples(choice.layer), base, full_heads=calibration.full_heads,
                               run_calls=run_calls, device=device, repeats=repeats)
    measured = evaluator.evaluate({k: v for k, v in params.items() if k != "refresh_every"})
    return dataclasses.replace(choice, latency_ms=measured.latency_ms, psnr_db=measured.psnr_db, target_psnr_db=None)


def _uniform_baselines(settings: TuneSettings, tune_model: Any, base: SvgEarConfig, calibration: Any,
                       conditions: list[dict[str, Any]] | None, progress: Progress) -> list[dict[str, float]]:
    """The hand-set alternative: one config for every layer (:func:`uniform_config` of ``base``), checked
    end to end exactly as the tuned one."""
    if not settings.uniform_budgets:
        return []
    seq_len = calibration.signature.seq_len
    progress.phase("uniform baselines (end-to-end)", len(settings.uniform_budgets))
    results = []
    for done, budget in enumerate(settings.uniform_budgets, 1):
        check = _end_to_end.check(tune_model, uniform_config(base, seq_len, budget), calibration,
                                  steps=settings.steps, conditions=conditions, guidance=settings.guidance_mode)
        results.append({"budget": budget, "psnr_db": check.psnr_db, "sparse_ms": check.sparse_ms,
                        "dense_ms": check.dense_ms})
        progress.update(done, f"budget {budget:g}: PSNR {check.psnr_db:.2f} dB, {check.sparse_ms:.1f} ms")
    return results


def _versus_uniform(uniform: list[dict[str, float]], tuned_ms: float, target: float) -> dict[str, Any]:
    """Profile fields comparing the tuned run with the fastest uniform config that meets ``target``.

    ``time_vs_best_uniform`` = best uniform run time / tuned run time (above 1: the tuned profile is faster).
    """
    if not uniform:
        return {}
    meeting = [u for u in uniform if u["psnr_db"] >= target]
    best = min(meeting, key=lambda u: u["sparse_ms"]) if meeting else None
    return {"uniform": uniform, "best_uniform": best,
            "time_vs_best_uniform": best["sparse_ms"] / tuned_ms if best else None}


def _study_target(storage: Any, prefix: str, task: Task) -> float:
    """The target a layer's study was created with (a resumed run keeps the first run's)."""
    import optuna

    study = optuna.load_study(study_name=study_name(prefix, task.layer, task.round), storage=storage)
    return float(study.user_attrs.get("target_psnr_db", task.target_psnr_db))


def _search(tasks: list[Task], job: dict[str, Any], storage: Any, workers: int, out: pathlib.Path,
            progress: Progress, round_: int) -> None:
    """Run ``tasks`` here (one worker) or in ``workers`` processes sharing the storage."""
    per_layer = job["n_trials"] or 0
    progress.phase(f"round {round_}: {len(tasks)} layer(s)", per_layer * len(tasks))
    finished = {task: 0 for task in tasks}

    def report(task: Task, done: int) -> None:
        finished[task] = min(done, per_layer) if per_layer else done
        progress.update(sum(finished.values()), f"layer {task.layer} trial {done}")

    job = {**job, "tasks": [[t.layer, t.round, t.target_psnr_db] for t in tasks]}
    if workers <= 1:
        run_job(job, 0, report)
        return
    job_path = write_job(out / "jobs" / f"round{round_}.json", job)

    def poll() -> None:
        import optuna

        for task in tasks:
            try:
                study = optuna.load_study(study_name=study_name(job["prefix"], task.layer, task.round),
                                          storage=storage)
            except KeyError:  # no worker has reached this layer yet
                continue
            done = len(completed(study))
            if done != finished[task]:
                report(task, done)

    run_workers(job_path, workers, out / "workers", poll)
