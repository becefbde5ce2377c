"""Structured, video-like attention inputs for tests, the demo and benchmarks.

Real video DiT attention is not Gaussian noise: tokens of a (frames × height × width) grid carry a
smooth scene seen by a moving camera, with objects moving on top, so queries and keys form
semantic clusters and attention is local in space-time. This module builds such Q, K, V:

* scene features: random low-frequency Fourier features of the camera-panned position (x + u·t, y + w·t);
* objects: a few Gaussian blobs moving with their own velocities, each adding its own feature vector;
* position features (a smooth stand-in for RoPE) so nearby tokens attend to each other;
* per head, random projections of these features to Q, K, V plus a little noise, Q and K
  RMS-normalised (QK-norm) and scaled so the logits spread like a trained model's.
"""

from __future__ import annotations

import math

import torch


def video_grid(frames: int, height: int, width: int) -> torch.Tensor:
    """Token coordinates ``(S, 3)`` as (t, y, x) in [0, 1), frame-major like a patchified latent."""
    t, y, x = torch.meshgrid(
        torch.arange(frames) / max(frames, 1),
        torch.arange(height) / max(height, 1),
        torch.arange(width) / max(width, 1),
        indexing="ij",
    )
    return torch.stack([t, y, x], dim=-1).reshape(-1, 3).double()


def _fourier(points: torch.Tensor, num: int, max_freq: float, gen: torch.Generator) -> torch.Tensor:
    freqs = torch.randn(points.shape[1], num, generator=gen, dtype=torch.float64) * max_freq
    phase = torch.rand(num, generator=gen, dtype=torch.float64) * 2 * math.pi
    return torch.cos(points @ freqs + phase)


def video_features(frames: int, height: int, width: int, *, num_objects: int = 4, seed: int = 0) -> torch.Tensor:
    """Per-token features ``(S, 96)`` of a panned scene with moving objects (float64)."""
    gen = torch.Generator().manual_seed(seed)
    grid = video_grid(frames, height, width)
    t, yx = grid[:, :1], grid[:, 1:]
    camera = (torch.rand(2, generator=gen, dtype=torch.float64) - 0.5) * 0.6
    scene = _fourier(yx + t * camera, 48, 6.0, gen)

    objects = torch.zeros(grid.shape[0], 32, dtype=torch.float64)
    for _ in range(num_objects):
        start = torch.rand(2, generator=gen, dtype=torch.float64)
        velocity = (torch.rand(2, generator=gen, dtype=torch.float64) - 0.5) * 0.8
        radius = 0.08 + 0.12 * torch.rand(1, generator=gen, dtype=torch.float64)
        centre = start + t * velocity
        weight = torch.exp(-((yx - centre) ** 2).sum(-1, keepdim=True) / (2 * radius**2))
        objects += weight * torch.randn(32, generator=gen, dtype=torch.float64) * 2.0
    position = _fourier(grid * torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64), 16, 4.0, gen)
    return torch.cat([scene, objects, position], dim=-1)


def video_qkv(
    batch: int = 1,
    heads: int = 2,
    frames: int = 8,
    height: int = 16,
    width: int = 16,
    head_dim: int = 64,
    *,
    logit_std: float = 3.0,
    noise: float = 0.1,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``q, k, v`` of shape ``(batch, heads, frames·height·width, head_dim)``.

    ``logit_std`` is the standard deviation of ``q·k/√d`` over random pairs (trained video DiTs
    show roughly 2–5); each batch element gets its own clip (seed + b).
    """
    gen = torch.Generator().manual_seed(seed + 7919)
    clips = [video_features(frames, height, width, seed=seed + b) for b in range(batch)]
    features = torch.stack(clips)
    features = (features - features.mean(1, keepdim=True)) / features.std(1, keepdim=True)
    dim = features.shape[-1]

    def project(scale: float) -> torch.Tensor:
        w = torch.randn(heads, dim, head_dim, generator=gen, dtype=torch.float64) / math.sqrt(dim)
        x = torch.einsum("bsf,hfd->bhsd", features, w)
        x = x + noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)
        return x * scale

    def rms_norm(x: torch.Tensor) -> torch.Tensor:
        return x / x.square().mean(-1, keepdim=True).sqrt()

    q, k, v = rms_norm(project(1.0)), rms_norm(project(1.0)), project(1.0)
    # With RMS-normalised q, k, the logit q·k/√d has std ≈ 1 for unrelated tokens; scale to logit_std.
    gain = math.sqrt(logit_std)
    return tuple(x.to(dtype=dtype, device=device).contiguous() for x in (q * gain, k * gain, v))
