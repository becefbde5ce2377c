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
        if choice.target_psnr_db is None:  # chosen end to end: its layer trials had another target
            groups = ((choice.trial_points, "tab:gray", "layer trials"),)
        else:
            groups = (([p for p in choice.trial_points if p[1] < choice.target_psnr_db], "tab:gray", "below target"),
                      ([p for p in choice.trial_points if p[1] >= choice.target_psnr_db], "tab:blue", "meets target"))
        for group, colour, label in groups:
            if group:
                axis.scatter(*zip(*group, strict=True), s=12, c=colour, label=label)
        front = pareto_front(choice.trial_points)
        if front:
            axis.step(*zip(*front, strict=True), where="post", c="tab:orange", lw=1)
        if choice.target_psnr_db is not None:
            axis.axhline(choice.target_psnr_db, c="tab:red", ls="--", lw=0.8)
        if math.isfinite(choice.latency_ms):
            axis.scatter([choice.latency_ms], [choice.psnr_db], marker="*", s=90, c="tab:green", label="chosen")
        axis.set_title(f"layer {choice.layer}", fontsize=9)
        axis.set_xlabel("op latency (ms)", fontsize=8)
        axis.set_ylabel("attention PSNR (dB)", fontsize=8)
    model_axis = flat[len(layers)]
    stages = ("relax_db", "uniform_search", "probe", "allocation", "refresh_every", "budget", "exact_centroids",
              "step_schedule", "budget_scale")  # the last three run untimed: nothing to draw
    tuned = [r for r in rounds if not any(stage in r for stage in stages)]
    relaxed = [r for r in rounds if "relax_db" in r]
    uniform_trials = [r for r in rounds if "uniform_search" in r]
    traded = [r for r in rounds if "probe" in r or "allocation" in r]
    refined = [r for r in rounds if "refresh_every" in r or "budget" in r]
    if tuned:
        model_axis.plot([r["sparse_ms"] for r in tuned], [r["psnr_db"] for r in tuned], "o-", c="tab:blue",
                        label="tuned (per round)")
    if relaxed:
        model_axis.scatter([r["sparse_ms"] for r in relaxed], [r["psnr_db"] for r in relaxed], marker="v",
                           c="tab:cyan", label="relaxed targets")
    if uniform_trials:
        model_axis.scatter([r["sparse_ms"] for r in uniform_trials], [r["psnr_db"] for r in uniform_trials],
                           marker="x", c="tab:brown", label="one config, all layers (trials)")
    if traded:
        model_axis.scatter([r["sparse_ms"] for r in traded], [r["psnr_db"] for r in traded], marker="D", s=14,
                           c="tab:pink", label="budget trading tried")
    if refined:
        model_axis.scatter([r["sparse_ms"] for r in refined], [r["psnr_db"] for r in refined], marker="^",
                           c="tab:olive", label="per-layer refinement tried")
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
