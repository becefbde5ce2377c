"""Find every ``F.scaled_dot_product_attention`` call in a Dynamo FX graph, arguments normalised.

Models pass SDPA arguments every way (diffusers: all by keyword; legacy processors: q, k, v
positionally), so each call is normalised to the full signature before anyone looks at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
import torch.nn.functional as F

_SDPA_PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_SDPA_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None, "enable_gqa": False}


@dataclass
class AttentionCall:
    """One SDPA node with its arguments by name and what the graph knows about it."""

    node: torch.fx.Node
    arguments: dict[str, Any]
    module_path: str
    module_class: str

    def _example(self, name: str) -> torch.Tensor | None:
        value = self.arguments.get(name)
        example = value.meta.get("example_value") if isinstance(value, torch.fx.Node) else None
        return example if isinstance(example, torch.Tensor) else None

    def shape(self, name: str) -> tuple[int, ...] | None:
        example = self._example(name)
        return tuple(example.shape) if example is not None else None

    def dtype(self, name: str) -> torch.dtype | None:
        example = self._example(name)
        return example.dtype if example is not None else None

    def device(self, name: str) -> torch.device | None:
        example = self._example(name)
        return example.device if example is not None else None


def _normalise(node: torch.fx.Node) -> dict[str, Any]:
    if len(node.args) > len(_SDPA_PARAMS):
        raise ValueError(f"{node.name}: scaled_dot_product_attention got {len(node.args)} positional arguments")
    arguments = dict(_SDPA_DEFAULTS)
    arguments.update(zip(_SDPA_PARAMS[: len(node.args)], node.args, strict=True))
    unknown = set(node.kwargs) - set(_SDPA_PARAMS)
    if unknown:
        raise ValueError(f"{node.name}: scaled_dot_product_attention got unknown keyword(s) {sorted(unknown)}")
    arguments.update(node.kwargs)
    return arguments


def _clean_module_path(source: str) -> str:
    """``L['self'].__dict__['_modules']['blocks'].0.attn1`` → ``blocks.0.attn1``."""
    path = re.sub(r"(__dict__\[)?'?_modules'?\]?\['(\w+)'\]", r"\2", source)
    path = re.sub(r"^L\['self'\]\.?", "", path)
    return path.replace("._modules", "").strip(".")


def _module_of(node: torch.fx.Node) -> tuple[str, str]:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "", ""
    source, cls = list(stack.values())[-1]
    name = cls.__name__ if isinstance(cls, type) else str(cls).rsplit(".", 1)[-1].strip("'>")
    return _clean_module_path(str(source)), name


def find_attention(graph: torch.fx.Graph) -> list[AttentionCall]:
    """Every SDPA call in graph order."""
    calls = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target is F.scaled_dot_product_attention:
            path, cls = _module_of(node)
            calls.append(AttentionCall(node=node, arguments=_normalise(node), module_path=path, module_class=cls))
    return calls
