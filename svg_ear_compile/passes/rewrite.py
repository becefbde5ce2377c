"""Replace the chosen SDPA nodes by ``torch.ops.svg_ear.attention`` (the config travels as YAML text)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx

from .. import ops as _ops  # noqa: F401  (registers torch.ops.svg_ear.attention)
from .find import AttentionCall


@dataclass(frozen=True)
class RewriteTarget:
    """An attention call to replace: its layer index (-1: resolved at run time) and, for joint
    attention, a node whose size along a dim is the number of video tokens."""

    call: AttentionCall
    layer: int
    video_tokens: tuple[torch.fx.Node, int] | None = None


def timestep_input(graph: torch.fx.Graph) -> torch.fx.Node | None:
    """The graph input carrying the model's timestep (a diffusers DiT's ``timestep`` argument), if any."""
    for node in graph.nodes:
        if node.op == "placeholder" and "timestep" in node.name and "_parameters_" not in node.name:
            if isinstance(node.meta.get("example_value"), torch.Tensor):
                return node
    return None


def layer_key(query: torch.fx.Node) -> torch.fx.Node | None:
    """The parameter nearest to ``query`` in its ancestry (its attention's projection or norm weight)."""
    queue, seen = [query], {query}
    while queue:
        node = queue.pop(0)
        if node.op == "get_attr" or (node.op == "placeholder" and "_parameters_" in node.name):
            return node
        for parent in node.all_input_nodes:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return None


def rewrite_attention(gm: torch.fx.GraphModule, targets: list[RewriteTarget], config_yaml: str) -> int:
    """Rewrite each target in place; returns how many nodes were replaced.

    Every op also gets ``layer_key``, a parameter of its attention module: it keeps centroid caches
    apart per module, and names the layer at run time where ``layer`` is -1 (a block graph shared by
    all layers). The graph's timestep input, when it has one, drives the dense warm-up; without one
    the op reads the timestep a :func:`~svg_ear_compile.runtime.track_timestep` hook publishes.
    Joint attention passes its mask and the run-time length of its video part.
    """
    timestep = timestep_input(gm.graph)
    for target in targets:
        node, args = target.call.node, target.call.arguments
        with gm.graph.inserting_before(node):
            mask, num_video = None, -1
            if target.video_tokens is not None:
                mask = args["attn_mask"]
                num_video = gm.graph.call_method("size", target.video_tokens)
            op_args = (args["query"], args["key"], args["value"], config_yaml, target.layer, timestep, mask, num_video,
                       layer_key(args["query"]))
            replacement = gm.graph.call_function(torch.ops.svg_ear.attention.default, op_args)
        replacement.meta.update(node.meta)
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return len(targets)
