"""Where a warm SVG-EAR op call spends its time: GPU kernels vs the host launching them.

Runs warm calls of the op (Triton path) under ``torch.profiler`` and prints, per call, the wall time,
the summed GPU kernel time, the number of kernel launches and the GPU idle time between them, then
the kernels by total GPU time. A wall time far above the kernel time means the host is the limit
(launch overhead), not the GPU.

    python benchmarks/profile_op.py                        # Wan2.1-1.3B 480p shape, 20% density
    python benchmarks/profile_op.py --eager                # the same, kernels launched one by one
    python benchmarks/profile_op.py --graph                # every warm call one CUDA graph (cuda_graph=True)
    python benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --trace $OUT/op.json
    python benchmarks/profile_op.py --refresh-every 2      # also: fresh calls vs calls reusing the routing
    python benchmarks/profile_op.py --set exact_centroids=64   # any other SvgEarConfig field
    python benchmarks/profile_op.py --stages               # also the GPU time of each pipeline stage
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from _timing import add_config_set_argument, add_video_shape_arguments, video_inputs
from torch.profiler import ProfilerActivity, profile, record_function

from svg_ear_compile import SvgEarConfig, SvgEarState, graphs
from svg_ear_compile.pipeline import run_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_video_shape_arguments(parser)
    parser.add_argument("--density", type=float, default=0.2)
    parser.add_argument("--q-clusters", type=int, default=256)
    parser.add_argument("--k-clusters", type=int, default=1024)
    launch = parser.add_mutually_exclusive_group()
    launch.add_argument("--eager", action="store_true",
                        help="launch kernels one by one (cuda_graph=False; default: the config's \"auto\")")
    launch.add_argument("--graph", action="store_true",
                        help="replay a CUDA graph for every warm call, reusing ones too, at any size (cuda_graph=True)")
    parser.add_argument("--refresh-every", type=int, default=1,
                        help="SvgEarConfig.refresh_every; above 1 the profile mixes fresh and reusing calls, and "
                             "each kind is also timed on its own")
    parser.add_argument("--calls", type=int, default=3, help="profiled warm calls")
    parser.add_argument("--top", type=int, default=25, help="kernels listed")
    parser.add_argument("--trace", help="also write a Chrome trace to this file")
    parser.add_argument("--stages", action="store_true",
                        help="also attribute the GPU time of --calls eager calls to the pipeline's stages (with "
                             "refresh_every > 1 the calls mix fresh and reusing ones as they come)")
    add_config_set_argument(parser)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("profile_op.py profiles the Triton path: it needs a CUDA device")

    device = torch.device("cuda")
    q, k, v = video_inputs(args, dtype=torch.bfloat16, device=device)
    cuda_graph = False if args.eager else (True if args.graph else "auto")
    config = SvgEarConfig(num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters, budget=args.density,
                          min_seq_len=0, impl="triton", cuda_graph=cuda_graph,
                          refresh_every=args.refresh_every).replace(**dict(args.set))
    state = SvgEarState()
    for _ in range(2 + args.refresh_every):  # cold call, then warm ones (captures): compilation out of the way
        run_pipeline(q, k, v, config, state)
    torch.cuda.synchronize()

    walls = []
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.calls):
            start = time.perf_counter()
            run_pipeline(q, k, v, config, state)
            torch.cuda.synchronize()
            walls.append((time.perf_counter() - start) * 1e3)
    if args.trace:
        prof.export_chrome_trace(args.trace)

    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    gpu_us = sum(e.device_time for e in kernels)
    spans = sorted((e.time_range.start, e.time_range.end) for e in kernels)
    busy_us, cursor = 0.0, float("-inf")
    for start, end in spans:
        busy_us += max(0.0, end - max(start, cursor))
        cursor = max(cursor, end)
    mode = _launch_mode(config, q.shape[0] * q.shape[1] * q.shape[2], args.refresh_every)
    print(f"shape H={args.heads} S={q.shape[2]} D={args.head_dim}, density {args.density}, "
          f"{mode}, {torch.cuda.get_device_name()}"
          + "".join(f", {name}={value}" for name, value in args.set))
    print(f"wall per call ms: {', '.join(f'{w:.2f}' for w in walls)} (profiler overhead included)")
    print(f"per call: {len(kernels) / args.calls:.0f} kernel launches, "
          f"GPU kernel time {gpu_us / args.calls / 1e3:.2f} ms, GPU busy {busy_us / args.calls / 1e3:.2f} ms")
    by_name: dict[str, list[float]] = defaultdict(list)
    for event in kernels:
        by_name[event.name[:90]].append(event.device_time)
    print(f"\n{'kernel':<92}{'calls':>6}{'ms/op call':>12}")
    for name, times in sorted(by_name.items(), key=lambda item: -sum(item[1]))[:args.top]:
        print(f"{name:<92}{len(times) // args.calls:>6}{sum(times) / args.calls / 1e3:>12.3f}")

    if args.stages:
        _print_stages(q, k, v, config, state, args.calls)

    # Without the profiler: the host's own time to issue one call vs the call's time on the device.
    torch.cuda.synchronize()
    start = time.perf_counter()
    run_pipeline(q, k, v, config, state)
    issue_ms = (time.perf_counter() - start) * 1e3
    torch.cuda.synchronize()
    total_ms = (time.perf_counter() - start) * 1e3
    print(f"\nunprofiled call: host issues it in {issue_ms:.2f} ms, done after {total_ms:.2f} ms")
    if args.refresh_every > 1:
        by_kind: dict[bool, list[float]] = defaultdict(list)
        for _ in range(5 * args.refresh_every):
            torch.cuda.synchronize()
            start = time.perf_counter()
            _, stats = run_pipeline(q, k, v, config, state)
            torch.cuda.synchronize()
            by_kind[stats["reused_routing"]].append((time.perf_counter() - start) * 1e3)
        fresh, reusing = (statistics.median(by_kind[kind]) for kind in (False, True))
        print(f"unprofiled, median of {len(by_kind[False])} / {len(by_kind[True])}: fresh call {fresh:.2f} ms, "
              f"call reusing the routing {reusing:.2f} ms; mean per call at refresh_every={args.refresh_every}: "
              f"{(fresh + (args.refresh_every - 1) * reusing) / args.refresh_every:.2f} ms")


_STAGE = "svg_ear::"


def _print_stages(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, config: SvgEarConfig, state: SvgEarState,
                  calls: int) -> None:
    """GPU kernel time per pipeline stage (eager launches: a stage timer turns graphs off), with each
    stage's costliest kernels. A kernel belongs to the innermost stage whose range holds its launch
    (the CUDA runtime call with the kernel's correlation id)."""
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            run_pipeline(q, k, v, config, state, timer=lambda stage: record_function(_STAGE + stage))
            torch.cuda.synchronize()
    events = prof.events()
    cpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    stages = sorted(((e.time_range.start, e.time_range.end, e.name.removeprefix(_STAGE)) for e in cpu
                     if e.name.startswith(_STAGE)), key=lambda r: r[1] - r[0])  # innermost first
    launches = {e.id: e.time_range.start for e in cpu if e.name.startswith("cu")}  # CUDA runtime calls
    per_stage: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # the stage ranges also show on the GPU's timeline (as annotations): those are not kernels
    for kernel in (e for e in events if e.device_type == torch.autograd.DeviceType.CUDA
                   and not e.name.startswith(_STAGE)):
        launched = launches.get(kernel.id)
        stage = next((name for start, end, name in stages if launched is not None and start <= launched <= end),
                     "(outside the stages)")
        per_stage[stage][kernel.name[:70]].append(kernel.device_time)
    print(f"\nGPU time per stage, eager, mean of {calls} calls (ms per call; kernels: launches per call, ms):")
    totals = {stage: sum(map(sum, names.values())) for stage, names in per_stage.items()}
    for stage, total in sorted(totals.items(), key=lambda item: -item[1]):
        names = sorted(per_stage[stage].items(), key=lambda item: -sum(item[1]))
        count = sum(len(times) for _, times in names)
        print(f"  {stage:<22}{total / calls / 1e3:>8.3f} ms, {count / calls:.0f} launches")
        for name, times in names[:4]:
            print(f"      {name:<72}{len(times) / calls:>5.0f}{sum(times) / calls / 1e3:>9.3f}")


def _launch_mode(config: SvgEarConfig, rows: int, refresh_every: int) -> str:
    """How warm calls of ``rows`` query rows run (``graphs.wanted``), fresh calls and calls reusing a routing apart."""
    modes = {reusing: "CUDA graph replay" if graphs.wanted(config.cuda_graph, rows, reusing) else "eager launches"
             for reusing in (False, True)}
    if modes[False] == modes[True] or refresh_every == 1:
        return modes[False]
    return f"fresh calls: {modes[False]}, calls reusing the routing: {modes[True]}"


if __name__ == "__main__":
    main()
