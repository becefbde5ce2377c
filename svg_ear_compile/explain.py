"""``explain(model, *args, **options)``: which attention calls the backend would rewrite, and why not.

    >>> import torch, svg_ear_compile
    >>> class Tiny(torch.nn.Module):
    ...     def forward(self, x):
    ...         return torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
    >>> rows = svg_ear_compile.explain(Tiny(), torch.randn(1, 2, 16, 8), min_seq_len=0)  # doctest: +ELLIPSIS
    layer ...
    >>> rows[0].kind, rows[0].reason
    ('exact', 'causal attention')
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .attention import dense_reason
from .backend import AttentionReport, check_option_names, config_from_options, plan
from .config import SvgEarConfig
from .passes.classify import REWRITE
from .passes.rewrite import RewriteTarget


def format_reports(reports: list[AttentionReport]) -> str:
    header = f"{'layer':>5s}  {'module':50s} {'query':22s} {'key':22s} {'class':10s} reason"
    lines = [header, "-" * len(header)]
    for r in reports:
        layer = "-" if r.layer is None else ("run" if r.layer < 0 else str(r.layer))
        lines.append(f"{layer:>5s}  {r.module_path or '?':50s} {str(r.query_shape):22s} {str(r.key_shape):22s} "
                     f"{r.kind:10s} {r.reason}")
    return "\n".join(lines)


def explain(model: torch.nn.Module, *args: Any, model_kwargs: dict[str, Any] | None = None,
            **options: Any) -> list[AttentionReport]:
    """Trace ``model(*args, **model_kwargs)`` with Dynamo, print and return one row per attention call.

    Nothing is compiled with Inductor and the model runs its original attention; ``options`` are
    the backend's (``SvgEarConfig`` fields and ``profile``). A rewritten call whose own layer config
    always runs exact attention (``dense_layers``, a per-layer ``min_seq_len`` such as a profile's
    exact layers) is shown as exact, with that reason. A layer shown as ``run`` is resolved at run
    time (a graph without the model's timestep input, such as one repeated block).
    """
    check_option_names(options)  # before tracing: a typo fails here, not inside Dynamo
    reports: list[AttentionReport] = []

    def backend(gm, example_inputs):  # the config as the backend resolves it, per graph (profile="auto" needs it)
        config = config_from_options(options, gm)
        targets, graph_reports = plan(gm, config)
        by_layer = {target.layer: target for target in targets if target.layer >= 0}
        reports.extend(_as_run(report, by_layer.get(report.layer), config) for report in graph_reports)
        return gm.forward

    torch.compile(model, backend=backend)(*args, **(model_kwargs or {}))
    print(format_reports(reports))
    return reports


def _as_run(report: AttentionReport, target: RewriteTarget | None, config: SvgEarConfig) -> AttentionReport:
    """``report``, or an exact one when the layer's config sends every call of it to exact attention
    (the op's own :func:`~svg_ear_compile.attention.dense_reason`, without the run-time timestep)."""
    if report.kind != REWRITE or target is None or report.query_shape is None:
        return report
    tokens = report.query_shape[2]
    if target.video_tokens is not None:  # joint attention: the video part decides
        node, dim = target.video_tokens
        value = node.meta.get("example_value", node.meta.get("val"))
        if value is None:
            return report
        tokens = value.shape[dim]
    if not isinstance(tokens, int):
        return report
    reason = dense_reason(tokens, config.for_layer(report.layer), report.layer, None)
    if reason is None:
        return report
    return dataclasses.replace(report, kind="exact", reason=f"video self-attention; its layer config runs it exact "
                                                            f"({reason})")
