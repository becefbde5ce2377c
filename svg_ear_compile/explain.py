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

from typing import Any

import torch

from .backend import AttentionReport, check_option_names, config_from_options, plan


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
    the backend's (``SvgEarConfig`` fields and ``profile``). A layer shown as ``run`` is resolved
    at run time (a graph without the model's timestep input, such as one repeated block).
    """
    check_option_names(options)  # before tracing: a typo fails here, not inside Dynamo
    reports: list[AttentionReport] = []

    def backend(gm, example_inputs):  # the config as the backend resolves it, per graph (profile="auto" needs it)
        reports.extend(plan(gm, config_from_options(options, gm))[1])
        return gm.forward

    torch.compile(model, backend=backend)(*args, **(model_kwargs or {}))
    print(format_reports(reports))
    return reports
