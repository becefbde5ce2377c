"""Timing, reporting and command-line helpers shared by the benchmark scripts.

On a GPU every call is timed with a pair of CUDA events (read after one synchronise at the end, so
timing adds no host round trip between calls); on a CPU with ``time.perf_counter``. First calls
(which include compilation) are timed on the wall clock with a synchronise on each side.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_ms(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    """``fn()``'s result and its wall time in ms, the device synchronised before and after (compile + run)."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, (time.perf_counter() - start) * 1e3


def median_ms(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> tuple[float, list[float]]:
    """Median and all times in ms of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: expected at least 1")
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(repeats)]
        synchronize(device)
        for start, end in events:
            start.record()
            fn()
            end.record()
        synchronize(device)
        times = [start.elapsed_time(end) for start, end in events]
    else:
        times = [wall_ms(fn, device)[1] for _ in range(repeats)]
    return statistics.median(times), times


def kernel_ms(fn: Callable[[], Any], name: str, calls: int = 5) -> float:
    """Device time in ms per call of the CUDA kernels whose name contains ``name``, under
    ``torch.profiler`` (:func:`kernel_breakdown`): a kernel's own time, without the launches around it."""
    times = [ms for kernel, ms, _ in kernel_breakdown(fn, calls)["kernels"] if name in kernel]
    if not times:
        raise RuntimeError(f"kernel_ms: no CUDA kernel named like {name!r} ran")
    return sum(times)


# Kernel families of a profiled forward, first match wins (names as CUPTI reports them).
KERNEL_FAMILIES = (
    ("SVG-EAR sparse attention", ("_sparse_attention_kernel",)),
    ("SVG-EAR k-means assignment", ("_assign_kernel",)),
    ("SVG-EAR error probe", ("_probe_kernel",)),
    ("SVG-EAR cluster means, permutation", ("_segment_mean_kernel",)),
    ("dense attention (cuDNN/flash)", ("cudnn", "fmha", "flash", "attention")),
    ("GEMM (cuBLAS/CUTLASS)", ("gemm", "nvjet", "xmma", "cutlass", "sm90_")),
    ("Inductor fused (triton_*)", ("triton_",)),
    ("sort, scan, index (torch)", ("sort", "scan", "radix", "index", "scatter", "gather", "cub")),
    ("copies, fills (torch)", ("memcpy", "memset", "copy", "fill", "elementwise", "vectorized", "reduce")),
)


def kernel_family(name: str) -> str:
    lowered = name.lower()
    return next((family for family, marks in KERNEL_FAMILIES if any(mark in lowered for mark in marks)), "other")


def kernel_breakdown(fn: Callable[[], Any], calls: int = 2) -> dict[str, Any]:
    """Where one call of ``fn`` spends device time: per kernel family and per kernel name, ms per call
    (``calls`` profiled calls after one warm-up; an even count covers fresh and reusing calls alike at
    ``refresh_every=2``), the wall time per call and the share of it the device spent in kernels."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - start) * 1e3 / calls
    families: dict[str, float] = {}
    names: dict[str, list[float]] = {}
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CUDA:
            continue
        ms = event.device_time / 1e3 / calls
        family = kernel_family(event.name)
        families[family] = families.get(family, 0.0) + ms
        entry = names.setdefault(event.name, [0.0, 0])
        entry[0] += ms
        entry[1] += 1
    busy = sum(families.values())
    return dict(wall_ms=wall, kernel_ms=busy,
                families=sorted(families.items(), key=lambda item: -item[1]),
                kernels=sorted(((name, ms, count / calls) for name, (ms, count) in names.items()),
                               key=lambda item: -item[1]))


def breakdown_table(breakdown: dict[str, Any], top: int = 15) -> str:
    """:func:`kernel_breakdown` as two markdown tables: families, then the ``top`` kernels."""
    wall = breakdown["wall_ms"]
    rows = [*breakdown["families"], ("(all kernels)", breakdown["kernel_ms"])]
    families = markdown_table(["kernel family", "ms per call", "share of wall"],
                              [[family, f"{ms:.1f}", f"{ms / wall:.1%}"] for family, ms in rows])
    kernels = markdown_table(["kernel", "launches per call", "ms per call"],
                             [[name[:90], f"{count:g}", f"{ms:.2f}"] for name, ms, count in breakdown["kernels"][:top]])
    return f"wall per call (profiled) {wall:.1f} ms\n\n{families}\n\n{kernels}\n"


def describe_device(device: torch.device) -> str:
    """``"<device name>; torch <version>; <date>"`` for the header of a results table."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{name}; torch {torch.__version__}; {datetime.date.today()}"


def free_memory(device: torch.device) -> None:
    """Collect garbage and return cached device memory (call after dropping the last reference to a model)."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | None, results: dict, quiet: bool = False) -> None:
    """Write ``results`` to ``path`` (nothing when ``path`` is None); benchmarks call it after every
    setting, so a run stopped by a time limit still leaves what it measured."""
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2, default=str)
        if not quiet:
            print(f"wrote {path}")


def add_video_shape_arguments(parser: argparse.ArgumentParser, heads: int = 12) -> None:
    """``--batch --heads --frames --height --width --head-dim``: one attention call's video shape, by
    default one Wan2.1-1.3B 480p latent (21 × 30 × 52 = 32,760 tokens, head dim 128); ``--batch 2`` is a
    guidance batch (with ``batch_shares_routing``, the fixture's tuning runs)."""
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=heads)
    parser.add_argument("--frames", type=int, default=21)
    parser.add_argument("--height", type=int, default=30)
    parser.add_argument("--width", type=int, default=52)
    parser.add_argument("--head-dim", type=int, default=128)


def video_inputs(args: argparse.Namespace, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q, K, V ``(batch, heads, frames·height·width, head_dim)`` of the shape :func:`add_video_shape_arguments`
    parsed into ``args`` (:func:`svg_ear_compile.workloads.video_qkv`; ``kwargs``: its dtype and device)."""
    from svg_ear_compile.workloads import video_qkv

    return video_qkv(args.batch, args.heads, args.frames, args.height, args.width, args.head_dim, **kwargs)


def config_field(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` of a ``--set`` flag: a per-layer-overridable SvgEarConfig field and its value read
    as YAML (``1``, ``0.5``, ``true``, ``null``); an argparse type."""
    import yaml

    from svg_ear_compile.config import overridable_fields

    name, sep, value = text.partition("=")
    if not sep or name not in overridable_fields():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE with FIELD one of {', '.join(overridable_fields())}; "
                                         f"got {text!r}")
    return name, yaml.safe_load(value)


def add_config_set_argument(parser: argparse.ArgumentParser) -> None:
    """``--set FIELD=VALUE`` (repeatable): any SvgEarConfig field for every sparse run; a list of pairs."""
    parser.add_argument("--set", action="append", type=config_field, default=[], metavar="FIELD=VALUE",
                        help="any other SvgEarConfig field for every svg_ear run, e.g. --set kmeans_iters=1 "
                             "(repeatable; VALUE is read as YAML: 1, 0.5, true, null)")


def tile_spec(text: str) -> tuple[int, ...]:
    """``BLOCK_MxBLOCK_NxWARPSxSTAGES[xREMAINDER_M]`` (e.g. ``128x64x8x3``) as a tuple; an argparse type."""
    try:
        values = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        values = ()
    if len(values) not in (4, 5):
        raise argparse.ArgumentTypeError("expected BLOCK_MxBLOCK_NxWARPSxSTAGES[xREMAINDER_M] (e.g. 128x64x8x3 or "
                                         f"128x128x8x2x64), got {text!r}")
    return values
