"""SVG-EAR attention, the public function: decides exact vs sparse, splits joint video+text inputs.

The sparse path is :func:`svg_ear_compile.pipeline.run_pipeline` (DESIGN.md §2). Short sequences
(``S < min_seq_len``), the first ``dense_layers`` layers and warm-up steps (timestep above
``dense_above_timestep``) run exact attention. Inputs of any floating dtype run in float32
(float64 stays float64) and come back in their own dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .config import SvgEarConfig
from .pipeline import SharedKeys, run_pipeline
from .runtime import timestep_value
from .state import SvgEarState


def validate_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise ValueError naming the first problem with the (B, H, S, D) self-attention inputs."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"svg_ear_attention: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"svg_ear_attention: {name} must have rank 4 (B, H, S, D), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"svg_ear_attention: {name} must be floating point, got {t.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"svg_ear_attention: q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"svg_ear_attention: q, k, v devices differ: {q.device}, {k.device}, {v.device}")
    if q.shape != k.shape:
        raise ValueError(
            f"svg_ear_attention: q {tuple(q.shape)} and k {tuple(k.shape)} must have the same shape "
            "(self-attention: same batch, heads, sequence length and head dim)"
        )
    if v.shape[:3] != k.shape[:3]:
        raise ValueError(f"svg_ear_attention: v {tuple(v.shape)} must match k {tuple(k.shape)} in (B, H, S)")
    if 0 in q.shape or v.shape[-1] == 0:
        raise ValueError(f"svg_ear_attention: empty dimension in q {tuple(q.shape)} or v {tuple(v.shape)}")


def svg_ear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    config: SvgEarConfig | None = None,
    *,
    state: SvgEarState | None = None,
    layer: int | None = None,
    timestep: torch.Tensor | float | None = None,
    num_video: int | None = None,
    key_padding_mask: torch.Tensor | None = None,
    return_stats: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
    """Sparse self-attention with error-aware routing and centroid compensation.

    Args:
        q, k, v: ``(B, H, S, D)`` tensors (``v`` may have another head dim), after RoPE/QK-norm.
        config: settings; ``None`` uses :class:`SvgEarConfig` defaults.
        state: this layer's centroid cache; warm calls run ``kmeans_iters`` instead of
            ``kmeans_iters_init`` Lloyd steps.
        layer: layer index, for ``config.layer_overrides`` and ``config.dense_layers``.
        timestep: the model's timestep this call belongs to, for ``config.dense_above_timestep`` and to
            tell a new video: a timestep that moves back against the loop's way starts it cold
            (:meth:`SvgEarState.follow_timestep`). Without timesteps, give each video fresh states.
        num_video: joint attention (HunyuanVideo): the first ``num_video`` tokens are video, the rest
            text. Only video tokens are clustered and sparsified; every video query also attends
            exactly to the valid text tokens; text queries attend exactly to all valid tokens.
        key_padding_mask: ``(B, S)`` or ``(B, 1, 1, S)`` bool, True = a real token. Padded tokens
            never enter attention or compensation. Padding among the video tokens runs exact.
        return_stats: also return a dict: ``density`` (exactly computed share of the S² area,
            mean over batch and heads), ``density_per_head``, ``dense`` (and ``reason``) when exact
            attention ran instead, cluster counts (joint attention: density of the video × video
            area; the text rows and columns always run exact), and for inspection ``query_labels``/``key_labels``
            ``(B, H, S)`` and ``selected`` ``(B, H, QC, KC)``, the block map.

    Returns:
        ``(B, H, S, Dv)`` in ``q``'s dtype, and the stats dict when asked.

    Example:
        >>> import torch
        >>> from svg_ear_compile import SvgEarConfig, svg_ear_attention
        >>> q, k, v = torch.randn(3, 1, 2, 512, 64).unbind(0)
        >>> cfg = SvgEarConfig(num_q_clusters=16, num_k_clusters=32, min_seq_len=0, budget=1.0)
        >>> out = svg_ear_attention(q, k, v, cfg)
        >>> bool(torch.allclose(out, torch.nn.functional.scaled_dot_product_attention(q, k, v), atol=1e-5))
        True
    """
    validate_inputs(q, k, v)
    config = (config if config is not None else SvgEarConfig()).for_layer(layer)
    if state is not None and timestep is not None:
        state.follow_timestep(timestep_value(timestep))
    seq_len = q.shape[2]
    valid = _padding_mask(key_padding_mask, q.shape[0], seq_len, q.device)
    num_video = _video_tokens(num_video, seq_len)
    reason = dense_reason(num_video, config, layer, timestep) or _padded_video_reason(valid, num_video)
    if reason is not None:
        mask = None if valid is None else valid[:, None, None, :]
        out, stats = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), {"density": 1.0, "dense": True,
                                                                               "reason": reason}
    else:
        config = budget_at(config, timestep)
        phase = layer % config.refresh_every if config.stagger_refresh and layer is not None else 0
        if num_video == seq_len:
            out, stats = run_pipeline(q, k, v, config, state, refresh_phase=phase)
        else:
            out, stats = _joint_attention(q, k, v, valid, num_video, config, state, phase)
    if not return_stats:
        return out
    return out, {**stats, "density": float(stats["density"])}


def _padding_mask(mask: torch.Tensor | None, batch: int, seq_len: int, device: torch.device) -> torch.Tensor | None:
    """``(B, S)`` bool from a ``(B|1, S)`` or ``(B|1, 1, 1, S)`` key-padding mask; None when there is none."""
    if mask is None:
        return None
    if mask.dtype != torch.bool:
        raise ValueError(f"svg_ear_attention: key_padding_mask must be bool (True = real token), got {mask.dtype}")
    if mask.dim() == 4 and mask.shape[1:3] == (1, 1):
        mask = mask[:, 0, 0]
    if mask.dim() != 2 or mask.shape[0] not in (1, batch) or mask.shape[1] != seq_len:
        raise ValueError(f"svg_ear_attention: key_padding_mask must have shape (B, S) or (B, 1, 1, S) with "
                         f"B={batch}, S={seq_len}; got {tuple(mask.shape)}")
    if mask.device != device:
        raise ValueError(f"svg_ear_attention: key_padding_mask is on {mask.device}, q on {device}")
    return mask.expand(batch, seq_len)


def _video_tokens(num_video: int | None, seq_len: int) -> int:
    if num_video is None:
        return seq_len
    if not 1 <= num_video <= seq_len:
        raise ValueError(f"svg_ear_attention: num_video={num_video} must be in [1, S={seq_len}]")
    return int(num_video)


def _padded_video_reason(valid: torch.Tensor | None, num_video: int) -> str | None:
    if valid is not None and not bool(valid[:, :num_video].all()):
        return "key_padding_mask pads some video tokens (only text padding is supported sparsely)"
    return None


def _joint_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    valid: torch.Tensor | None,
    num_video: int,
    config: SvgEarConfig,
    state: SvgEarState | None,
    refresh_phase: int,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Video queries: SVG-EAR over video keys plus the valid text keys exactly; text queries: exact."""
    batch, seq_len = q.shape[0], q.shape[2]
    valid = valid if valid is not None else torch.ones(batch, seq_len, dtype=torch.bool, device=q.device)
    video, text = slice(0, num_video), slice(num_video, seq_len)
    shared = SharedKeys(k[:, :, text], v[:, :, text], valid[:, text])
    video_out, stats = run_pipeline(q[:, :, video], k[:, :, video], v[:, :, video], config, state, shared=shared,
                                    refresh_phase=refresh_phase)
    text_out = F.scaled_dot_product_attention(q[:, :, text], k, v, attn_mask=valid[:, None, None, :])
    return torch.cat([video_out, text_out], dim=2), stats


def budget_at(config: SvgEarConfig, timestep: torch.Tensor | float | None) -> SvgEarConfig:
    """``config`` routing with ``early_budget`` while ``timestep`` is above ``early_above_timestep``
    (as ``dense_above_timestep``, nothing changes without a timestep)."""
    if config.early_budget is None or timestep is None or timestep_value(timestep) <= config.early_above_timestep:
        return config
    return config.replace(budget=config.early_budget)


def dense_reason(
    seq_len: int, config: SvgEarConfig, layer: int | None, timestep: torch.Tensor | float | None
) -> str | None:
    """Why this call must run exact attention (short sequence, dense layer, warm-up step), or None."""
    if seq_len < config.min_seq_len:
        return f"S={seq_len} < min_seq_len={config.min_seq_len}"
    if layer is not None and layer < config.dense_layers:
        return f"layer {layer} < dense_layers={config.dense_layers}"
    cut = config.dense_above_timestep
    if cut is not None and timestep is not None:
        value = timestep_value(timestep)
        if value > cut:
            return f"warm-up: timestep {value:g} > dense_above_timestep={cut:g}"
    return None
