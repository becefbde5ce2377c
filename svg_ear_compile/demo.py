"""``make demo``: the trained fixture generates one clip with exact attention and one with ``backend="svg_ear"``.

The fixture (``svg_ear_compile.fixture``: Wan2.1's architecture, 6 layers, 9,216 video tokens per
8 × 48 × 96 clip, trained here) is compiled twice, with Inductor alone and with ``backend="svg_ear"``.
Both samples start from the same noise, class and seed. The demo prints what the backend rewrote,
the density per layer, the PSNR and SSIM of the sparse clip against the dense one, and the time of each
denoising loop. It writes ``strips.png`` (both clips, frame by frame) and ``side_by_side.gif`` to
``--out``.

It runs on whatever device is present. A CPU uses the torch reference path and a cheaper setting
(10 Euler steps, no guidance, 64/256 clusters), a few minutes in all. A GPU uses the Triton kernels,
the checkpoint's own sampling settings (30 steps, guidance 2) and the fixture's long clip (16 × 96 × 192,
73,728 tokens): at the native 9,216 tokens an H100 runs exact attention faster than the sparse
pipeline (0.14 s against 1.19 s for the 30-step loop); at 73,728 tokens the sparse loop took 3.48 s
against 4.63 s at the default 20% density, cold first step included (``benchmarks/RESULTS.md``).
``--clip`` picks any size.

    python -m svg_ear_compile.demo --class-index 2 --budget 0.1 --out demo_out

``--part modes`` instead compares the four routing/compensation modes on one attention call of a
structured, video-like clip (relative error against exact attention at equal density).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import SvgEarConfig, SvgEarState, explain, record, svg_ear_attention
from .metrics import psnr, ssim
from .ops import reset_centroid_caches
from .workloads import video_qkv

MODES = {
    "SVG-EAR (error-aware + compensation)": dict(routing="error_aware", compensation=True),
    "SVG2 (top mass, dropped)": dict(routing="attention", compensation=False),
    "compensation only (top mass)": dict(routing="attention", compensation=True),
    "error-aware only (dropped)": dict(routing="error_aware", compensation=False),
}
CPU_SETTINGS = dict(steps=10, guidance=1.0, q_clusters=64, k_clusters=256)


def _parse_clip(text: str):
    from .fixture import ClipSpec

    try:
        frames, height, width = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--clip {text!r}: expected FRAMESxHEIGHTxWIDTH, e.g. 8x48x96") from None
    if min(frames, height, width) < 1 or height % 2 or width % 2:
        raise argparse.ArgumentTypeError(f"--clip {text!r}: expected positive sizes, height and width even")
    return ClipSpec(frames, height, width)


def _sampling(args: argparse.Namespace, fixture, device: torch.device) -> dict[str, Any]:
    """Steps, guidance and shift: the flags, else the CPU setting, else the checkpoint's own."""
    own = fixture.info.get("sampling", {})
    cpu = device.type == "cpu"
    return dict(steps=args.steps or (CPU_SETTINGS["steps"] if cpu else own.get("steps", 30)),
                guidance=args.guidance or (CPU_SETTINGS["guidance"] if cpu else own.get("guidance", 2.0)),
                shift=own.get("shift", 1.0))


def _options(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    cpu = device.type == "cpu"
    options: dict[str, Any] = dict(budget=args.budget)
    q_clusters = args.q_clusters or (CPU_SETTINGS["q_clusters"] if cpu else None)
    k_clusters = args.k_clusters or (CPU_SETTINGS["k_clusters"] if cpu else None)
    for name, value in (("num_q_clusters", q_clusters), ("num_k_clusters", k_clusters),
                        ("min_seq_len", args.min_seq_len), ("dense_above_timestep", args.dense_above)):
        if value is not None:
            options[name] = value
    return options


def _sample_compiled(fixture, compile_kwargs: dict[str, Any], class_index: int, seed: int, sampling: dict,
                     progress: bool) -> dict[str, Any]:
    """Compile, warm up with one step (compile time), then sample with ``record()`` and a wall clock."""
    from .fixture import sample

    torch._dynamo.reset()
    source = dataclasses.replace(fixture, model=torch.compile(fixture.model, **compile_kwargs))
    reset_centroid_caches()
    start = time.perf_counter()
    sample(source, class_index, seed, **dict(sampling, steps=1), progress=False)
    first_call = time.perf_counter() - start
    reset_centroid_caches()  # the timed clip starts from a full k-means, as a new video would
    with record() as rec:
        start = time.perf_counter()
        clip = sample(source, class_index, seed, **sampling, progress=progress)
        loop = time.perf_counter() - start
    return dict(clip=clip, first_call_s=first_call, loop_s=loop, recording=rec,
                density=rec.mean_density() if rec.records else 1.0)


def clip_demo(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the dense and the sparse clip, print the comparison, write the pictures; returns the figures."""
    from .fixture import LONG_CLIP, load_fixture, save_gif, save_strip

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    fixture = load_fixture(args.fixture, device=device, dtype=dtype)
    # On a GPU, the long clip: at the native size exact attention is faster (module docstring).
    clip = args.clip or (LONG_CLIP if device.type == "cuda" else None)
    if clip is not None:
        fixture = dataclasses.replace(fixture, clip=clip)
    if not 0 <= args.class_index < fixture.num_classes:
        raise SystemExit(f"--class-index {args.class_index}: the fixture has classes 0..{fixture.num_classes - 1}")
    sampling, options = _sampling(args, fixture, device), _options(args, device)
    clip = fixture.clip
    name = fixture.class_names[args.class_index]
    print(f"fixture: {fixture.path} ({len(fixture.model.blocks)} layers), class {args.class_index} ({name}), "
          f"seed {args.seed}; clip {clip.frames}x{clip.height}x{clip.width} = {clip.tokens()} video tokens; "
          f"{device.type} {str(dtype).removeprefix('torch.')}; sampling {sampling}")
    print(f"backend options: {options}\n")
    guided = sampling["guidance"] != 1.0
    prompt = fixture.class_embeddings[args.class_index : args.class_index + 1]
    example = dict(hidden_states=torch.zeros(1, 3, clip.frames, clip.height, clip.width, device=device, dtype=dtype),
                   timestep=torch.tensor([500.0], device=device), encoder_hidden_states=prompt, return_dict=False)
    explain(fixture.model, model_kwargs=example, **options)

    runs = {}
    for label, compile_kwargs in (("dense", {}), ("svg_ear", dict(backend="svg_ear", options=options))):
        print(f"\n{label}: compiling, then {sampling['steps']} denoising steps" + (" (CFG: batch 2)" if guided else ""))
        runs[label] = _sample_compiled(fixture, compile_kwargs, args.class_index, args.seed, sampling,
                                       not args.no_progress)
    dense, sparse = runs["dense"], runs["svg_ear"]
    sparse.update(psnr=psnr(sparse["clip"], dense["clip"]), ssim=ssim(sparse["clip"], dense["clip"]))
    dense.update(psnr=math.inf, ssim=1.0)

    print("\nsvg_ear op calls per layer:")
    print(sparse["recording"].layer_table())
    print(f"\n{'run':8s} {'density':>8s} {'PSNR vs dense':>14s} {'SSIM':>7s} {'compile + 1 step s':>19s} "
          f"{'loop s':>8s}")
    for label, run in runs.items():
        print(f"{label:8s} {run['density']:8.1%} {run['psnr']:11.2f} dB {run['ssim']:7.4f} "
              f"{run['first_call_s']:19.1f} {run['loop_s']:8.2f}")
    print(f"\nPSNR/SSIM: per frame on [0, 1], averaged over the {clip.frames} frames. Density: the mean over "
          "every op call of the loop.")
    if device.type == "cpu":
        print("On a CPU the op runs its torch reference (chunked loops, no fused kernel) and dense attention runs "
              "PyTorch's CPU kernel:\nthese times say nothing about a GPU, where the Triton kernels run "
              "(benchmarks/RESULTS.md has H100 figures).")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = ["dense attention", f"svg_ear, density {sparse['density']:.0%}: PSNR {sparse['psnr']:.1f} dB, "
              f"SSIM {sparse['ssim']:.3f}"]
    strips = save_strip([dense["clip"], sparse["clip"]], out / "strips.png", labels=labels)
    gif = save_gif([dense["clip"], sparse["clip"]], out / "side_by_side.gif")
    print(f"\nwrote {strips} (top: dense, bottom: svg_ear) and {gif} (left: dense, right: svg_ear)")
    return runs


def _timed(fn, repeats: int = 3):
    """Result of ``fn`` and the median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, sorted(times)[len(times) // 2]


def modes_demo(args: argparse.Namespace) -> None:
    """The four modes on one attention call of a structured clip, at each of ``args.densities``."""
    q, k, v = video_qkv(1, 4, 8, 24, 32, 64)
    print(f"One attention call on a structured clip: B=1 H=4 S={q.shape[2]} D=64 float32 on CPU")
    exact, dense_time = _timed(lambda: F.scaled_dot_product_attention(q, k, v))
    print(f"exact SDPA: {dense_time * 1e3:8.1f} ms\n")
    print(f"{'mode':40s} {'target':>6s} {'density':>8s} {'rel.err':>8s} {'warm ms':>8s}")
    base = SvgEarConfig(num_q_clusters=64, num_k_clusters=256, min_seq_len=0, kmeans_iters_init=20)
    for density in args.densities:
        for name, mode in MODES.items():
            cfg = base.replace(budget=density, **mode)
            run = functools.partial(svg_ear_attention, q, k, v, cfg, state=SvgEarState(), return_stats=True)
            (out, stats), seconds = _timed(run)
            error = float((out - exact).norm() / exact.norm())
            print(f"{name:40s} {density:6.0%} {stats['density']:8.1%} {error:8.4f} {seconds * 1e3:8.1f}")
        print()
    print("Lower relative error at equal density is better.")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m svg_ear_compile.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["clip", "modes"], default="clip")
    parser.add_argument("--class-index", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=0.2, help="density of the sparse run (default 0.2)")
    parser.add_argument("--steps", type=int, default=None, help="Euler steps (CPU: 10; GPU: the checkpoint's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (CPU: 1 = none)")
    parser.add_argument("--q-clusters", type=int, default=None, help="query clusters (CPU: 64; GPU: the config's)")
    parser.add_argument("--k-clusters", type=int, default=None, help="key clusters (CPU: 256; GPU: the config's)")
    parser.add_argument("--min-seq-len", type=int, default=None, help="shorter attention stays exact")
    parser.add_argument("--dense-above", type=float, default=None, help="exact attention above this timestep")
    parser.add_argument("--clip", type=_parse_clip, default=None,
                        help="FxHxW (default: the fixture's 8x48x96 on a CPU, its long 16x96x192 on a GPU)")
    parser.add_argument("--fixture", default=None, help="checkpoint folder (default: the shipped fixture)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", default="demo_out", help="folder for strips.png and side_by_side.gif")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="--part modes")
    args = parser.parse_args(argv)
    if args.part == "modes":
        modes_demo(args)
        return None
    return clip_demo(args)


if __name__ == "__main__":
    main()
