"""The whole SVG-EAR op, per call and per stage, for each implementation; error vs exact attention.

``--impls reference triton`` (the default on a GPU) runs the torch reference path (the oracle) and
the Triton path side by side on the same inputs. For each density, mode and implementation it runs
one cold call (k-means from scratch, ``kmeans_iters_init``) and then times warm calls
(``kmeans_iters`` from the cached centroids), as in a denoising loop: once with a timer around every
stage (kernels launched one by one), once without (on a GPU: the CUDA graph replay the op uses).
Dense SDPA (cuDNN where the build allows it) on the same inputs is the baseline; every stage is also
shown as a share of it.

    python benchmarks/bench_op.py --json $OUT/op.json                 # Wan2.1-1.3B 480p: H=12, S=32,760, D=128, bf16
    python benchmarks/bench_op.py --heads 40 --frames 21 --height 45 --width 80   # Wan2.1-14B 720p: S=75,600
    python benchmarks/bench_op.py --frames 4 --height 16 --width 16 --heads 2 --dtype float32 --impls reference  # CPU
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import itertools
import json
import statistics
import time
from collections import defaultdict

import torch
import torch.nn.functional as F
from _timing import add_video_shape_arguments, video_inputs, wall_ms

from svg_ear_compile import SvgEarConfig, SvgEarState
from svg_ear_compile.pipeline import run_pipeline

MODES = {"ear": dict(routing="error_aware", compensation=True), "svg2": dict(routing="attention", compensation=False)}


class StageTimer:
    """Wall time per stage: CUDA events on a GPU (read after one synchronise), perf_counter on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.records: list[tuple[str, object, object]] = []

    @contextlib.contextmanager
    def __call__(self, stage: str):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
        else:
            start = time.perf_counter()
            yield
            end = time.perf_counter()
        self.records.append((stage, start, end))

    def milliseconds(self) -> dict[str, float]:
        if self.cuda:
            torch.cuda.synchronize()
        totals: dict[str, float] = defaultdict(float)
        for stage, start, end in self.records:
            totals[stage] += start.elapsed_time(end) if self.cuda else (end - start) * 1e3
        return dict(totals)


def time_dense(q, k, v, repeats: int) -> float:
    """Median milliseconds of SDPA (cuDNN where the build and inputs allow it, as a user gets it)."""
    times = [wall_ms(lambda: F.scaled_dot_product_attention(q, k, v), q.device)[1] for _ in range(repeats + 2)]
    return statistics.median(times[2:])


def time_untimed(q, k, v, config: SvgEarConfig, state: SvgEarState, repeats: int) -> tuple[float, float]:
    """Milliseconds of warm calls without the stage timer, as the op runs in a model: the first call
    and the median of ``repeats`` more. On a GPU the Triton path's first such call captures its CUDA
    graph (``config.cuda_graph``) and the others replay it."""
    times = [wall_ms(lambda: run_pipeline(q, k, v, config, state), q.device)[1] for _ in range(repeats + 1)]
    return times[0], statistics.median(times[1:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_video_shape_arguments(parser)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    parser.add_argument("--q-clusters", type=int, default=256)
    parser.add_argument("--k-clusters", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impls", nargs="+", choices=["reference", "triton"],
                        default=["reference", "triton"] if torch.cuda.is_available() else ["reference"])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    q, k, v = video_inputs(args, dtype=dtype, device=device)
    exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    header = (
        f"device: {name}; torch {torch.__version__}; {datetime.date.today()}; B=1 H={args.heads} S={q.shape[2]} "
        f"D={args.head_dim} {args.dtype}; QC={args.q_clusters} KC={args.k_clusters}; impls {args.impls}"
    )
    print(header)
    dense_ms = time_dense(q, k, v, args.repeats)
    dense_error = float((F.scaled_dot_product_attention(q, k, v).float() - exact).norm() / exact.norm())
    print(f"dense SDPA: {dense_ms:.2f} ms (rel. error of {args.dtype} SDPA vs fp32: {dense_error:.2e})\n")

    results = {"header": header, "dense_ms": dense_ms, "runs": []}
    stages = ["kmeans_q", "kmeans_k", "permute", "stats", "mass", "probe", "routing", "plan", "attention", "unpermute"]
    print("| impl | mode | target | density | rel. error | warm call ms | x dense | no-timer call ms | x dense | "
          "first no-timer call ms (graph capture) | cold call ms | " + " | ".join(stages) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(stages))
    for density, impl in itertools.product(args.densities, args.impls):
        for mode, settings in MODES.items():
            cfg = SvgEarConfig(num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters, min_seq_len=0,
                               budget=density, impl=impl, **settings)
            state = SvgEarState()
            cold_ms = wall_ms(functools.partial(run_pipeline, q, k, v, cfg, state, StageTimer(device)), device)[1]
            warm, per_stage = [], []
            for _ in range(args.repeats):
                timer = StageTimer(device)
                call = functools.partial(run_pipeline, q, k, v, cfg, state, timer)
                (out, stats), milliseconds = wall_ms(call, device)
                warm.append(milliseconds)
                per_stage.append(timer.milliseconds())
            capture_ms, graphed_ms = (time_untimed(q, k, v, cfg, state, args.repeats) if device.type == "cuda"
                                      else (None, None))
            error = float((out.float() - exact).norm() / exact.norm())
            stats["density"] = float(stats["density"])
            stage_ms = {s: statistics.median(p.get(s, 0.0) for p in per_stage) for s in stages}
            warm_ms = statistics.median(warm)
            graphed = ("– | – | –" if graphed_ms is None
                       else f"{graphed_ms:.2f} | {graphed_ms / dense_ms:.2f} | {capture_ms:.1f}")
            print(f"| {impl} | {mode} | {density:.0%} | {stats['density']:.1%} | {error:.4f} | {warm_ms:.2f} | "
                  f"{warm_ms / dense_ms:.2f} | {graphed} | {cold_ms:.1f} | "
                  + " | ".join(f"{stage_ms[s]:.2f} ({stage_ms[s] / dense_ms:.0%})" for s in stages) + " |")
            results["runs"].append(dict(impl=impl, mode=mode, target=density, density=stats["density"],
                                        rel_error=error, warm_ms=warm_ms, untimed_ms=graphed_ms,
                                        first_untimed_ms=capture_ms, cold_ms=cold_ms, stages_ms=stage_ms))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
