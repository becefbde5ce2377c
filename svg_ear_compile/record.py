"""``record()``: what the SVG-EAR op did at run time, per layer and per call (denoising step).

    >>> import torch, svg_ear_compile
    >>> q = k = v = torch.randn(1, 2, 256, 32)
    >>> cfg = svg_ear_compile.SvgEarConfig(num_q_clusters=8, num_k_clusters=32, min_seq_len=0, budget=0.25)
    >>> with svg_ear_compile.record() as rec:
    ...     _ = torch.ops.svg_ear.attention(q, k, v, cfg.to_yaml(), 0)
    >>> [(r.layer, r.step) for r in rec.records]
    [(0, 0)]

Recording adds one device synchronisation per call (to time it); outside ``record()`` nothing is kept.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AttentionRecord:
    layer: int
    step: int
    seq_len: int
    density: float
    dense: bool
    milliseconds: float
    reused: bool = False  # reused a kept routing (``SvgEarConfig.refresh_every``): no k-means, probe or routing
    cold: bool = False  # full k-means from scratch: the layer's first sparse call of a video


@dataclass
class Recording:
    records: list[AttentionRecord] = field(default_factory=list)

    def add(self, layer: int, seq_len: int, density: float, dense: bool, milliseconds: float,
            reused: bool = False, cold: bool = False) -> None:
        step = sum(1 for r in self.records if r.layer == layer)
        self.records.append(AttentionRecord(layer, step, seq_len, density, dense, milliseconds, reused, cold))

    def mean_density(self) -> float:
        """Density over all recorded calls, each weighted equally (dense calls count as 1)."""
        return sum(r.density for r in self.records) / max(len(self.records), 1)

    def layer_table(self) -> str:
        """One row per layer: calls, how many ran exact (warm-up, dense layer), reused a kept routing or
        started cold (full k-means: once per video and layer), mean density, total op time."""
        by_layer: dict[int, list[AttentionRecord]] = {}
        for r in self.records:
            by_layer.setdefault(r.layer, []).append(r)
        lines = [f"{'layer':>5s} {'calls':>5s} {'exact':>5s} {'reused':>6s} {'cold':>4s} {'density':>8s} {'ms':>9s}"]
        for layer, calls in sorted(by_layer.items()):
            density = sum(r.density for r in calls) / len(calls)
            milliseconds = sum(r.milliseconds for r in calls)
            lines.append(f"{layer:5d} {len(calls):5d} {sum(r.dense for r in calls):5d} "
                         f"{sum(r.reused for r in calls):6d} {sum(r.cold for r in calls):4d} {density:8.1%} "
                         f"{milliseconds:9.1f}")
        return "\n".join(lines)

    def table(self) -> str:
        lines = [f"{'layer':>5s} {'step':>4s} {'S':>7s} {'density':>8s} {'ms':>9s}"]
        lines += [f"{r.layer:5d} {r.step:4d} {r.seq_len:7d} {r.density:8.1%} {r.milliseconds:9.2f}"
                  + ("  (exact)" if r.dense else "  (reused routing)" if r.reused else "  (cold start)" if r.cold
                     else "") for r in self.records]
        return "\n".join(lines)


_active: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("svg_ear_recording", default=None)


def active_recording() -> Recording | None:
    return _active.get()


@contextlib.contextmanager
def record() -> Iterator[Recording]:
    """Collect an :class:`AttentionRecord` for every SVG-EAR op call inside the block."""
    recording = Recording()
    token = _active.set(recording)
    try:
        yield recording
    finally:
        _active.reset(token)
