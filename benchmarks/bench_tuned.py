"""A tuned profile against hand-set uniform configs, end to end, side by side with their spread.

``svg-ear-tune`` checks each config once (the median of three runs, one config after the other), so
its uniform baselines drift with the GPU's clocks and its "fastest uniform that meets the target" is
the luckiest of several noisy runs. Here every config is timed in ``--rounds`` interleaved rounds
(each round compiles every config afresh and times ``--runs`` denoising runs of it), so drift hits all
configs alike, and the table gives each config's median, min and max over all its runs.

Configs: ``dense`` (the same Dynamo graph, attention left exact), ``tuned`` (the profile), and for each
``--budgets`` value ``uniform@b`` (:func:`svg_ear_compile.tuner._search_space.uniform_config`: what
runs without a profile, at that budget, the same uniform config the tuner compares with), plus one
``uniform@b+field=value[,…]`` per ``--variant`` (a hand-set uniform config with those fields changed,
e.g. ``kmeans_iters_init=10``, to show how much of the tuned gain a few knobs set by hand recover), and
one ``tuned2``, ``tuned3``, … per ``--other-profile`` (another profile of the same model, e.g. an
earlier tuning run), and one ``tuned+field=value[,…]`` per ``--tuned-variant`` (the profile with those
fields set for every layer; a field that the profile sets per layer is an error, since its per-layer
values would win), and ``uniform@b (tuned's search)`` for each profile that records one: the fastest
uniform config its tuning run's one-config stage found (``end_to_end.uniform_search``), timed again here
beside the rest. ``--no-plain`` leaves out the plain ``uniform@b`` configs (keeping their variants).

A run is ``--steps`` flow-matching Euler steps from cold centroid caches (a whole video: its first
step runs k-means from scratch), as in the tuner. PSNR is that of the final latents against the dense
run's over all ``--seeds`` (one range, the dense finals'), as in the tuner's end-to-end check. Runs are
guided as the profile's tuning runs were (its ``end_to_end.guidance``; ``--guidance`` and
``--guidance-calls`` override), and the uniform configs share the profile's ``base_config`` (with batched
guidance: ``batch_shares_routing``), so both sides route the prompts alike.

GPU (the long-clip fixture and its shipped H100 profile)::

    python benchmarks/bench_tuned.py --budgets 0.05 0.06 0.07 --variant kmeans_iters_init=10 \\
        --json $OUT/tuned.json

CPU smoke run: ``tests/test_benchmarks_smoke.py`` (a 2-layer toy and a profile written for it).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch
import yaml
from _timing import describe_device, markdown_table, wall_ms, write_json

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.ops import reset_centroid_caches
from svg_ear_compile.profiles import read_profile
from svg_ear_compile.profiles._store import SHIPPED_DIR
from svg_ear_compile.tuner._end_to_end import compiled, final_psnr
from svg_ear_compile.tuner._model import Guidance, TuneModel, TunerError, denoise, load_model
from svg_ear_compile.tuner._search_space import uniform_config

LONG_PROFILE = SHIPPED_DIR / "NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml"


def parse_variant(text: str) -> dict[str, Any]:
    """``field=value[,field=value…]`` (values read as YAML: ``10`` is an int, ``0.5`` a float)."""
    variant = {}
    for pair in text.split(","):
        field, sep, value = pair.partition("=")
        if not sep or not field:
            raise argparse.ArgumentTypeError(f"--variant {text!r}: expected field=value[,field=value...], "
                                             "e.g. kmeans_iters_init=10")
        variant[field.strip()] = yaml.safe_load(value)
    return variant


def _variant_name(variant: dict[str, Any]) -> str:
    return ",".join(f"{field}={value}" for field, value in variant.items())


def configs_to_run(profile_config: SvgEarConfig, seq_len: int, budgets: list[float],
                   variants: list[dict[str, Any]],
                   tuned_variants: list[dict[str, Any]] = (),
                   other_profiles: list[SvgEarConfig] = (),
                   searched: list[dict[str, Any] | None] | None = None,
                   plain: bool = True) -> dict[str, SvgEarConfig | None]:
    """Every config to time, by name. ``searched`` gives, for the profile and each other profile in turn
    (``tuned``, ``tuned2``, …), the params of its tuning run's best uniform config (None: none), which run
    for every layer over the profile's base."""
    base = profile_config.replace(layer_overrides={})
    profiles = {"tuned": profile_config, **{f"tuned{number}": other for number, other in enumerate(other_profiles, 2)}}
    configs: dict[str, SvgEarConfig | None] = {"dense": None, **profiles}
    per_layer = {field for override in profile_config.layer_overrides.values() for field in override}
    for variant in tuned_variants:
        clash = sorted(per_layer & set(variant))
        if clash:
            raise ValueError(f"--tuned-variant {_variant_name(variant)}: the profile sets {clash} per layer, "
                             "which would override it")
        configs[f"tuned+{_variant_name(variant)}"] = profile_config.replace(**variant)
    for budget in budgets:
        uniform = uniform_config(base, seq_len, budget)
        if plain:
            configs[f"uniform@{budget:g}"] = uniform
        for variant in variants:
            configs[f"uniform@{budget:g}+{_variant_name(variant)}"] = uniform.replace(**variant)
    for name, params in zip(profiles, searched or [None] * len(profiles), strict=True):
        if params is not None:
            configs[f"uniform@{params['budget']:.3g} ({name}'s search)"] = base.replace(**params)
    return configs


def searched_uniform(profile: Any) -> dict[str, Any] | None:
    """The params of the fastest uniform config a profile's tuning run found (None: it ran no one-config stage)."""
    found = profile.end_to_end.get("uniform_search")
    return None if found is None else dict(found["params"])


def profile_guidance(profile: Any, scale: float | None = None, calls: str | None = None) -> Guidance:
    """The guidance ``profile`` was tuned with (``end_to_end.guidance`` and ``guidance_batched``), unless
    ``scale`` or ``calls`` (``"two"`` or ``"batched"``) override it; a bad scale raises TunerError."""
    tuned_with = profile.end_to_end
    calls = calls or ("batched" if tuned_with.get("guidance_batched") else "two")
    return Guidance(tuned_with.get("guidance", 1.0) if scale is None else scale, batched=calls == "batched")


def check_same_model(parser: argparse.ArgumentParser, path: str, profile: Any, tune_model: TuneModel,
                     model: str) -> None:
    """A parser error unless the profile at ``path`` was tuned for ``model`` (its config hash)."""
    if profile.model.config_hash != tune_model.config_hash():
        parser.error(f"--profile {path} was tuned for another model (config hash "
                     f"{profile.model.config_hash}, --model {model} has {tune_model.config_hash()})")


def _run(forward: Any, inputs: dict[str, Any], steps: int, device: torch.device,
         guidance: Guidance) -> tuple[torch.Tensor, float]:
    """One whole denoising run from cold centroid caches: final latents and wall time in ms."""
    reset_centroid_caches()
    return wall_ms(lambda: denoise(forward, inputs, steps, guidance=guidance), device)


def measure(tune_model: TuneModel, configs: dict[str, SvgEarConfig | None], args: argparse.Namespace,
            device: torch.device, results: dict, guidance: Guidance) -> list[dict[str, Any]]:
    seeds_inputs = [tune_model.inputs_for(seed) for seed in args.seeds]
    rows = {name: {"config": name, "settings": config and config.to_dict(), "psnr_db": None, "times_ms": []}
            for name, config in configs.items()}
    dense_finals: list[torch.Tensor] = []
    results["runs"] = list(rows.values())
    for round_ in range(args.rounds):
        for name, config in configs.items():
            forward = compiled(tune_model, config)
            denoise(forward, seeds_inputs[0], 1, guidance=guidance)  # compiles; not timed
            if round_ == 0:
                finals = [_run(forward, inputs, args.steps, device, guidance)[0].float().cpu()
                          for inputs in seeds_inputs]
                if config is None:
                    dense_finals = finals
                rows[name]["psnr_db"] = final_psnr(finals, dense_finals)
            rows[name]["times_ms"] += [_run(forward, seeds_inputs[0], args.steps, device, guidance)[1]
                                       for _ in range(args.runs)]
            write_json(args.json, results, quiet=True)
            print(f"round {round_ + 1}/{args.rounds} {name}: PSNR {rows[name]['psnr_db']:.2f} dB, "
                  f"{statistics.median(rows[name]['times_ms']):.1f} ms", flush=True)
    reset_centroid_caches()
    return list(rows.values())


def summarize(rows: list[dict[str, Any]], target_db: float) -> dict[str, Any]:
    """Medians, speedups vs dense and the tuned profile against the fastest uniform config meeting ``target_db``."""
    by_name = {row["config"]: row for row in rows}
    for row in rows:
        row["median_ms"] = statistics.median(row["times_ms"])
        row["speedup"] = statistics.median(by_name["dense"]["times_ms"]) / row["median_ms"]
    uniform = [r for r in rows if r["config"].startswith("uniform@") and r["psnr_db"] >= target_db]
    best = min(uniform, key=lambda r: r["median_ms"]) if uniform else None
    tuned = by_name["tuned"]
    others = [name for name in by_name if name[len("tuned"):].isdigit()]
    return {"target_psnr_db": target_db, "tuned_meets_target": tuned["psnr_db"] >= target_db,
            "best_uniform": best and best["config"],
            "tuned_vs_best_uniform": best and best["median_ms"] / tuned["median_ms"],
            "others_vs_best_uniform": {name: best and best["median_ms"] / by_name[name]["median_ms"]
                                       for name in others}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="svg_ear_compile.fixture:tuning_target_long",
                        help="module:function or diffusers model, as for svg-ear-tune")
    parser.add_argument("--resolution", default=None, help="HxWxFRAMES, for a diffusers model")
    parser.add_argument("--profile", default=str(LONG_PROFILE), help="the tuned profile (YAML)")
    parser.add_argument("--other-profile", action="append", default=[],
                        help="another tuned profile of the same model, timed alongside as tuned2, tuned3, ... "
                             "(repeatable)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.05, 0.06, 0.07])
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        help="field=value[,field=value...]: also run each uniform budget with these fields changed "
                             "(repeatable)")
    parser.add_argument("--tuned-variant", type=parse_variant, action="append", default=[],
                        help="field=value[,field=value...]: also run the profile with these fields set for every "
                             "layer (repeatable)")
    parser.add_argument("--plain", action=argparse.BooleanOptionalAction, default=True,
                        help="time the plain uniform config at each budget (--no-plain: only its variants)")
    parser.add_argument("--searched", action=argparse.BooleanOptionalAction, default=True,
                        help="time each profile's own best uniform config (its tuning run's one-config stage)")
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale (default: the profile's tuning runs'; 1: none)")
    parser.add_argument("--guidance-calls", choices=("two", "batched"), default=None,
                        help="two calls per step or one batch of both (default: as the profile was tuned)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2, help="timed runs per config and round")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.runs < 1 or args.steps < 1:
        parser.error("--rounds, --runs and --steps must be at least 1")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    profile = read_profile(args.profile)
    others = [read_profile(path) for path in args.other_profile]
    try:
        guidance = profile_guidance(profile, args.guidance, args.guidance_calls)
    except TunerError as error:
        parser.error(str(error))
    tune_model = load_model(args.model, resolution=args.resolution, device=device, dtype=dtype)
    for path, tuned in ((args.profile, profile), *zip(args.other_profile, others, strict=True)):
        check_same_model(parser, path, tuned, tune_model, args.model)
    searched = [searched_uniform(tuned) if args.searched else None for tuned in (profile, *others)]
    try:
        configs = configs_to_run(profile.config(), profile.model.seq_len, args.budgets, args.variant,
                                 args.tuned_variant, [other.config() for other in others], searched, args.plain)
    except (ValueError, TypeError) as error:  # a clash, a bad value or an unknown field
        parser.error(str(error))
    results: dict[str, Any] = {"device": describe_device(device), "profile": args.profile,
                               "other_profiles": args.other_profile, "model": args.model,
                               "steps": args.steps, "seeds": args.seeds, "rounds": args.rounds, "runs": args.runs,
                               "guidance": guidance.scale, "guidance_batched": guidance.batched}
    rows = measure(tune_model, configs, args, device, results, guidance)
    results["summary"] = summarize(rows, float(profile.end_to_end.get("target_psnr_db", 30.0)))
    write_json(args.json, results)
    guided = (f", guidance {guidance.scale:g} ({'one batch' if guidance.batched else 'two calls'} per step)"
              if guidance.active else "")
    print(f"\n{results['device']}; {args.steps} steps{guided}, seeds {args.seeds}, {args.rounds} rounds x "
          f"{args.runs} runs")
    print(markdown_table(["config", "final PSNR dB", "median ms", "min ms", "max ms", "vs dense"],
                         [[r["config"], f"{r['psnr_db']:.2f}", f"{r['median_ms']:.1f}", f"{min(r['times_ms']):.1f}",
                           f"{max(r['times_ms']):.1f}", f"{r['speedup']:.2f}x"] for r in rows]))
    summary = results["summary"]
    if summary["best_uniform"]:
        for name, ratio in {"tuned": summary["tuned_vs_best_uniform"], **summary["others_vs_best_uniform"]}.items():
            print(f"{name} vs {summary['best_uniform']} (fastest uniform meeting {summary['target_psnr_db']:g} dB): "
                  f"{ratio:.2f}x the speed")
    else:
        print(f"no uniform config meets {summary['target_psnr_db']:g} dB")
    return results


if __name__ == "__main__":
    main()
