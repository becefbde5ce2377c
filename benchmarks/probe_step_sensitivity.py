"""How much of the final output's error comes from each part of the denoising schedule.

Budget trading (``svg_ear_compile/tuner/_allocate.py``) measures each layer's sensitivity: the final
error added when that layer alone runs at a smaller budget. This probe measures the same along the other
axis a profile could vary, the steps: the schedule is cut into ``--periods`` runs of consecutive steps,
and for each period the profile's budgets are scaled by ``--ratio`` in every layer during that period
only. With ``e = 10^(−PSNR/10)`` of the final latents against the dense run's (all ``--seeds``, as in the
tuner's end-to-end check), period ``k``'s sensitivity is ``e_k − e_profile``; its share of the sum says
how unevenly the schedule tolerates attention error. Shares far from ``1/periods`` would let a budget
schedule over steps save what a per-layer profile cannot; near-even ones would not.

The scaled budgets run as a second compiled model whose layers keep their own centroid caches, so each
period starts its layers' k-means cold (``kmeans_iters_init`` iterations), and the profile's layers
resume from centroids one period old: the probe measures the budget's effect together with that.

GPU (the long-clip fixture and its shipped H100 profile)::

    python benchmarks/probe_step_sensitivity.py --profile <profile.yaml> --periods 4 --json $OUT/steps.json

CPU smoke run: ``tests/test_benchmarks_smoke.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from _timing import describe_device, markdown_table, write_json
from bench_tuned import LONG_PROFILE, check_same_model, profile_guidance

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.ops import reset_centroid_caches
from svg_ear_compile.profiles import read_profile
from svg_ear_compile.tuner._allocate import squared_error
from svg_ear_compile.tuner._end_to_end import compiled, final_psnr
from svg_ear_compile.tuner._model import denoise, load_model


def scaled_budgets(config: SvgEarConfig, ratio: float) -> SvgEarConfig:
    """``config`` with its budget and every layer's budget override multiplied by ``ratio`` (a budget of
    None, top-p routing's, stays None)."""
    def scaled(budget: float | None) -> float | None:
        return None if budget is None else budget * ratio

    overrides = {layer: {**override, "budget": scaled(override["budget"])} if "budget" in override else override
                 for layer, override in config.layer_overrides.items()}
    return config.replace(budget=scaled(config.budget), layer_overrides=overrides)


def periods_of(steps: int, periods: int) -> list[range]:
    """``steps`` cut into ``periods`` runs of consecutive steps, as even as they divide (earlier ones longer)."""
    if not 1 <= periods <= steps:
        raise ValueError(f"--periods {periods}: must be between 1 and --steps ({steps})")
    bounds = [round(steps * k / periods) for k in range(periods + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(periods)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="svg_ear_compile.fixture:tuning_target_long",
                        help="module:function or diffusers model, as for svg-ear-tune")
    parser.add_argument("--resolution", default=None, help="HxWxFRAMES, for a diffusers model")
    parser.add_argument("--profile", default=str(LONG_PROFILE), help="the tuned profile (YAML)")
    parser.add_argument("--periods", type=int, default=4)
    parser.add_argument("--ratio", type=float, default=0.5, help="budget scale within the probed period")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if not 0 < args.ratio <= 1:
        parser.error(f"--ratio {args.ratio}: must be in (0, 1]")
    try:
        periods = periods_of(args.steps, args.periods)
    except ValueError as error:
        parser.error(str(error))
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    profile = read_profile(args.profile)
    guidance = profile_guidance(profile)
    tune_model = load_model(args.model, resolution=args.resolution, device=device, dtype=dtype)
    check_same_model(parser, args.profile, profile, tune_model, args.model)
    seeds_inputs = [tune_model.inputs_for(seed) for seed in args.seeds]
    base_config = profile.config()
    forwards = {"dense": compiled(tune_model, None), "profile": compiled(tune_model, base_config),
                "scaled": compiled(tune_model, scaled_budgets(base_config, args.ratio))}

    def finals(scaled_steps: range) -> list[torch.Tensor]:
        step_now = [0]

        def forward(**call: Any) -> Any:
            return forwards["scaled" if step_now[0] in scaled_steps else "profile"](**call)

        def on_step(step: int, _timestep: float) -> None:
            step_now[0] = step

        runs = []
        for inputs in seeds_inputs:
            reset_centroid_caches()
            runs.append(denoise(forward, inputs, args.steps, on_step=on_step, guidance=guidance).float().cpu())
        return runs

    dense = []
    for inputs in seeds_inputs:
        dense.append(denoise(forwards["dense"], inputs, args.steps, guidance=guidance).float().cpu())
    profile_db = final_psnr(finals(range(0)), dense)
    rows = []
    for index, steps in enumerate(periods):
        psnr_db = final_psnr(finals(steps), dense)
        rows.append({"period": index, "steps": [steps.start, steps.stop - 1], "psnr_db": psnr_db,
                     "sensitivity": squared_error(psnr_db) - squared_error(profile_db)})
        print(f"period {index} (steps {steps.start}-{steps.stop - 1}) at {args.ratio:g}x: PSNR {psnr_db:.2f} dB",
              flush=True)
    total = sum(row["sensitivity"] for row in rows)
    for row in rows:
        row["share"] = row["sensitivity"] / total if total > 0 else None
    results = {"device": describe_device(device), "profile": args.profile, "model": args.model, "steps": args.steps,
               "seeds": args.seeds, "ratio": args.ratio, "guidance": guidance.scale,
               "guidance_batched": guidance.batched, "profile_psnr_db": profile_db, "periods": rows}
    write_json(args.json, results)
    print(f"\n{results['device']}; {args.steps} steps, seeds {args.seeds}; the profile alone: {profile_db:.2f} dB")
    print(markdown_table(["period", "steps", f"final PSNR dB at {args.ratio:g}x budget", "sensitivity", "share"],
                         [[row["period"], f"{row['steps'][0]}-{row['steps'][1]}", f"{row['psnr_db']:.2f}",
                           f"{row['sensitivity']:.3g}", "-" if row["share"] is None else f"{row['share']:.0%}"]
                          for row in rows]))
    return results


if __name__ == "__main__":
    main()
