"""Replace the chosen SDPA nodes by ``torch.ops.svg_ear.attention`` (the config travels as YAML text)."""

from __future__ import annotations

import torch
import torch.fx

from .. import ops as _ops  # noqa: F401  (registers torch.ops.svg_ear.attention)
from .find import AttentionCall


def rewrite_attention(gm: torch.fx.GraphModule, targets: list[tuple[AttentionCall, int]], config_yaml: str) -> int:
    """Rewrite each ``(call, layer)`` in place; returns how many nodes were replaced."""
    for call, layer in targets:
        node, args = call.node, call.arguments
        with gm.graph.inserting_before(node):
            replacement = gm.graph.call_function(
                torch.ops.svg_ear.attention.default, (args["query"], args["key"], args["value"], config_yaml, layer)
            )
        replacement.meta.update(node.meta)
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return len(targets)
