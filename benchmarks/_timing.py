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
    ``torch.profiler`` (one warm-up call first): a kernel's own time, without the launches around it."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    times = [e.device_time for e in prof.events()
             if e.device_type == torch.autograd.DeviceType.CUDA and name in e.name]
    if not times:
        raise RuntimeError(f"kernel_ms: no CUDA kernel named like {name!r} ran")
    return sum(times) / calls / 1e3


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
    """``--heads --frames --height --width --head-dim``: one attention call's video shape, by default
    the Wan2.1-1.3B 480p latent (21 × 30 × 52 = 32,760 tokens, head dim 128)."""
    parser.add_argument("--heads", type=int, default=heads)
    parser.add_argument("--frames", type=int, default=21)
    parser.add_argument("--height", type=int, default=30)
    parser.add_argument("--width", type=int, default=52)
    parser.add_argument("--head-dim", type=int, default=128)
