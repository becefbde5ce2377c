"""``torch.ops.svg_ear.attention``: the op the compiler pass inserts (opaque to Inductor).

The config travels as its YAML text (a plain string in the graph, parsed once and cached). The
centroid cache lives here, keyed by ``(config, layer)``: a ``layer`` < 0 means "no cache", so every
call starts cold and is a pure function of its inputs.

    >>> import torch, svg_ear_compile
    >>> from svg_ear_compile import SvgEarConfig
    >>> q = k = v = torch.randn(1, 2, 128, 64)
    >>> cfg = SvgEarConfig(num_q_clusters=8, num_k_clusters=16, min_seq_len=0, budget=1.0)
    >>> out = torch.ops.svg_ear.attention(q, k, v, cfg.to_yaml(), -1)
    >>> tuple(out.shape)
    (1, 2, 128, 64)
"""

from __future__ import annotations

import functools
import time

import torch

from .attention import svg_ear_attention
from .config import SvgEarConfig
from .record import active_recording
from .state import SvgEarState

_centroid_caches: dict[tuple[str, int], SvgEarState] = {}


@functools.lru_cache(maxsize=64)
def _parse_config(config_yaml: str) -> SvgEarConfig:
    return SvgEarConfig.from_yaml(config_yaml)


def layer_state(config_yaml: str, layer: int) -> SvgEarState | None:
    """The centroid cache of ``layer`` under this config (created on first use); None if layer < 0."""
    if layer < 0:
        return None
    return _centroid_caches.setdefault((config_yaml, layer), SvgEarState())


def reset_centroid_caches() -> None:
    """Forget every cached centroid (for instance between two videos of different content)."""
    _centroid_caches.clear()


@torch.library.custom_op("svg_ear::attention", mutates_args=())
def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, config: str, layer: int, timestep: torch.Tensor | None = None
) -> torch.Tensor:
    """SVG-EAR self-attention of ``(B, H, S, D)`` inputs under the YAML ``config``.

    ``timestep`` (the model's timestep input, when the graph has one) drives the dense warm-up.
    """
    cfg = _parse_config(config)
    state, layer_index = layer_state(config, layer), (layer if layer >= 0 else None)
    recording = active_recording()
    if recording is not None:
        _synchronize(q.device)
        start = time.perf_counter()
    out, stats = svg_ear_attention(q, k, v, cfg, state=state, layer=layer_index, timestep=timestep, return_stats=True)
    if recording is not None:
        _synchronize(q.device)
        recording.add(layer, q.shape[2], stats["density"], stats["dense"], (time.perf_counter() - start) * 1e3)
    return out.contiguous()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@attention.register_fake
def _attention_fake(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, config: str, layer: int, timestep: torch.Tensor | None = None
) -> torch.Tensor:
    return q.new_empty((*q.shape[:-1], v.shape[-1]))
