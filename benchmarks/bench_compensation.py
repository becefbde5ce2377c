"""The compensation's forms side by side on one attention call: none, every centroid, ``exact_centroids`` T.

For each key-cluster count and budget every form runs the same routing (same k-means from the same
start, same block map: the density column shows it), so only the compensation differs. Per form:
warm call time (on a GPU the op's CUDA graph replay, median of ``--repeats``), the sparse-attention
kernel's and the tail-moment kernel's device time (profiler, GPU only), and the attention output's
PSNR and relative error against float32 SDPA on the same inputs. Dense SDPA in the inputs' dtype
(cuDNN where the build allows) is the time baseline.

    python benchmarks/bench_compensation.py --heads 40 --frames 21 --height 45 --width 80 --json $OUT/comp.json
    python benchmarks/bench_compensation.py --frames 2 --height 8 --width 16 --heads 2 --head-dim 32 \\
        --dtype float32 --k-clusters 24 --q-clusters 8 --exact 4 --budgets 0.2   # CPU, the output format only
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import torch
import torch.nn.functional as F
from _timing import (
    add_config_set_argument,
    add_video_shape_arguments,
    describe_device,
    kernel_breakdown,
    markdown_table,
    median_ms,
    video_inputs,
    write_json,
)

from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
from svg_ear_compile.tuner._objective import output_psnr


def forms(exact: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """(name, config fields) of each compensation form compared."""
    return [("none", dict(compensation=False)), ("every centroid", {}),
            *((f"exact_centroids={t}", dict(exact_centroids=t)) for t in exact)]


def _kernel_ms(call, name: str) -> float | None:
    return sum(ms for kernel, ms, _ in kernel_breakdown(call, calls=2)["kernels"] if name in kernel) or None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_video_shape_arguments(parser)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--q-clusters", type=int, default=128)
    parser.add_argument("--k-clusters", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.03, 0.1])
    parser.add_argument("--exact", type=int, nargs="+", default=[32, 64, 128], help="exact_centroids values")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", help="also write the results to this JSON file")
    add_config_set_argument(parser)
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    q, k, v = video_inputs(args, dtype=dtype, device=device)
    exact = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    dense_ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v), device, args.repeats)[0]
    header = (f"{describe_device(device)}; B=1 H={args.heads} S={q.shape[2]} D={args.head_dim} {args.dtype}; "
              f"QC={args.q_clusters}; dense SDPA {dense_ms:.2f} ms")
    print(header, flush=True)
    results: dict[str, Any] = {"header": header, "dense_ms": dense_ms, "runs": []}
    rows = []
    for num_k, budget in itertools.product(args.k_clusters, args.budgets):
        base = SvgEarConfig(num_q_clusters=args.q_clusters, num_k_clusters=num_k, budget=budget, min_seq_len=0,
                            kmeans_iters=1, kmeans_iters_init=10).replace(**dict(args.set))
        for name, fields in forms(args.exact):
            config = base.replace(**fields)
            state = SvgEarState()
            _, stats = svg_ear_attention(q, k, v, config, state=state, return_stats=True)  # cold: k-means from scratch

            def call(config=config, state=state):
                return svg_ear_attention(q, k, v, config, state=state)

            warm_ms = median_ms(call, device, args.repeats, warmup=2)[0]
            out = call()
            kernels = ((_kernel_ms(call, "_sparse_attention_kernel"), _kernel_ms(call, "_tail_moment_kernel"))
                       if device.type == "cuda" else (None, None))
            run = dict(num_k_clusters=num_k, budget=budget, form=name, density=float(stats["density"]),
                       warm_ms=warm_ms, attention_kernel_ms=kernels[0], tail_moment_ms=kernels[1],
                       psnr_db=output_psnr(exact, out), rel_error=float((out.float() - exact).norm() / exact.norm()))
            results["runs"].append(run)
            write_json(args.json, results, quiet=True)
            rows.append([num_k, f"{budget:g}", name, f"{run['density']:.2%}", f"{warm_ms:.2f}",
                         f"{warm_ms / dense_ms:.3f}", "–" if kernels[0] is None else f"{kernels[0]:.2f}",
                         "–" if kernels[1] is None else f"{kernels[1]:.2f}", f"{run['psnr_db']:.2f}",
                         f"{run['rel_error']:.4f}"])
            print(f"KC {num_k} budget {budget:g} {name}: {warm_ms:.2f} ms, {run['psnr_db']:.2f} dB", flush=True)
    print(markdown_table(["KC", "budget", "compensation", "density", "warm call ms", "x dense", "attention kernel ms",
                          "tail moment ms", "PSNR dB", "rel. error"], rows))
    return results["runs"]


if __name__ == "__main__":
    main()
