"""Video quality against a reference clip: PSNR and SSIM per frame, averaged over frames.

Both take clips ``(F, C, H, W)`` (``layout="FCHW"``, the default) or ``(F, H, W, C)`` (``"FHWC"``)
with values on ``[0, data_range]`` and compute in float64 on the inputs' device.

    PSNR_f = 10·log10(data_range² / MSE_f),   MSE_f = mean over (C, H, W) of (actual − reference)²
    SSIM_f = mean over channels c and pixels p (an 5-pixel border excluded) of
             (2·μx·μy + C1)(2·σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
             C1 = (0.01·data_range)², C2 = (0.03·data_range)²

SSIM is Wang et al. (2004): local means, variances (population, not sample) and covariance under a
Gaussian window of σ = 1.5 truncated at 3.5σ (11 × 11), the image extended by whole-sample symmetric
reflection at its edges, and the mean taken over the pixels at least the window radius from every
edge. This is scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=..., channel_axis=...)`` per frame, which the tests check.

    >>> import torch
    >>> clip = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    >>> psnr(clip, clip), ssim(clip, clip)
    (inf, 1.0)
    >>> round(psnr(torch.full((1, 1, 4, 4), 0.1), torch.zeros(1, 1, 4, 4)), 6)
    20.0

A frame identical to its reference has PSNR ``inf``, so the clip's mean is ``inf`` too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LAYOUTS = ("FCHW", "FHWC")
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)  # 5: an 11 × 11 window, as scipy.ndimage sizes it
K1, K2 = 0.01, 0.03
_FRAMES_PER_CHUNK = 8  # bounds the float64 working set on long, large clips


def _frames_first(actual: torch.Tensor, reference: torch.Tensor, layout: str,
                  data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both clips as float64 ``(F, C, H, W)`` on ``actual``'s device, after checking the arguments."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected one of {LAYOUTS}")
    if not (isinstance(data_range, (int, float)) and data_range > 0 and math.isfinite(data_range)):
        raise ValueError(f"data_range={data_range!r}: expected a positive finite number")
    if actual.dim() != 4 or reference.dim() != 4:
        raise ValueError(f"expected 4-d clips ({'F, C, H, W' if layout == 'FCHW' else 'F, H, W, C'}), got actual "
                         f"{tuple(actual.shape)} and reference {tuple(reference.shape)}")
    if actual.shape != reference.shape:
        raise ValueError(f"shape mismatch: actual {tuple(actual.shape)} vs reference {tuple(reference.shape)}")
    actual = actual.detach().to(torch.float64)
    reference = reference.detach().to(actual.device, torch.float64)
    if layout == "FHWC":
        actual, reference = actual.permute(0, 3, 1, 2), reference.permute(0, 3, 1, 2)
    return actual, reference


def psnr_per_frame(actual: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0,
                   layout: str = "FCHW") -> torch.Tensor:
    """``(F,)`` float64: each frame's PSNR in dB (``inf`` where a frame equals its reference)."""
    actual, reference = _frames_first(actual, reference, layout, data_range)
    mse = (actual - reference).square().flatten(1).mean(dim=1)
    return 10 * torch.log10(data_range**2 / mse)  # mse = 0 gives +inf


def psnr(actual: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0, layout: str = "FCHW") -> float:
    """Mean over frames of each frame's PSNR in dB against ``reference``."""
    return float(psnr_per_frame(actual, reference, data_range, layout).mean())


def _gaussian_window(device: torch.device) -> torch.Tensor:
    """The normalised 1-d Gaussian, σ = 1.5, over offsets −5…5."""
    offsets = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=torch.float64, device=device)
    weights = torch.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _symmetric_indices(size: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices extending ``0…size−1`` by ``radius`` on each side with whole-sample reflection
    (``c b a | a b c | c b a``, scipy's ``mode="reflect"``), repeated as often as needed."""
    positions = torch.arange(-radius, size + radius, device=device) % (2 * size)
    return torch.where(positions < size, positions, 2 * size - 1 - positions)


def _local_mean(images: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of ``(N, 1, H, W)`` images, same size out, symmetric edges."""
    height, width = images.shape[-2:]
    padded = images[..., _symmetric_indices(height, SSIM_RADIUS, images.device), :]
    padded = padded[..., _symmetric_indices(width, SSIM_RADIUS, images.device)]
    filtered = F.conv2d(padded, window.view(1, 1, -1, 1))
    return F.conv2d(filtered, window.view(1, 1, 1, -1))


def _ssim_frames(x: torch.Tensor, y: torch.Tensor, data_range: float, window: torch.Tensor) -> torch.Tensor:
    """``(F,)``: SSIM of each frame of ``(F, C, H, W)`` clips, channel means averaged."""
    frames, channels, height, width = x.shape
    x, y = x.reshape(frames * channels, 1, height, width), y.reshape(frames * channels, 1, height, width)
    mean_x, mean_y = _local_mean(x, window), _local_mean(y, window)
    var_x = _local_mean(x * x, window) - mean_x * mean_x
    var_y = _local_mean(y * y, window) - mean_y * mean_y
    cov_xy = _local_mean(x * y, window) - mean_x * mean_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    similarity = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
                  / ((mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)))
    r = SSIM_RADIUS
    interior = similarity[..., r:height - r, r:width - r]
    return interior.reshape(frames, channels, -1).mean(dim=2).mean(dim=1)


def ssim_per_frame(actual: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0,
                   layout: str = "FCHW") -> torch.Tensor:
    """``(F,)`` float64: each frame's SSIM against ``reference`` (mean over its channels)."""
    actual, reference = _frames_first(actual, reference, layout, data_range)
    height, width = actual.shape[-2:]
    window_size = 2 * SSIM_RADIUS + 1
    if height < window_size or width < window_size:
        raise ValueError(f"SSIM needs frames of at least {window_size} x {window_size} pixels (its Gaussian "
                         f"window), got {height} x {width}")
    window = _gaussian_window(actual.device)
    return torch.cat([_ssim_frames(actual[i:i + _FRAMES_PER_CHUNK], reference[i:i + _FRAMES_PER_CHUNK], data_range,
                                   window) for i in range(0, actual.shape[0], _FRAMES_PER_CHUNK)])


def ssim(actual: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0, layout: str = "FCHW") -> float:
    """Mean over frames of each frame's SSIM against ``reference`` (Wang et al. 2004, Gaussian σ = 1.5)."""
    return float(ssim_per_frame(actual, reference, data_range, layout).mean())
