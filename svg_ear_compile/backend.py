"""``torch.compile(model, backend="svg_ear", options={...})``: rewrite video self-attention, then Inductor.

Registered through the ``torch_dynamo_backends`` entry point, so no import is needed::

    compiled = torch.compile(transformer, backend="svg_ear", options={"budget": 0.2})

``options`` takes every :class:`SvgEarConfig` field plus ``profile`` (a path to a YAML config whose
fields, including ``layer_overrides``, become the base config; explicit options win over it).
"""

from __future__ import annotations

import pathlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx

from . import runtime
from .config import SvgEarConfig, config_fields
from .passes import RewriteTarget, classify, find_attention, rewrite_attention, timestep_input
from .passes.classify import REWRITE

BACKEND_OPTIONS = (*config_fields(), "profile")


def config_from_options(
    options: dict[str, Any] | None,
    graph: torch.fx.GraphModule | None = None,
    *,
    device_name: str | None = None,
    profile_dirs: list[str] | None = None,
) -> SvgEarConfig:
    """The :class:`SvgEarConfig` that ``options`` describe; unknown names list the valid ones.

    ``profile``: ``"auto"`` (the per-GPU profile that fits this device and the model ``graph`` shows,
    see :func:`svg_ear_compile.profiles.load_profile`; none fits, or no ``graph``: the default config
    and one warning), or the path of a profile (checked against the device and ``graph``) or of a YAML
    config. ``device_name`` and ``profile_dirs`` replace the CUDA device name and the search path.
    """
    options = dict(options or {})
    check_option_names(options)
    profile = options.pop("profile", None)
    base = _profile_config(profile, graph, options.get("min_seq_len", 0), device_name, profile_dirs)
    return base.replace(**options)


def check_option_names(options: dict[str, Any]) -> None:
    """Raise, listing the valid names, when ``options`` holds a name the backend does not take."""
    unknown = sorted(set(options) - set(BACKEND_OPTIONS))
    if unknown:
        raise ValueError(
            f"backend 'svg_ear' got unknown option(s) {unknown}; valid options are {list(BACKEND_OPTIONS)}"
        )


def _profile_config(profile: Any, graph: torch.fx.GraphModule | None, min_seq_len: int, device_name: str | None,
                    profile_dirs: list[str] | None) -> SvgEarConfig:
    """The base config the ``profile`` option names (see :func:`config_from_options`)."""
    from . import profiles

    if profile is None:
        return SvgEarConfig()
    if profile != "auto":
        path = pathlib.Path(profile)
        if not path.is_file():
            raise ValueError(f"option profile={profile!r}: no such file")
        text = path.read_text()
        if not profiles.is_profile_text(text):
            return SvgEarConfig.from_yaml(text)
    elif graph is None:
        warnings.warn("svg_ear profile='auto' matches profiles by the model the compiled graph shows, and no "
                      "graph was given; running the conservative default config", profiles.ProfileWarning,
                      stacklevel=3)
        return SvgEarConfig()
    signature = profiles.graph_signature(graph, min_seq_len) if graph is not None else None
    if device_name is None and graph is not None:
        device_name = profiles.graph_device_name(graph)
    found = profiles.load_profile(profile, device_name=device_name, signature=signature, search_dirs=profile_dirs)
    if found is None:
        return SvgEarConfig()
    if graph is not None:
        _warn_if_tuned_on_another_batch(found, graph, min_seq_len)
    return found.config()


def _warn_if_tuned_on_another_batch(profile: Any, graph: torch.fx.GraphModule, min_seq_len: int) -> None:
    """One :class:`ProfileWarning` when ``profile`` was tuned with guidance run otherwise than ``graph`` runs
    it (one batch of both prompts against one call each, or none): its budgets met the PSNR target for the
    tuned way only (routing both prompts alike moved the fixture's PSNR by 2–3 dB at one density,
    ``benchmarks/RESULTS.md``, ninth GPU session). The graph's attention calls are read only for a profile
    that records its guidance."""
    from .profiles import ProfileWarning, graph_attention_batch

    tuned = profile.tuned_batch()
    if tuned is None:
        return
    batch = graph_attention_batch(graph, min_seq_len)
    if batch is None or tuned == batch:
        return
    runs = {1: "one prompt per call (no guidance, or guidance as two calls)",
            2: "guidance as one batch of both prompts"}
    warnings.warn(f"svg_ear profile: the {profile.device} profile for {profile.model.describe()} was tuned with "
                  f"{runs.get(tuned, f'batch {tuned}')}, and this graph's self-attention runs batch {batch}; its "
                  "PSNR target was met for the tuned setting only. Re-tune with --guidance-calls "
                  f"{'batched' if batch == 2 else 'two'} to match.", ProfileWarning, stacklevel=4)


@dataclass(frozen=True)
class AttentionReport:
    """One attention call of a compiled graph and what the backend did with it."""

    layer: int | None
    module_path: str
    query_shape: tuple | None
    key_shape: tuple | None
    kind: str
    reason: str


def plan(gm: torch.fx.GraphModule, config: SvgEarConfig) -> tuple[list[RewriteTarget], list[AttentionReport]]:
    """Classify every attention call; rewritten ones get a layer index.

    In a whole-model graph (it takes the model's ``timestep``) the index is the graph order. A graph
    without one is taken as a block shared by all layers (``compile_repeated_blocks``): its layer is
    resolved at run time (-1, see :mod:`svg_ear_compile.runtime`).
    """
    whole_model = timestep_input(gm.graph) is not None
    ancestry: dict = {}
    targets, reports = [], []
    for call in find_attention(gm.graph):
        verdict = classify(call, config.min_seq_len, ancestry)
        layer = None
        if verdict.kind == REWRITE:
            layer = len(targets) if whole_model else -1
            targets.append(RewriteTarget(call, layer, verdict.video_tokens))
        reports.append(AttentionReport(layer, call.module_path, call.shape("query"), call.shape("key"),
                                       verdict.kind, verdict.reason))
    return targets, reports


def rewrite_graph(gm: torch.fx.GraphModule, options: dict[str, Any] | None) -> list[AttentionReport]:
    """Rewrite ``gm`` in place and return the report of every attention call found."""
    config = config_from_options(options, gm)
    targets, reports = plan(gm, config)
    if not reports:
        warnings.warn("backend 'svg_ear': this graph has no scaled_dot_product_attention call; it runs exact",
                      stacklevel=2)
    rewrite_attention(gm, targets, config.to_yaml(one_line=True))
    return reports


def svg_ear_backend(gm: torch.fx.GraphModule, example_inputs: list[Any], options: dict[str, Any] | None = None):
    """The ``svg_ear`` Dynamo backend: rewrite, then compile the graph with Inductor.

    A whole-model graph (it takes the model's timestep) starts each call by sending the timestep to the
    host (:func:`~svg_ear_compile.runtime.prefetch_timestep`), as ``compile_repeated_blocks``' hook does.
    """
    from torch._inductor.compile_fx import compile_fx

    rewrite_graph(gm, options)
    timestep = timestep_input(gm.graph)
    inputs = [node for node in gm.graph.nodes if node.op == "placeholder"]
    compiled = compile_fx(gm, example_inputs)
    return compiled if timestep is None else _prefetching(compiled, inputs.index(timestep))


def _prefetching(compiled: Any, timestep_index: int) -> Any:
    """``compiled``, first prefetching its ``timestep_index``-th input (Dynamo calls it with the graph's
    inputs as positional arguments)."""

    def run(*args: Any) -> Any:
        runtime.prefetch_timestep(args[timestep_index])
        return compiled(*args)

    return run
