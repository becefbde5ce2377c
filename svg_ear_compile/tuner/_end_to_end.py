"""The end-to-end check: the whole denoising run with the tuned config vs the dense run, same seeds.

The sparse run compiles the model under Dynamo with the ``svg_ear`` rewrite (no Inductor, so the dense
and sparse runs differ only in attention); its final latents are compared with the dense finals of the
calibration capture. Both runs are timed on the first seed, side by side in this process: the median of
three runs on a GPU (one on a CPU), each from a fresh centroid cache (CUDA graphs captured in the first
run are replayed by the others, as in a server's later videos).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .. import ops
from ..backend import rewrite_graph
from ..config import SvgEarConfig
from ._calibration import CalibrationSet
from ._model import Guidance, TuneModel, denoise
from ._objective import psnr


@dataclass(frozen=True)
class EndToEnd:
    psnr_db: float
    dense_ms: float
    sparse_ms: float

    @property
    def speedup(self) -> float:
        return self.dense_ms / self.sparse_ms if self.sparse_ms > 0 else float("nan")


def compiled(tune_model: TuneModel, config: SvgEarConfig | None) -> Callable[..., Any]:
    """The model under Dynamo (Dynamo's caches reset first), its attention rewritten under ``config``, or
    left exact when ``config`` is None; no Inductor, so runs differ only in attention."""

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        if config is not None:
            rewrite_graph(gm, config.to_dict())
        return gm.forward

    torch._dynamo.reset()
    return torch.compile(tune_model.model, backend=backend)


def final_psnr(finals: list[torch.Tensor], dense_finals: list[torch.Tensor]) -> float:
    """PSNR of final latents against the dense run's, over all seeds: one squared error summed over every
    element, and the widest value range of the dense finals."""
    squared = sum(float((f.double() - d.double()).pow(2).sum()) for f, d in zip(finals, dense_finals, strict=True))
    count = sum(d.numel() for d in dense_finals)
    data_range = max(float(d.max() - d.min()) for d in dense_finals)
    return psnr(squared / count, data_range)


def _timed(forward: Callable[..., Any], inputs: dict[str, Any], steps: int,
           guidance: Guidance | None) -> tuple[torch.Tensor, float]:
    """The first run's output and the median time of the runs (3 on a GPU, 1 on a CPU)."""
    device = inputs["hidden_states"].device
    outputs, times = [], []
    for _ in range(3 if device.type == "cuda" else 1):
        ops.reset_centroid_caches()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        outputs.append(denoise(forward, inputs, steps, guidance=guidance))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return outputs[0], statistics.median(times)


def check(tune_model: TuneModel, config: SvgEarConfig, calibration: CalibrationSet, *, steps: int,
          conditions: list[dict[str, Any]] | None = None, dense_ms: float | None = None,
          guidance: Guidance | None = None, timed: bool = True) -> EndToEnd:
    """Final-latent PSNR of ``config`` vs dense over the calibration seeds, and both run times (the
    dense run is timed only when ``dense_ms`` does not give its time already); ``guidance`` as the
    calibration ran. ``timed=False`` runs each seed once and reports the sparse time as NaN (a check
    whose PSNR alone decides: a third of the runs)."""
    seeds = calibration.manifest["seeds"]
    sparse = compiled(tune_model, config)
    finals, dense_finals, sparse_ms = [], [], math.nan
    for index, seed in enumerate(seeds):
        condition = conditions[index % len(conditions)] if conditions else None
        inputs = tune_model.inputs_for(seed, condition)
        if index == 0 and timed:  # a one-step warm-up first, so compile time is not timed
            denoise(sparse, inputs, 1, guidance=guidance)
            final, sparse_ms = _timed(sparse, inputs, steps, guidance)
        else:
            ops.reset_centroid_caches()
            final = denoise(sparse, inputs, steps, guidance=guidance)
        finals.append(final.detach().cpu())
        dense_finals.append(calibration.dense_final(seed))
    if dense_ms is None:
        dense_forward = compiled(tune_model, None)
        first = tune_model.inputs_for(seeds[0], conditions[0] if conditions else None)
        denoise(dense_forward, first, 1, guidance=guidance)
        _, dense_ms = _timed(dense_forward, first, steps, guidance)
    ops.reset_centroid_caches(keep_graphs=False)  # this config's graphs: the next check runs another
    return EndToEnd(final_psnr(finals, dense_finals), dense_ms, sparse_ms)
