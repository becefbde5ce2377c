"""Quality against density and time: sparse vs dense clips of the fixture model, same class and seed.

For every (class, seed) pair the fixture model (``svg_ear_compile.fixture``: ``load_fixture`` and
``sample``, with the sampling settings stored in its checkpoint unless ``--steps``/``--guidance``/
``--shift`` say otherwise) samples one clip with exact attention (``torch.compile`` default) and one per sparse
setting (``backend="svg_ear"``), each from the same noise; the sparse clip is scored against the dense
one with :func:`svg_ear_compile.metrics.psnr` and :func:`~svg_ear_compile.metrics.ssim` (clips on
[0, 1]). Modes, each at every ``--budgets`` value (the share of the S² area computed exactly):

    ear            routing="error_aware", compensation=True    (SVG-EAR)
    svg2           routing="attention",   compensation=False   (SVG2's routing at the same area)
    comp_only      routing="attention",   compensation=True    (compensation alone)
    ear_only       routing="error_aware", compensation=False   (error-aware routing alone)

plus ``svg2_top_p``: SVG2 as published (``budget=None``, each row keeps its top-``p`` attention mass)
at every ``--top-ps`` value, where the density is whatever top-p gives.

With ``--refresh-every 1 2 …`` every budgeted mode also runs with ``SvgEarConfig.refresh_every`` at
each value (rows ``ear r2``, …): the quality cost of reusing a layer's routing across steps.
``--guidance-calls`` samples the guidance prompts (class, then zero) as two model calls per step, as
diffusers' ``WanPipeline`` does, instead of one batch of two: ``refresh_every`` counts calls, so there
a kept routing made for one prompt serves the other.

Density: the mean over every op call of a clip (``svg_ear_compile.record()``), averaged over clips.
Centroid caches are reset before each clip (each video starts with a full k-means). Time per clip:
``--timing-clips`` further clips of the first pairs sampled without ``record()`` (it synchronises
once per op call), wall clock with the device synchronised, after the compile (the first clip).

Output: a markdown table (one row per mode and budget, means over pairs), ``--json`` with every
clip's numbers, and ``--plot``: a Pareto plot, PSNR vs density and PSNR vs time per clip, one line
per mode.

GPU (one H100)::

    python benchmarks/bench_quality.py --json $OUT/quality.json --plot $OUT/quality.png

The checkpoint must exist (``svg_ear_compile/fixture/weights/``, or ``--fixture DIR``); the fixture's
module says how to train one. CPU smoke run (the fixture's tiny architecture with random weights at its
tiny clip size, 4 × 16 × 16 pixels: 256 tokens; 2 pairs, 2 steps, budget 0.2, one top-p)::

    python benchmarks/bench_quality.py --smoke --plot /tmp/quality_smoke.png
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import itertools
import statistics
import sys
from typing import Any

import torch
from _timing import add_config_set_argument, describe_device, free_memory, markdown_table, wall_ms, write_json

import svg_ear_compile
from svg_ear_compile.fixture.model import ClipSpec
from svg_ear_compile.metrics import psnr, ssim
from svg_ear_compile.ops import reset_centroid_caches

MODES = {
    "ear": dict(routing="error_aware", compensation=True),
    "svg2": dict(routing="attention", compensation=False),
    "comp_only": dict(routing="attention", compensation=True),
    "ear_only": dict(routing="error_aware", compensation=False),
}
TOP_P_MODE = "svg2_top_p"
SMOKE_OPTIONS = dict(min_seq_len=0, num_q_clusters=8, num_k_clusters=32)


def load_source(args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    """The fixture (``--smoke``: the fixture's tiny architecture with random weights at its tiny clip size)
    and the keyword arguments of :func:`svg_ear_compile.fixture.sample.sample` (from the checkpoint's
    ``fixture.json`` sampling settings unless given)."""
    from svg_ear_compile.fixture import model as fixture_model

    if args.smoke:
        tiny = fixture_model.TINY_CONFIG
        model = fixture_model.build_model(tiny).to(device).eval()  # float32
        fixture = fixture_model.Fixture(
            model=model if dtype == torch.float32 else model.to(dtype), clip=fixture_model.TINY_CLIP,
            class_embeddings=fixture_model.class_embeddings(dim=tiny["text_dim"]).to(device, dtype))
    else:
        fixture = fixture_model.load_fixture(args.fixture, device=device, dtype=dtype)
    defaults = fixture.info.get("sampling", {})
    sampling = {name: getattr(args, name) if getattr(args, name) is not None else defaults.get(name)
                for name in ("steps", "guidance", "shift")}
    return fixture, {name: value for name, value in sampling.items() if value is not None}


def settings(args: argparse.Namespace) -> list[tuple[str, float | None, dict]]:
    """(mode, budget or top-p, svg_ear options) for every sparse setting."""
    base = dict(SMOKE_OPTIONS if args.smoke else {}, impl=args.impl)
    for field_name, value in (("dense_above_timestep", args.dense_above_timestep),
                              ("num_q_clusters", args.q_clusters), ("num_k_clusters", args.k_clusters),
                              ("min_seq_len", args.min_seq_len), *args.set):
        if value is not None:
            base[field_name] = value
    rows = [(mode if refresh == 1 else f"{mode} r{refresh}", budget,
             dict(base, budget=budget, refresh_every=refresh, **MODES[mode]))
            for refresh in args.refresh_every for mode in args.modes for budget in args.budgets]
    rows += [(TOP_P_MODE, top_p, dict(base, budget=None, top_p=top_p, **MODES["svg2"])) for top_p in args.top_ps]
    return rows


def run_setting(fixture, sampling: dict, options: dict | None, pairs: list[tuple[int, int]], dense_clips: dict | None,
                args: argparse.Namespace, device: torch.device) -> tuple[dict, dict]:
    """Compile the fixture's model (Inductor alone when ``options`` is None), sample every pair, score, time.

    Returns the summary (per-clip scores, means, times) and the clips by (class, seed)."""
    from svg_ear_compile.fixture.sample import sample

    free_memory(device)
    if args.regional:
        compiled = copy.deepcopy(fixture.model)
        if options is None:
            compiled.compile_repeated_blocks()
        else:
            svg_ear_compile.compile_repeated_blocks(compiled, options)
    else:
        compiled = torch.compile(fixture.model, **({} if options is None else dict(backend="svg_ear", options=options)))
    source = dataclasses.replace(fixture, model=compiled)

    def sample_clip(pair: tuple[int, int]) -> torch.Tensor:
        reset_centroid_caches()  # each clip starts with a full k-means, as a new video would
        return sample(source, *pair, progress=False, clip=args.clip_spec, batched_guidance=not args.guidance_calls,
                      **sampling)

    clips, scores = {}, []
    with torch.no_grad():
        for pair in pairs:
            with svg_ear_compile.record() as rec:
                clip = sample_clip(pair)
            clips[pair] = clip
            score = dict(class_index=pair[0], seed=pair[1], op_calls=len(rec.records),
                         density=rec.mean_density() if rec.records else 1.0)
            if dense_clips is not None:
                score.update(psnr=psnr(clip, dense_clips[pair]), ssim=ssim(clip, dense_clips[pair]))
            scores.append(score)
        times = [wall_ms(functools.partial(sample_clip, pair), device)[1]
                 for pair in itertools.islice(itertools.cycle(pairs), args.timing_clips)]
    summary = dict(clips=scores, density=statistics.mean(s["density"] for s in scores),
                   clip_ms=statistics.mean(times), clip_times_ms=times)
    if dense_clips is not None:
        summary.update(psnr=statistics.mean(s["psnr"] for s in scores), ssim=statistics.mean(s["ssim"] for s in scores),
                       psnr_min=min(s["psnr"] for s in scores))
    return summary, clips


def pareto_plot(rows: list[dict], dense_ms: float, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_density, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for mode in dict.fromkeys(row["mode"] for row in rows):
        points = sorted((row["density"], row["clip_ms"] / 1e3, row["psnr"]) for row in rows if row["mode"] == mode)
        finite = [p for p in points if p[2] != float("inf")]
        by_density.plot([p[0] for p in finite], [p[2] for p in finite], marker="o", label=mode)
        by_time.plot([p[1] for p in finite], [p[2] for p in finite], marker="o", label=mode)
    by_time.axvline(dense_ms / 1e3, color="gray", linestyle="--", label="dense")
    by_density.set(xlabel="density (share of S² computed exactly)", ylabel="PSNR vs dense (dB)")
    by_time.set(xlabel="time per clip (s)", ylabel="PSNR vs dense (dB)")
    figure.suptitle(title, fontsize=9)
    for axes in (by_density, by_time):
        axes.grid(alpha=0.3)
        axes.legend()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="CPU plumbing check: a tiny random Wan, not the fixture; 2 pairs, 2 steps, budget 0.2")
    parser.add_argument("--fixture", help="fixture weights for load_fixture(path) (default: the fixture's own)")
    parser.add_argument("--classes", nargs="+", type=int, default=[0, 1, 2, 3], help="class indices (default 0-3)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds; pairs = classes x seeds")
    parser.add_argument("--steps", type=int, help="sampling steps (default: the checkpoint's sampling settings)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance (default: the checkpoint's)")
    parser.add_argument("--guidance-calls", action="store_true",
                        help="run the guidance prompts as two model calls per step, as diffusers' WanPipeline does "
                             "(default: one batch of two); refresh_every then counts two calls per step")
    parser.add_argument("--shift", type=float, help="flow time shift (default: the checkpoint's)")
    parser.add_argument("--q-clusters", type=int, help="SvgEarConfig.num_q_clusters (default: the config's)")
    parser.add_argument("--k-clusters", type=int, help="SvgEarConfig.num_k_clusters (default: the config's)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES), help="budgeted modes to run")
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.1, 0.2, 0.3, 0.4],
                        help="SvgEarConfig.budget values for every mode (default 0.1 0.2 0.3 0.4)")
    parser.add_argument("--refresh-every", nargs="+", type=int, default=[1],
                        help="SvgEarConfig.refresh_every values for every budgeted mode; a value r > 1 labels its "
                             "rows 'MODE rR' (default: 1, every call routes afresh)")
    parser.add_argument("--top-ps", nargs="*", type=float, default=[0.8, 0.9, 0.95],
                        help=f"top_p values of the {TOP_P_MODE} mode (budget=None); none to skip it")
    parser.add_argument("--min-seq-len", type=int,
                        help="SvgEarConfig.min_seq_len: shorter attention stays exact (default: the config's, 1024)")
    parser.add_argument("--clip", nargs=3, type=int, metavar=("FRAMES", "HEIGHT", "WIDTH"),
                        help="clip size in pixels (default: the fixture's native 8 48 96, 9,216 tokens; "
                             "16 96 192 is its long clip, 73,728 tokens, about Wan2.1-14B-720p's)")
    add_config_set_argument(parser)
    parser.add_argument("--dense-above-timestep", type=float, help="dense warm-up: exact above this timestep")
    parser.add_argument("--impl", default="auto", help="SvgEarConfig.impl (default: auto = Triton on CUDA)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16", "float32"],
                        help="model dtype (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--timing-clips", type=int, default=1, help="clips timed per setting, without record()")
    parser.add_argument("--regional", action="store_true",
                        help="compile each transformer block (compile_repeated_blocks) instead of the whole model")
    parser.add_argument("--json", help="also write every clip's numbers to this JSON file")
    parser.add_argument("--plot", default="bench_quality.png", help="Pareto plot PNG (default: ./bench_quality.png)")
    args = parser.parse_args(argv)
    if min(args.refresh_every) < 1:
        parser.error(f"--refresh-every {args.refresh_every}: every value must be at least 1")
    if args.smoke:
        args.classes, args.seeds, args.steps = args.classes[:2], args.seeds[:1], 2
        args.budgets, args.top_ps = [0.2], args.top_ps[1:2]
    pairs = list(itertools.product(args.classes, args.seeds))
    if args.clip is not None and (min(args.clip) < 1 or args.clip[1] % 2 or args.clip[2] % 2):
        parser.error(f"--clip {' '.join(map(str, args.clip))}: expected positive sizes, height and width even "
                     "(the model's 2x2 patches)")
    args.clip_spec = None if args.clip is None else ClipSpec(*args.clip)

    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    header = (f"device: {describe_device(device)}; {dtype}; {len(pairs)} (class, seed) pairs; "
              f"argv: {' '.join(sys.argv[1:])}")
    print(header, flush=True)
    fixture, sampling = load_source(args, device, dtype)
    print(f"fixture: {fixture.path or 'random weights (smoke)'}; clip {args.clip_spec or fixture.clip}; "
          f"sampling {sampling}", flush=True)
    if max(args.classes) >= fixture.num_classes:
        parser.error(f"--classes {args.classes}: the fixture has classes 0-{fixture.num_classes - 1}")

    dense, dense_clips = run_setting(fixture, sampling, None, pairs, None, args, device)
    print(f"dense: {dense['clip_ms'] / 1e3:.3f} s per clip", flush=True)
    rows = []
    results: dict[str, Any] = dict(header=header, args=vars(args), dense=dense, settings=rows)
    for mode, value, options in settings(args):
        result, _ = run_setting(fixture, sampling, options, pairs, dense_clips, args, device)
        row = dict(mode=mode, budget=options["budget"], top_p=options.get("top_p"), options=options) | result
        rows.append(row)
        write_json(args.json, results, quiet=True)  # after each setting, so a time limit keeps what was measured
        print(f"{mode} {value:g}: density {row['density']:.1%}, PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}, "
              f"{row['clip_ms'] / 1e3:.3f} s per clip", flush=True)

    table = markdown_table(
        ["mode", "budget / top-p", "density", "PSNR dB (mean)", "PSNR dB (min)", "SSIM (mean)", "s per clip",
         "speedup"],
        [[r["mode"], f"{r['budget'] if r['budget'] is not None else r['top_p']:g}", f"{r['density']:.1%}",
          f"{r['psnr']:.2f}", f"{r['psnr_min']:.2f}", f"{r['ssim']:.4f}", f"{r['clip_ms'] / 1e3:.3f}",
          f"{dense['clip_ms'] / r['clip_ms']:.2f}x"] for r in rows])
    print(f"\n{header}\nPSNR/SSIM of each sparse clip against the dense clip of the same (class, seed), means over "
          f"{len(pairs)} pairs; dense: {dense['clip_ms'] / 1e3:.3f} s per clip\n\n{table}\n")
    write_json(args.json, results)
    if args.plot:
        pareto_plot(rows, dense["clip_ms"], args.plot, header.split("; argv")[0])
    return results


if __name__ == "__main__":
    main()
