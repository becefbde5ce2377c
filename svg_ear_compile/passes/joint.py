"""Recognise joint video+text attention (HunyuanVideo) in the graph: where the video tokens end.

Joint attention concatenates video tokens first and text tokens last along the sequence, then moves
heads forward (``cat([video, text], dim=1).permute(0, 2, 1, 3)`` or ``.transpose(1, 2)``) before SDPA,
with a boolean key-padding mask ``(B, 1, 1, N)``. Walking back from the SDPA query through such
layout ops to the ``cat`` gives the video part; its length along the sequence dim, read at run time,
is the op's ``num_video``.
"""

from __future__ import annotations

import torch
import torch.fx

_SAME_LAYOUT_METHODS = {"contiguous", "to", "float", "half", "bfloat16", "type_as", "clone"}


def _example(node: torch.fx.Node):
    return node.meta.get("example_value")


def _dims(node: torch.fx.Node) -> list[int] | None:
    dims = node.args[1:]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = dims[0]
    return list(dims) if all(isinstance(d, int) for d in dims) else None


def _trace_back(node: torch.fx.Node, seq_dim: int) -> tuple[torch.fx.Node, int]:
    """Follow layout-only ops upwards; returns the first other node and where the sequence dim is there."""
    while node.op in ("call_method", "call_function"):
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
        source = node.args[0] if node.args else None
        if not isinstance(source, torch.fx.Node):
            break
        if name in _SAME_LAYOUT_METHODS:
            node = source
        elif name == "permute" and (dims := _dims(node)) is not None:
            node, seq_dim = source, dims[seq_dim] % len(dims)
        elif name == "transpose" and (dims := _dims(node)) is not None and len(dims) == 2:
            ndim = _example(node).dim()
            a, b = (d % ndim for d in dims)
            node, seq_dim = source, {a: b, b: a}.get(seq_dim, seq_dim)
        else:
            break
    return node, seq_dim


def _cat_parts(node: torch.fx.Node, seq_dim: int) -> list[torch.fx.Node] | None:
    if node.op != "call_function" or node.target is not torch.cat:
        return None
    tensors = node.args[0] if node.args else node.kwargs.get("tensors")
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
    example = _example(node)
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or example is None:
        return None
    if not isinstance(dim, int) or dim % example.dim() != seq_dim:
        return None
    return list(tensors)


def video_prefix(query: torch.fx.Node, key: torch.fx.Node) -> tuple[torch.fx.Node, int] | None:
    """``(node, dim)`` whose size along ``dim`` is the number of video tokens, or None if not joint.

    Both query and key must be concatenations along the sequence dim with equally long first parts.
    """
    found = []
    for tensor in (query, key):
        source, seq_dim = _trace_back(tensor, 2)
        parts = _cat_parts(source, seq_dim)
        if parts is None or not isinstance(parts[0], torch.fx.Node) or _example(parts[0]) is None:
            return None
        found.append((parts[0], seq_dim))
    (query_part, query_dim), (key_part, key_dim) = found
    if _example(query_part).shape[query_dim] != _example(key_part).shape[key_dim]:
        return None
    return query_part, query_dim
