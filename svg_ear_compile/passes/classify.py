"""Decide, for each attention call, whether SVG-EAR may replace it, and if not, why.

Rewritten: video self-attention (no mask) and joint video+text attention (video tokens first, text
last, a boolean key-padding mask ``(B, 1, 1, N)``), with no causal masking, no dropout, default
scale, as many query as key heads, equal query and key lengths, and keys computed from every graph
input the queries are computed from (cross-attention keys come only from the text/image encoder
states, not from the latent, which is how equal-length cross-attention is still told apart).
Everything else stays exact, with the reason recorded for :func:`svg_ear_compile.explain`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.fx

from .find import AttentionCall
from .joint import video_prefix

REWRITE = "rewritten"
EXACT = "exact"


@dataclass(frozen=True)
class Classification:
    """``kind`` is :data:`REWRITE` or :data:`EXACT`; joint attention also says where its video tokens are
    (``video_tokens``: a node whose size along the given dim is the video length)."""

    kind: str
    reason: str
    video_tokens: tuple[torch.fx.Node, int] | None = None


def _activation_inputs(node: torch.fx.Node, cache: dict[torch.fx.Node, frozenset[str]]) -> frozenset[str]:
    """Names of the non-parameter graph inputs that ``node`` is computed from."""
    stack, order = [node], []
    while stack:
        current = stack.pop()
        if current in cache:
            continue
        pending = [n for n in current.all_input_nodes if n not in cache]
        if pending:
            stack.append(current)
            stack.extend(pending)
            continue
        if current.op == "placeholder":
            is_weight = "_parameters_" in current.name or "_buffers_" in current.name
            cache[current] = frozenset() if is_weight else frozenset([current.name])
        else:
            cache[current] = frozenset().union(*(cache[n] for n in current.all_input_nodes))
        order.append(current)
    return cache[node]


def classify(call: AttentionCall, min_seq_len: int, ancestry: dict | None = None) -> Classification:
    """:data:`REWRITE` or :data:`EXACT` with the reason, for one call."""
    args = call.arguments
    q_shape, k_shape, v_shape = call.shape("query"), call.shape("key"), call.shape("value")
    if q_shape is None or k_shape is None or v_shape is None:
        return Classification(EXACT, "shapes unknown at trace time")
    if len(q_shape) != 4 or len(k_shape) != 4:
        return Classification(EXACT, f"not (B, H, S, D) inputs: q {q_shape}, k {k_shape}")
    if args["is_causal"] is not False:
        return Classification(EXACT, "causal attention")
    if not isinstance(args["dropout_p"], (int, float)) or args["dropout_p"] != 0:
        return Classification(EXACT, f"dropout_p={args['dropout_p']}")
    if args["enable_gqa"] is not False or q_shape[1] != k_shape[1]:
        return Classification(EXACT, f"grouped-query attention ({q_shape[1]} query vs {k_shape[1]} key heads)")
    scale = args["scale"]
    if scale is not None and (not isinstance(scale, (int, float)) or abs(scale * math.sqrt(q_shape[-1]) - 1) > 1e-6):
        return Classification(EXACT, f"non-default scale {scale}")
    video_tokens = None
    if args["attn_mask"] is not None:
        video_tokens = _joint_video_tokens(call, q_shape, k_shape)
        if isinstance(video_tokens, str):
            return Classification(EXACT, video_tokens)
    if q_shape[2] != k_shape[2]:
        return Classification(EXACT, f"cross-attention (query length {q_shape[2]} != key length {k_shape[2]})")
    cache = ancestry if ancestry is not None else {}
    query_inputs = _activation_inputs(args["query"], cache)
    key_inputs = _activation_inputs(args["key"], cache)
    if not query_inputs <= key_inputs:
        missing = sorted(query_inputs - key_inputs)
        return Classification(EXACT, f"cross-attention (keys do not depend on {missing}: not the latent input)")
    length = q_shape[2] if video_tokens is None else video_tokens[0].meta["example_value"].shape[video_tokens[1]]
    if isinstance(length, int) and length < min_seq_len:
        return Classification(EXACT, f"short sequence (S={length} < min_seq_len={min_seq_len})")
    if video_tokens is not None:
        return Classification(REWRITE, "joint video+text attention (text exact, padding masked)", video_tokens)
    return Classification(REWRITE, "video self-attention")


def _joint_video_tokens(call: AttentionCall, q_shape: tuple, k_shape: tuple) -> tuple[torch.fx.Node, int] | str:
    """Where the video tokens of a masked call are, or why the mask rules out rewriting."""
    mask_shape, mask_dtype = call.shape("attn_mask"), call.dtype("attn_mask")
    if mask_dtype != torch.bool:
        return f"{mask_dtype} attention mask (only boolean key-padding masks are supported)"
    if mask_shape is None or len(mask_shape) != 4 or mask_shape[1:3] != (1, 1) or mask_shape[3] != k_shape[2]:
        return f"boolean mask of shape {mask_shape} is not a key-padding mask (B, 1, 1, {k_shape[2]})"
    found = video_prefix(call.arguments["query"], call.arguments["key"])
    if found is None:
        return "key-padding mask without a video-then-text concatenation of queries and keys"
    return found
