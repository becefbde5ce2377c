"""``torch.ops.svg_ear.attention``: the op the compiler pass inserts (opaque to Inductor).

The config travels as its YAML text (a plain string in the graph, parsed once and cached). The
centroid cache lives here, keyed by ``(config, layer, layer_key)``. ``layer`` is the layer index, or
-1 to resolve it at run time from ``layer_key`` (one of the attention's parameters, see
:mod:`svg_ear_compile.runtime`), or -1 without a key for "no layer": no cache, every call starts
cold and is a pure function of its inputs. ``timestep`` falls back to the one a
:func:`~svg_ear_compile.runtime.track_timestep` hook publishes.

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
from .runtime import current_timestep, forget_layers, layer_of
from .state import SvgEarState

_centroid_caches: dict[tuple[str, int, int | None], SvgEarState] = {}


@functools.lru_cache(maxsize=64)
def _parse_config(config_yaml: str) -> SvgEarConfig:
    return SvgEarConfig.from_yaml(config_yaml)


def layer_state(config_yaml: str, layer: int, layer_key: torch.Tensor | None = None) -> SvgEarState | None:
    """The centroid cache of ``layer`` (and of the module owning ``layer_key``); None if layer < 0."""
    if layer < 0:
        return None
    owner = None if layer_key is None else layer_key.untyped_storage().data_ptr()
    return _centroid_caches.setdefault((config_yaml, layer, owner), SvgEarState())


def reset_centroid_caches(*, keep_graphs: bool = True) -> None:
    """Start every layer of the next video cold: forget cached centroids, kept routings and layer registrations.

    The layers' captured CUDA graphs stay unless ``keep_graphs=False``: they hold no video's state (a
    replay copies its inputs and centroids in), and capturing them again costs every layer an eager run
    and a capture in the next video. Release them after moving a model to another device, or to free
    their memory.
    """
    if keep_graphs:
        for state in _centroid_caches.values():
            state.start_cold()
    else:
        _centroid_caches.clear()
    forget_layers()


@torch.library.custom_op("svg_ear::attention", mutates_args=())
def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: str,
    layer: int,
    timestep: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    num_video: int = -1,
    layer_key: torch.Tensor | None = None,
) -> torch.Tensor:
    """SVG-EAR attention of ``(B, H, S, D)`` inputs under the YAML ``config``.

    ``timestep`` drives the dense warm-up; ``key_padding_mask`` and ``num_video`` (-1: all tokens are
    video) describe joint video+text attention as in :func:`~svg_ear_compile.svg_ear_attention`.
    """
    cfg = _parse_config(config)
    if layer < 0 and layer_key is not None:
        layer = layer_of(layer_key)
    state = layer_state(config, layer, layer_key)
    timestep = timestep if timestep is not None else current_timestep()
    recording = active_recording()
    if recording is not None:
        _synchronize(q.device)
        start = time.perf_counter()
    result = svg_ear_attention(
        q, k, v, cfg, state=state, layer=layer if layer >= 0 else None, timestep=timestep,
        num_video=num_video if num_video >= 0 else None, key_padding_mask=key_padding_mask,
        return_stats=recording is not None,  # stats read the density back from the GPU: only when recording
    )
    if recording is None:
        return result.contiguous()
    out, stats = result
    _synchronize(q.device)
    recording.add(layer, q.shape[2], stats["density"], stats["dense"], (time.perf_counter() - start) * 1e3,
                  reused=stats.get("reused_routing", False), cold=stats.get("cold_start", False))
    return out.contiguous()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@attention.register_fake
def _attention_fake(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: str,
    layer: int,
    timestep: torch.Tensor | None = None,
    key_padding_mask: torch.Tensor | None = None,
    num_video: int = -1,
    layer_key: torch.Tensor | None = None,
) -> torch.Tensor:
    return q.new_empty((*q.shape[:-1], v.shape[-1]))
