"""The per-layer objective: the op's latency per call of a run, constrained to PSNR ≥ the layer's target.

For a candidate override, :class:`LayerEvaluator` runs the SVG-EAR op over the layer's calibration
samples in (seed, step) order with one centroid cache per seed (so later steps are warm-started, as in
a real run), compares each output with exact attention, and times the calls on this device (captured
heads repeated up to the layer's full head count, so the timing sees a full-size call). A run that
calls the layer ``run_calls`` times (its denoising steps, twice that with unbatched guidance) makes one
cold call (k-means from scratch) and ``run_calls − 1`` warm ones, so the latency minimised is the
per-call mean of such a run::

    latency = warm + (cold − warm) / run_calls      (medians of the timed warm and cold calls)
    psnr = 10·log10(range² / mse)   over all samples; range = max − min of the exact outputs (capped at 100 dB)
    constraint = target − psnr      (≤ 0 is feasible; Optuna ≥ 5 ``trial.set_constraint``)
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..attention import svg_ear_attention
from ..config import SvgEarConfig
from ..state import SvgEarState
from ._search_space import SearchSpace

MAX_PSNR = 100.0


def psnr(mse: float, data_range: float) -> float:
    """PSNR in dB of a mean squared error against a signal spanning ``data_range``; exact → 100 dB."""
    if mse <= 0.0 or data_range <= 0.0:
        return MAX_PSNR
    return min(MAX_PSNR, 10.0 * math.log10(data_range**2 / mse))


def output_psnr(reference: torch.Tensor, approx: torch.Tensor) -> float:
    reference, approx = reference.double(), approx.double()
    return psnr(float((reference - approx).pow(2).mean()), float(reference.max() - reference.min()))


def exact_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_rows: int = 1024) -> torch.Tensor:
    """``softmax(q·kᵀ/√d)·v`` in float64, ``chunk_rows`` queries at a time.

    SDPA's float64 path materialises the whole ``S × S`` score matrix (81 GB for two heads at 73,728
    tokens); by chunks the peak is ``heads · chunk_rows · S`` scores.
    """
    q, k, v = (t.double() for t in (q, k, v))
    return torch.cat([F.scaled_dot_product_attention(q[..., start : start + chunk_rows, :], k, v)
                      for start in range(0, q.shape[-2], chunk_rows)], dim=-2)


@dataclass(frozen=True)
class Measurement:
    latency_ms: float  # per call of a run: warm + (cold − warm) / run_calls
    psnr_db: float
    density: float
    warm_ms: float
    cold_ms: float


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LayerEvaluator:
    """Measures candidate configs of one layer on its calibration samples (see the module docstring)."""

    def __init__(self, samples: list[dict[str, Any]], base: SvgEarConfig, *, full_heads: int, run_calls: int,
                 device: torch.device | str = "cpu", repeats: int = 1) -> None:
        if run_calls < 1:
            raise ValueError(f"LayerEvaluator: run_calls={run_calls} must be >= 1")
        self.run_calls = run_calls
        self.device = torch.device(device)
        self.base = base.replace(min_seq_len=0, dense_layers=0, dense_above_timestep=None, layer_overrides={})
        self.repeats = max(1, repeats)
        self.samples = []
        for sample in sorted(samples, key=lambda s: (s["seed"], s["step"])):
            captured = sample["q"].shape[1]
            tensors = [self._expand(sample[t], full_heads) for t in ("q", "k", "v")]
            exact = exact_attention(*(t[:, :captured] for t in tensors)).float()
            self.samples.append({"seed": sample["seed"], "qkv": tensors, "exact": exact, "heads": captured})
        self.data_range = max(float(s["exact"].max() - s["exact"].min()) for s in self.samples)

    def _expand(self, tensor: torch.Tensor, full_heads: int) -> torch.Tensor:
        repeats = -(-full_heads // tensor.shape[1])
        return tensor.to(self.device).repeat(1, repeats, 1, 1)[:, :full_heads].contiguous()

    @functools.cached_property
    def dense_latency_ms(self) -> float:
        """Exact attention's time on these samples (SDPA), measured on first use: a layer's study records
        it, a re-measurement of a chosen config does not need it."""
        times = []
        for sample in self.samples:
            for _ in range(self.repeats + 1):
                _synchronize(self.device)
                start = time.perf_counter()
                F.scaled_dot_product_attention(*sample["qkv"])
                _synchronize(self.device)
                times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times[1:] if len(times) > 1 else times)

    def _run(self, sample: dict[str, Any], config: SvgEarConfig, state: SvgEarState) -> tuple[torch.Tensor, float,
                                                                                               float]:
        _synchronize(self.device)
        start = time.perf_counter()
        out, stats = svg_ear_attention(*sample["qkv"], config, state=state, return_stats=True)
        _synchronize(self.device)
        return out[:, :sample["heads"]].float(), (time.perf_counter() - start) * 1e3, stats["density"]

    def evaluate(self, overrides: dict[str, Any]) -> Measurement:
        """Latency per call of a run (see the module docstring), PSNR and density of ``overrides``
        applied to the base config."""
        config = self.base.replace(**overrides)
        self._run(self.samples[0], config, SvgEarState())  # these settings' first call compiles: not timed
        squared_error, count, times, cold_times, densities = 0.0, 0, [], [], []
        states: dict[int, SvgEarState] = {}
        for sample in self.samples:
            warm = sample["seed"] in states
            state = states.setdefault(sample["seed"], SvgEarState())
            out, milliseconds, density = self._run(sample, config, state)
            squared_error += float((out.double() - sample["exact"].double()).pow(2).sum())
            count += out.numel()
            densities.append(density)
            (times if warm else cold_times).append(milliseconds)
        last = self.samples[-1]
        for _ in range(self.repeats if times else self.repeats + 1):
            times.append(self._run(last, config, states[last["seed"]])[1])
        warm_ms, cold_ms = statistics.median(times), statistics.median(cold_times)
        return Measurement(warm_ms + (cold_ms - warm_ms) / self.run_calls, psnr(squared_error / count, self.data_range),
                           sum(densities) / len(densities), warm_ms, cold_ms)


class LayerObjective:
    """``objective(trial)``: latency to minimise; PSNR below ``target_psnr`` violates the constraint."""

    def __init__(self, evaluator: LayerEvaluator, space: SearchSpace, target_psnr: float) -> None:
        self.evaluator, self.space, self.target_psnr = evaluator, space, target_psnr

    def __call__(self, trial: Any) -> float:
        measured = self.evaluator.evaluate(self.space.suggest(trial))
        trial.set_user_attr("psnr_db", measured.psnr_db)
        trial.set_user_attr("density", measured.density)
        trial.set_user_attr("warm_ms", measured.warm_ms)
        trial.set_user_attr("cold_ms", measured.cold_ms)
        trial.set_user_attr("target_psnr_db", self.target_psnr)
        trial.set_constraint("psnr", self.target_psnr - measured.psnr_db)
        return measured.latency_ms
