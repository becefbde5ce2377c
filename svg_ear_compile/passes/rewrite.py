"""Replace the chosen SDPA nodes by ``torch.ops.svg_ear.attention`` (the config travels as YAML text)."""

from __future__ import annotations

import torch
import torch.fx

from .. import ops as _ops  # noqa: F401  (registers torch.ops.svg_ear.attention)
from .find import AttentionCall


def timestep_input(graph: torch.fx.Graph) -> torch.fx.Node | None:
    """The graph input carrying the model's timestep (a diffusers DiT's ``timestep`` argument), if any."""
    for node in graph.nodes:
        if node.op == "placeholder" and "timestep" in node.name and "_parameters_" not in node.name:
            if isinstance(node.meta.get("example_value"), torch.Tensor):
                return node
    return None


def rewrite_attention(gm: torch.fx.GraphModule, targets: list[tuple[AttentionCall, int]], config_yaml: str) -> int:
    """Rewrite each ``(call, layer)`` in place; returns how many nodes were replaced.

    The graph's timestep input, when it has one, is passed to every op for the dense warm-up; a
    graph without one (a single repeated block) never warms up.
    """
    timestep = timestep_input(gm.graph)
    for call, layer in targets:
        node, args = call.node, call.arguments
        with gm.graph.inserting_before(node):
            op_args = (args["query"], args["key"], args["value"], config_yaml, layer, timestep)
            replacement = gm.graph.call_function(torch.ops.svg_ear.attention.default, op_args)
        replacement.meta.update(node.meta)
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return len(targets)
