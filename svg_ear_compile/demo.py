"""``make demo``: SVG-EAR against exact attention on a structured, video-like workload.

Runs every routing/compensation mode at 10/20/30% density on one attention call of a moving,
panned synthetic clip and prints density, relative error against exact attention and the time of
a warm call (median of 3; centroids cached, as from the second denoising step on).

    python -m svg_ear_compile.demo --frames 8 --height 24 --width 32 --heads 4
"""

from __future__ import annotations

import argparse
import functools
import time

import torch
import torch.nn.functional as F

from . import SvgEarConfig, SvgEarState, svg_ear_attention
from .workloads import video_qkv

MODES = {
    "SVG-EAR (error-aware + compensation)": dict(routing="error_aware", compensation=True),
    "SVG2 (top mass, dropped)": dict(routing="attention", compensation=False),
    "compensation only (top mass)": dict(routing="attention", compensation=True),
    "error-aware only (dropped)": dict(routing="error_aware", compensation=False),
}


def _timed(fn, repeats: int = 3):
    """Result of ``fn`` and the median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--height", type=int, default=24)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    q, k, v = video_qkv(1, args.heads, args.frames, args.height, args.width, args.head_dim, device=args.device)
    seq_len = q.shape[2]
    print(f"workload: B=1 H={args.heads} S={seq_len} ({args.frames}x{args.height}x{args.width} tokens) "
          f"D={args.head_dim} float32 on {args.device}; reference (torch) path")
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
    print("Lower relative error at equal density is better. Times are the unoptimised reference path;\n"
          "the Triton kernels (a later issue) are what turn density into speed.")


if __name__ == "__main__":
    main()
