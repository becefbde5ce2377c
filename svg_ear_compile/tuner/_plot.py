"""Pareto plots of the search: latency vs PSNR per layer (every trial, the front, the choice) and the whole
model (the end-to-end rounds against the dense run). matplotlib loads only when a plot is drawn."""

from __future__ import annotations

import io
import math
import pathlib
from typing import Any

from ..profiles import write_atomic


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (latency, psnr) points no other point beats on both (lower latency, higher PSNR), by latency.

    >>> pareto_front([(1.0, 30.0), (2.0, 29.0), (2.0, 35.0), (3.0, 34.0)])
    [(1.0, 30.0), (2.0, 35.0)]
    """
    front, best = [], -math.inf
    for latency, quality in sorted(points, key=lambda p: (p[0], -p[1])):
        if quality > best:
            front.append((latency, quality))
            best = quality
    return front


def write_pareto_png(path: pathlib.Path, layers: list[Any], rounds: list[dict[str, float]], dense_ms: float,
                     target_psnr_db: float, uniform: list[dict[str, float]] = ()) -> pathlib.Path:
    """One panel per layer plus one for the model (with the uniform-config runs, if any); written
    atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(layers) + 1
    columns = min(4, panels)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    flat = axes.ravel()
    for axis, choice in zip(flat, layers, strict=False):
        feasible = [p for p in choice.trial_points if p[1] >= choice.target_psnr_db]
        other = [p for p in choice.trial_points if p[1] < choice.target_psnr_db]
        for group, colour, label in ((other, "tab:gray", "below target"), (feasible, "tab:blue", "meets target")):
            if group:
                axis.scatter(*zip(*group, strict=True), s=12, c=colour, label=label)
        front = pareto_front(choice.trial_points)
        if front:
            axis.step(*zip(*front, strict=True), where="post", c="tab:orange", lw=1)
        axis.axhline(choice.target_psnr_db, c="tab:red", ls="--", lw=0.8)
        if math.isfinite(choice.latency_ms):
            axis.scatter([choice.latency_ms], [choice.psnr_db], marker="*", s=90, c="tab:green", label="chosen")
        axis.set_title(f"layer {choice.layer}", fontsize=9)
        axis.set_xlabel("op latency (ms)", fontsize=8)
        axis.set_ylabel("attention PSNR (dB)", fontsize=8)
    model_axis = flat[len(layers)]
    tuned = [r for r in rounds if "relax_db" not in r and "refresh_every" not in r]
    relaxed = [r for r in rounds if "relax_db" in r]
    reusing = [r for r in rounds if "refresh_every" in r]
    if tuned:
        model_axis.plot([r["sparse_ms"] for r in tuned], [r["psnr_db"] for r in tuned], "o-", c="tab:blue",
                        label="tuned (per round)")
    if relaxed:
        model_axis.scatter([r["sparse_ms"] for r in relaxed], [r["psnr_db"] for r in relaxed], marker="v",
                           c="tab:cyan", label="relaxed targets")
    if reusing:
        model_axis.scatter([r["sparse_ms"] for r in reusing], [r["psnr_db"] for r in reusing], marker="^",
                           c="tab:olive", label="routing reuse tried")
    if uniform:
        model_axis.plot([u["sparse_ms"] for u in uniform], [u["psnr_db"] for u in uniform], "s--", c="tab:purple",
                        ms=4, label="uniform budget")
    model_axis.axvline(dense_ms, c="tab:gray", ls=":", label="dense run")
    model_axis.axhline(target_psnr_db, c="tab:red", ls="--", lw=0.8, label="target")
    model_axis.set_title("whole model", fontsize=9)
    model_axis.set_xlabel("denoising run (ms)", fontsize=8)
    model_axis.set_ylabel("final-latent PSNR (dB)", fontsize=8)
    model_axis.legend(fontsize=6)
    for axis in flat[panels:]:
        axis.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return write_atomic(path, buffer.getvalue())
