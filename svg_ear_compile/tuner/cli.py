"""``svg-ear-tune``: tune SVG-EAR per layer on this GPU and write a per-GPU profile.

Example (a diffusers model; any ``module:function`` returning ``(model, example_inputs)`` works too)::

    svg-ear-tune --model wan2.1-t2v-1.3b --resolution 480x832x81 --steps 10 --seeds 0,1 \\
        --psnr-target 30 --trials 40 --out profiles/

Ctrl-C stops after the running trial (marked failed); the same command again resumes from the trials
already stored (``--storage``: an RDB URL or a journal file; default ``OUT/study.journal``).
``--workers N`` shares the search among N local processes (default: one per visible GPU); another
machine joins with ``svg-ear-tune --worker OUT/jobs/roundR.json`` on the same storage. Exit status:
0 done, 1 done but the end-to-end PSNR target was missed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence

from ._model import TunerError
from ._search import EXACT_LAYER


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svg-ear-tune", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="diffusers model id or directory, or module:function -> (model, inputs)")
    parser.add_argument("--resolution", help="HEIGHTxWIDTHxFRAMES of the clip (diffusers models), e.g. 480x832x81")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps of the calibration/check runs")
    parser.add_argument("--seeds", type=_seeds, default=[0], help="calibration seeds, e.g. 0,1,2")
    parser.add_argument("--conditions", help="torch file: a list of dicts of model inputs (e.g. prompt embeddings; "
                        "'negative_<input>' entries are the unconditional inputs of --guidance)")
    parser.add_argument("--guidance", type=float, default=1.0,
                        help="classifier-free guidance scale of the calibration and check runs (1: none; Wan "
                             "pipelines use 5). Without negative_* inputs the prompt is zeroed")
    parser.add_argument("--guidance-calls", choices=("two", "batched"), default="two",
                        help="two calls per step, conditional first (diffusers' WanPipeline), or one batch of "
                             "both (then every config routes both alike: batch_shares_routing)")
    parser.add_argument("--capture-steps", type=int, default=2, help="steps whose Q/K/V are captured")
    parser.add_argument("--max-heads", type=int, default=2, help="heads captured per layer (memory bound)")
    parser.add_argument("--psnr-target", type=float, default=30.0, help="end-to-end PSNR target (dB) vs dense")
    parser.add_argument("--layer-margin", type=float, default=3.0, help="per-layer target = target + margin (dB)")
    parser.add_argument("--trials", type=int, default=30, help="complete trials per layer and round (0: no limit)")
    parser.add_argument("--timeout", type=float,
                        help="time limit of the per-layer and one-config searches, seconds (the per-layer search "
                             "stops at 60%% of it when --uniform-trials is above 0)")
    parser.add_argument("--storage", help="Optuna storage: RDB URL or journal file (default OUT/study.journal)")
    parser.add_argument("--study-name", help="study name prefix (default: from model, device and target)")
    parser.add_argument("--out", help="output directory (profile, Pareto plot, calibration data)")
    parser.add_argument("--workers", type=int, help="local worker processes (default: one per visible GPU)")
    parser.add_argument("--rounds", type=int, default=3, help="retuning rounds if the end-to-end target is missed")
    parser.add_argument("--min-seq-len", type=int, default=1024, help="shorter attention calls stay exact")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), help="default bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--repeats", type=int, help="timed warm calls per trial (default 5 on CUDA, 1 on CPU)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument("--uniform-budgets", type=float, nargs="+", default=[], metavar="BUDGET",
                        help="also run one config for all layers at these budgets, end to end, for comparison")
    parser.add_argument("--keep-sparse", action="store_true",
                        help="keep a layer sparse even where exact attention measured faster (e.g. to study quality)")
    parser.add_argument("--max-refresh", type=int, default=6,
                        help="largest refresh_every tried per layer, end to end, after the search (1: none)")
    parser.add_argument("--uniform-trials", type=int, default=24,
                        help="end-to-end trials of one config for all sparse layers, after the per-layer search "
                             "(0: none); the faster of the two is kept")
    parser.add_argument("--no-plot", action="store_true", help="skip the Pareto plot")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    return parser


class _Bar:
    """tqdm progress: one bar per phase (calibration, each round's layer trials, the end-to-end check)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def phase(self, text: str, total: int) -> None:
        self.close()
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, desc=text, unit="trial", file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, text: str) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix_str(text, refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _summary(result) -> str:
    lines = [f"{'layer':>5s} {'target':>7s} {'PSNR':>7s} {'ms':>9s} {'dense ms':>9s} {'trials':>6s}  config"]
    for c in result.choices:
        config = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.config.items())
        if c.config == EXACT_LAYER:
            feasible = any(psnr >= (c.target_psnr_db or 0.0) for _, psnr in c.trial_points)
            config = "exact attention (" + ("no sparse config was faster" if feasible else
                                            "no trial met the target") + ")"
        target = "e2e" if c.target_psnr_db is None else f"{c.target_psnr_db:.2f}"
        lines.append(f"{c.layer:5d} {target:>7s} {c.psnr_db:7.2f} {c.latency_ms:9.3f} "
                     f"{c.dense_latency_ms or float('nan'):9.3f} {c.trials:6d}  {config}")
    e2e = result.profile.end_to_end
    lines.append(f"end to end: PSNR {e2e['psnr_db']:.2f} dB (target {e2e['target_psnr_db']:g}, "
                 f"{'met' if e2e['met_target'] else 'MISSED'}) after {e2e['rounds']} round(s), chosen by the "
                 f"{e2e.get('chosen_by', 'per-layer search')} and refined per layer; "
                 f"{e2e['sparse_ms']:.1f} ms vs dense {e2e['dense_ms']:.1f} ms (speedup {e2e['speedup']:.2f}x)")
    lines += _slack_lines(e2e)
    for entry in e2e.get("uniform", []):
        lines.append(f"uniform budget {entry['budget']:g}: PSNR {entry['psnr_db']:.2f} dB, {entry['sparse_ms']:.1f} ms")
    if e2e.get("uniform"):
        best = e2e["best_uniform"]
        lines.append("no uniform budget met the target" if best is None else
                     f"tuned vs fastest uniform meeting the target (budget {best['budget']:g}): "
                     f"{e2e['time_vs_best_uniform']:.2f}x the speed, PSNR {e2e['psnr_db']:.2f} vs "
                     f"{best['psnr_db']:.2f} dB")
    lines.append(f"profile: {result.profile_path}")
    if result.plot_path is not None:
        lines.append(f"pareto:  {result.plot_path}")
    return "\n".join(lines)


def _slack_lines(e2e: dict) -> list[str]:
    """How the end-to-end result spent its PSNR above the target: each finalist's start and end, the
    budget trading's measured sensitivities (each layer's share of the final error it adds), the
    budget schedule over steps, and the factor every budget was scaled by at the end."""
    lines = []
    finalists = e2e.get("finalists") or []
    for number, finalist in enumerate(finalists, 1):
        if len(finalists) > 1:
            lines.append(f"finalist {number}: {finalist['start_psnr_db']:.2f} dB, {finalist['start_ms']:.1f} ms -> "
                         f"{finalist['psnr_db']:.2f} dB, {finalist['sparse_ms']:.1f} ms"
                         f"{' (kept)' if finalist['chosen'] else ''}")
    trading = e2e.get("budget_trading")
    if trading:
        shares = ", ".join(f"{layer}: {share:.0%}" for layer, share in zip(trading["layers"], trading["sensitivity"],
                                                                             strict=True))
        outcome = ("no cheaper allocation verified" if trading["budgets"] is None else
                   f"traded budgets reach {trading['psnr_db']:.2f} dB")
        lines.append(f"budget trading (kept finalist): sensitivity by layer {shares}; {outcome}")
    schedule = e2e.get("step_schedule")
    if schedule:
        lines.append("budget schedule over steps (kept finalist): " + (
            f"the first {schedule['early_steps']} steps at {schedule['boost']:g}x their budgets, the later ones at "
            f"{schedule['late_share']:.3g}x, reach {schedule['psnr_db']:.2f} dB" if schedule["applied"] else
            "none met the target"))
    scale = e2e.get("budget_scale")
    if scale:
        lines.append("every budget scaled (kept finalist): " + (
            f"x{scale['factor']:.3g} reaches {scale['psnr_db']:.2f} dB" if scale["applied"] else
            "no smaller factor met the target"))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.worker:
            from ._workers import run_job

            with open(args.worker) as handle:
                run_job(json.load(handle), args.worker_index)
            return 0
        if not args.model or not args.out:
            raise TunerError("--model and --out are required")
        from ._tune import TuneSettings, tune

        settings = TuneSettings(
            model=args.model, out=args.out, psnr_target=args.psnr_target, resolution=args.resolution,
            steps=args.steps, seeds=args.seeds, conditions=args.conditions, capture_steps=args.capture_steps,
            max_heads=args.max_heads, layer_margin=args.layer_margin, n_trials=args.trials or None,
            timeout=args.timeout, storage=args.storage, study_name=args.study_name, workers=args.workers,
            rounds=args.rounds, min_seq_len=args.min_seq_len, device=args.device, dtype=args.dtype,
            repeats=args.repeats, seed=args.seed, plot=not args.no_plot, uniform_budgets=args.uniform_budgets,
            keep_sparse=args.keep_sparse, max_refresh=args.max_refresh, uniform_trials=args.uniform_trials,
            guidance=args.guidance, guidance_batched=args.guidance_calls == "batched",
            command=shlex.join(["svg-ear-tune", *(sys.argv[1:] if argv is None else argv)]),
        )
        bar = _Bar(not args.quiet)
        try:
            result = tune(settings, bar)
        finally:
            bar.close()
    except TunerError as error:
        print(f"svg-ear-tune: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        where = "the worker's storage" if args.worker else (args.storage or f"{args.out}/study.journal")
        print(f"svg-ear-tune: interrupted; finished trials are kept in {where}. Run the same command again to "
              "resume.", file=sys.stderr)
        return 130
    print(_summary(result))
    return 0 if result.profile.end_to_end["met_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
