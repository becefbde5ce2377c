"""The model signature a compiled graph shows: what ``profile="auto"`` matches a profile against.

The backend never sees the model object, only the Dynamo graph, so the signature is read from the
attention calls that would be rewritten: their count (the layer count, in a whole-model graph), heads,
head dim and sequence-length bucket (the longest call's). A block graph shared by every layer
(regional compilation: no ``timestep`` input) leaves the layer count unknown.
"""

from __future__ import annotations

import torch
import torch.fx

from ..passes import classify, find_attention, timestep_input
from ..passes.classify import REWRITE
from ._schema import ModelSignature


def _rewritten_shapes(gm: torch.fx.GraphModule, min_seq_len: int) -> list[tuple[int, ...]]:
    """Query shapes ``(B, H, S, D)`` of the self-attention calls the backend would rewrite, where static."""
    ancestry: dict = {}
    shapes = [call.shape("query") for call in find_attention(gm.graph)
              if classify(call, min_seq_len, ancestry).kind == REWRITE]
    return [s for s in shapes if s is not None and all(isinstance(d, int) for d in s)]


def graph_signature(gm: torch.fx.GraphModule, min_seq_len: int = 0) -> ModelSignature | None:
    """Signature of the self-attention calls the backend would rewrite in ``gm``; None if there are none."""
    shapes = _rewritten_shapes(gm, min_seq_len)
    if not shapes:
        return None
    _, heads, seq_len, head_dim = max(shapes, key=lambda s: s[2])
    whole_model = timestep_input(gm.graph) is not None
    return ModelSignature(num_layers=len(shapes) if whole_model else None, num_heads=heads, head_dim=head_dim,
                          seq_len=seq_len)


def graph_attention_batch(gm: torch.fx.GraphModule, min_seq_len: int = 0) -> int | None:
    """The batch of the self-attention calls the backend would rewrite in ``gm`` (2 where a pipeline runs
    classifier-free guidance as one batch); None if there are none."""
    shapes = _rewritten_shapes(gm, min_seq_len)
    return max(shapes, key=lambda s: s[2])[0] if shapes else None


def graph_device_name(gm: torch.fx.GraphModule) -> str | None:
    """Name of the device ``gm``'s attention runs on: its CUDA name (that GPU's, not the current one's), or
    ``"cpu"``; None when the graph has no attention call with a known device. A CPU graph on a machine
    with a GPU is matched as "cpu", not as the GPU."""
    for call in find_attention(gm.graph):
        device = call.device("query")
        if device is not None:
            return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return None
