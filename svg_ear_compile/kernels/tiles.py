"""Tile sizes of the sparse attention kernel: a small table, no autotuning sweep at call time.

Keyed by (GPU family, head-dim bucket, length bucket); a tuner (or a profile) overrides any field by
passing it explicitly. A call is "long" when its sequence is long and, where the density is known (the
routing budget), a query cluster visits many keys (``density · seq_len``)::

    >>> tile_config(128, 75_600, family="H100")
    TileConfig(block_m=128, block_n=128, num_warps=8, num_stages=3, remainder_m=None)
    >>> tile_config(128, 32_760, family="H100", density=0.02)  # 655 keys per query cluster
    TileConfig(block_m=64, block_n=64, num_warps=4, num_stages=3, remainder_m=None)
    >>> tile_config(128, 75_600, family="H100", block_m=64)
    TileConfig(block_m=64, block_n=128, num_warps=8, num_stages=3, remainder_m=None)

Unknown GPUs use the ``"default"`` family; CPU tensors and ``TRITON_INTERPRET=1`` use
``"interpreter"`` (small tiles: the interpreter runs each program in numpy).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch


@dataclass(frozen=True)
class TileConfig:
    """Launch settings of the sparse attention kernel; ``remainder_m`` (None: off) runs each query
    cluster's last tile of at most that many rows with tiles of that height (a second launch)."""

    block_m: int
    block_n: int
    num_warps: int
    num_stages: int
    remainder_m: int | None = None


LONG_SEQUENCE = 16_384  # tokens; from here on the grid has many row tiles per head
# Keys a query cluster visits (density · seq_len) below which a call takes the "short" tiles: with few key
# tiles per row tile, small ones do better (two 64×64 programs fit on one SM at a time). Measured on an
# H100 at the op's operating point (QC 128, KC 1,024, 64 listed centroids): at 655 keys (Wan2.1-1.3B 480p,
# 2%) 64×64 tiles took 9% off the kernel against 128×128; at 2,268 (14B 720p, 3%) they cost 6% more.
FEW_KEYS = 1_024

# (family, head-dim bucket, "short" | "long") -> tiles. Head dims 40/64 use the 64 bucket, 96/128 the 128 one.
# ("H100", 128, "long") is measured (bf16, Wan2.1-1.3B-480p and 14B-720p at 10-30% density, benchmarks/RESULTS.md):
# the best of seven tiles, or within 2.5% of it, at all six points; three stages instead of two took another
# 2-4% off the kernel after the softmax step moved the scale into the exponent (fifth session). H200 has the same
# SM and shared memory, so it takes the H100 entry. The other GPU entries are first guesses (flash-attention-like).
_TABLE: dict[tuple[str, int, str], TileConfig] = {
    ("H100", 64, "short"): TileConfig(64, 64, 4, 3),
    ("H100", 64, "long"): TileConfig(128, 64, 4, 3),
    ("H100", 128, "short"): TileConfig(64, 64, 4, 3),
    ("H100", 128, "long"): TileConfig(128, 128, 8, 3),
    ("default", 64, "short"): TileConfig(64, 32, 4, 2),
    ("default", 64, "long"): TileConfig(64, 64, 4, 2),
    ("default", 128, "short"): TileConfig(64, 32, 4, 2),
    ("default", 128, "long"): TileConfig(64, 64, 4, 2),
}
_SAME_TILES = {"H200": "H100"}  # family -> the family whose table entries it uses
_INTERPRETER = TileConfig(32, 32, 4, 1)
_KNOWN_FAMILIES = ("H100", "H200", "A100", "L40S")


def gpu_family(device: torch.device | str | None = None) -> str:
    """``"interpreter"`` for CPU or ``TRITON_INTERPRET=1``, else the family in the CUDA device name, else
    ``"default"``. Only asks CUDA for the name when ``device`` is a CUDA device."""
    device = torch.device(device) if device is not None else None
    if os.environ.get("TRITON_INTERPRET") == "1" or device is None or device.type != "cuda":
        return "interpreter"
    name = torch.cuda.get_device_name(device).upper()
    return next((family for family in _KNOWN_FAMILIES if family in name), "default")


def tile_config(
    head_dim: int,
    seq_len: int,
    device: torch.device | str | None = None,
    *,
    family: str | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
    num_warps: int | None = None,
    num_stages: int | None = None,
    remainder_m: int | None = None,
    density: float | None = None,
) -> TileConfig:
    """Table entry for ``(family, head_dim, seq_len, density)`` with any explicitly given field replacing it.

    ``family`` defaults to :func:`gpu_family` of ``device``; families without an entry fall back to
    ``"default"``. Head dims above 128 use the 128 bucket (the kernel pads to a power of two).
    ``density``: the share of keys a query cluster attends (the routing budget; None: unknown, the
    sequence length alone picks the bucket).
    """
    if head_dim < 1 or seq_len < 1:
        raise ValueError(f"tile_config: head_dim={head_dim} and seq_len={seq_len} must be >= 1")
    if density is not None and not 0 < density <= 1:
        raise ValueError(f"tile_config: density={density} must be in (0, 1]")
    family = family if family is not None else gpu_family(device)
    if family == "interpreter":
        base = _INTERPRETER
    else:
        many_keys = density is None or density * seq_len >= FEW_KEYS
        key = (64 if head_dim <= 64 else 128, "long" if seq_len >= LONG_SEQUENCE and many_keys else "short")
        base = _TABLE.get((_SAME_TILES.get(family, family), *key), _TABLE[("default", *key)])
    if remainder_m is None and base.remainder_m is not None and base.remainder_m >= (block_m or base.block_m):
        base = replace(base, remainder_m=None)  # the table's remainder tile does not fit an overridden block_m
    overrides = dict(block_m=block_m, block_n=block_n, num_warps=num_warps, num_stages=num_stages,
                     remainder_m=remainder_m)
    return replace(base, **{name: value for name, value in overrides.items() if value is not None})
