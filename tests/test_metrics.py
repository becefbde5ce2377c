# PSNR and SSIM of a clip equal scikit-image's per frame (the oracle), averaged over frames.
import math

import numpy as np
import pytest
import torch

from svg_ear_compile.metrics import psnr, psnr_per_frame, ssim, ssim_per_frame

skimage_metrics = pytest.importorskip("skimage.metrics")


def _skimage_psnr(actual: torch.Tensor, reference: torch.Tensor, data_range: float) -> float:
    return float(np.mean([skimage_metrics.peak_signal_noise_ratio(r.double().numpy(), a.double().numpy(),
                                                                  data_range=data_range)
                          for a, r in zip(actual, reference, strict=True)]))


def _skimage_ssim(actual: torch.Tensor, reference: torch.Tensor, data_range: float) -> float:
    """``(F, C, H, W)`` clips, channel axis 0 of each frame."""
    return float(np.mean([skimage_metrics.structural_similarity(
        a.double().numpy(), r.double().numpy(), data_range=data_range, channel_axis=0, gaussian_weights=True,
        sigma=1.5, use_sample_covariance=False) for a, r in zip(actual, reference, strict=True)]))


def _structured_clip(frames: int, channels: int, height: int, width: int, seed: int) -> torch.Tensor:
    """Smooth moving gradients and a bright square moving across frames, values on [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(height, 1)
    xs = torch.linspace(0, 1, width).view(1, width)
    clip = torch.empty(frames, channels, height, width, dtype=torch.float64)
    for f in range(frames):
        for c in range(channels):
            phase = float(torch.rand((), generator=gen)) * 6
            clip[f, c] = 0.5 + 0.4 * torch.sin(6 * xs + 4 * ys + phase + 0.3 * f)
        top, left = (2 * f) % (height - 6), (3 * f) % (width - 6)
        clip[f, :, top:top + 6, left:left + 6] = 0.95
    return clip


def _clips(kind: str, shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference clip and a degraded copy (noise, a shift and a blur of one channel), clipped to [0, 1]."""
    gen = torch.Generator().manual_seed(seed + 100)
    reference = torch.rand(shape, generator=gen, dtype=torch.float64) if kind == "random" else \
        _structured_clip(*shape, seed=seed)
    actual = reference + 0.05 * torch.randn(shape, generator=gen, dtype=torch.float64)
    actual[:, 0] = torch.roll(actual[:, 0], shifts=1, dims=-1)
    return actual.clamp(0, 1), reference


CASES = [("random", (3, 3, 24, 32), 0), ("random", (2, 1, 11, 17), 1), ("structured", (4, 3, 40, 36), 2),
         ("structured", (2, 2, 13, 64), 3)]


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_psnr_equals_skimage(kind, shape, seed):
    actual, reference = _clips(kind, shape, seed)
    expected = _skimage_psnr(actual, reference, 1.0)
    assert psnr(actual, reference) == pytest.approx(expected, abs=1e-6)
    assert psnr(actual.float(), reference.float()) == pytest.approx(_skimage_psnr(actual.float(), reference.float(),
                                                                                  1.0), abs=1e-6)
    assert psnr(255 * actual, 255 * reference, data_range=255.0) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("kind", "shape", "seed"), CASES)
def test_ssim_equals_skimage(kind, shape, seed):
    actual, reference = _clips(kind, shape, seed)
    assert ssim(actual, reference) == pytest.approx(_skimage_ssim(actual, reference, 1.0), abs=1e-3)
    assert ssim(255 * actual, 255 * reference, data_range=255.0) == pytest.approx(
        _skimage_ssim(255 * actual, 255 * reference, 255.0), abs=1e-3)


def test_ssim_matches_skimage_closely_in_float64():
    # Same formula, same window, same edges: agreement far tighter than the 1e-3 asked for.
    actual, reference = _clips("structured", (3, 3, 32, 48), 5)
    per_frame = ssim_per_frame(actual, reference)
    for f in range(3):
        expected = _skimage_ssim(actual[f:f + 1], reference[f:f + 1], 1.0)
        assert float(per_frame[f]) == pytest.approx(expected, abs=1e-10)


def test_channels_last_layout_gives_the_same_values():
    actual, reference = _clips("structured", (3, 3, 20, 24), 6)
    last = dict(layout="FHWC")
    a, r = actual.permute(0, 2, 3, 1), reference.permute(0, 2, 3, 1)
    assert psnr(a, r, **last) == pytest.approx(psnr(actual, reference), abs=1e-12)
    assert ssim(a, r, **last) == pytest.approx(ssim(actual, reference), abs=1e-12)


def test_identical_clips_give_inf_and_one():
    clip = torch.rand(3, 3, 16, 16)
    assert psnr(clip, clip.clone()) == math.inf
    assert ssim(clip, clip.clone()) == 1.0


def test_per_frame_values_are_averaged():
    actual, reference = _clips("random", (3, 3, 16, 16), 7)
    assert psnr(actual, reference) == pytest.approx(float(psnr_per_frame(actual, reference).mean()))
    one_frame_psnr = psnr(actual[1:2], reference[1:2])
    assert float(psnr_per_frame(actual, reference)[1]) == pytest.approx(one_frame_psnr)


def test_bad_arguments_raise_clear_errors():
    clip = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"shape mismatch: actual \(2, 3, 16, 16\) vs reference \(2, 3, 16, 15\)"):
        psnr(clip, clip[..., :15])
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(clip, clip[:1])
    with pytest.raises(ValueError, match="expected 4-d clips"):
        ssim(clip[0], clip[0])
    with pytest.raises(ValueError, match="layout='CHW'"):
        psnr(clip, clip, layout="CHW")
    with pytest.raises(ValueError, match="data_range=0"):
        psnr(clip, clip, data_range=0)
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(clip[..., :10], clip[..., :10])
