"""Rows gathered into cluster order, Triton (oracle: :func:`.permute_ref.permute`).

``out[g, r] = x[g, perm[g, r]]`` for one tensor, or two sharing one ``perm`` (keys and values, in
one pass). ``torch.gather`` with the index expanded over the feature axis computes an address from an
int64 index for every element; here a program copies ``block_rows`` whole rows, one index per row.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _copy_rows(src_ptr, src_row_stride, dst_ptr, source_rows, rows, row_mask, width: tl.constexpr,
               BLOCK: tl.constexpr):
    """``dst[rows, :width] = src[source_rows, :width]``: ``dst`` row-major, ``src`` rows ``src_row_stride``
    apart (each row's ``width`` elements contiguous)."""
    offs = tl.arange(0, BLOCK)
    mask = row_mask[:, None] & (offs[None, :] < width)
    tile = tl.load(src_ptr + source_rows[:, None].to(tl.int64) * src_row_stride + offs[None, :], mask=mask)
    tl.store(dst_ptr + rows[:, None] * width + offs[None, :], tile, mask=mask)


@triton.jit
def _permute_rows_kernel(
    x_ptr, y_ptr, perm_ptr, x_out_ptr, y_out_ptr, num_rows,
    stride_xg, stride_xn, stride_yg, stride_yn,
    DX: tl.constexpr, DY: tl.constexpr, HAS_Y: tl.constexpr,
    BLOCK_ROWS: tl.constexpr, BLOCK_DX: tl.constexpr, BLOCK_DY: tl.constexpr,
):
    group = tl.program_id(1).to(tl.int64)
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    row_mask = rows < num_rows
    source_rows = tl.load(perm_ptr + group * num_rows + rows, mask=row_mask, other=0)
    _copy_rows(x_ptr + group * stride_xg, stride_xn, x_out_ptr + group * num_rows * DX, source_rows, rows,
               row_mask, DX, BLOCK_DX)
    if HAS_Y:
        _copy_rows(y_ptr + group * stride_yg, stride_yn, y_out_ptr + group * num_rows * DY, source_rows, rows,
                   row_mask, DY, BLOCK_DY)


def permute_rows(
    x: torch.Tensor, perm: torch.Tensor, y: torch.Tensor | None = None, *, block_rows: int = 32, num_warps: int = 4,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(permute(x, perm), permute(y, perm))`` for ``(G, N, D)`` tensors and a ``(G, N)`` integer ``perm``
    whose rows are permutations of ``range(N)`` (not checked: reading them would sync the host).

    Inputs may be strided views (say ``(B, S, H, D)`` seen as ``(B·H, S, D)``): rows are read where
    they lie, with no contiguous copy first. The outputs are contiguous.

    Example (``dev`` is "cpu" under ``TRITON_INTERPRET=1``):
        >>> import os, torch
        >>> from svg_ear_compile.kernels.permute_ref import permute
        >>> dev = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
        >>> x, perm = torch.randn(2, 5, 8, device=dev), torch.stack([torch.randperm(5) for _ in range(2)]).to(dev)
        >>> bool(torch.equal(permute_rows(x, perm)[0], permute(x, perm)))
        True
    """
    tensors = {"x": x} if y is None else {"x": x, "y": y}
    for name, t in tensors.items():
        if t.dim() != 3 or t.dtype not in _DTYPES:
            raise ValueError(f"permute_rows: {name} must be a (G, N, D) float16/bfloat16/float32 tensor, "
                             f"got {tuple(t.shape)} {t.dtype}")
        if t.shape[:2] != tuple(perm.shape) or t.device != perm.device:
            raise ValueError(f"permute_rows: {name} {tuple(t.shape)} on {t.device} does not match perm "
                             f"{tuple(perm.shape)} on {perm.device}")
    if perm.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"permute_rows: perm must be int32 or int64, got {perm.dtype}")
    if block_rows < 1 or block_rows & (block_rows - 1):
        raise ValueError(f"permute_rows: block_rows={block_rows} must be a power of two")
    x, y = _rows_contiguous(x), _rows_contiguous(y) if y is not None else None
    x_out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    y_out = torch.empty(y.shape, dtype=y.dtype, device=y.device) if y is not None else None
    groups, num_rows = perm.shape
    if x.numel() == 0 and (y is None or y.numel() == 0):
        return x_out, y_out
    dy = y.shape[2] if y is not None else 1
    grid = (triton.cdiv(num_rows, block_rows), groups)
    y_in = y if y is not None else x
    _permute_rows_kernel[grid](
        x, y_in, perm.contiguous(), x_out, y_out if y is not None else x_out, num_rows,
        x.stride(0), x.stride(1), y_in.stride(0), y_in.stride(1),
        DX=x.shape[2], DY=dy, HAS_Y=y is not None, BLOCK_ROWS=block_rows,
        BLOCK_DX=triton.next_power_of_2(max(x.shape[2], 1)), BLOCK_DY=triton.next_power_of_2(dy),
        num_warps=num_warps)
    return x_out, y_out


def _rows_contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when each row's features are contiguous (any group and row strides: a head-major
    view of a token-major tensor is read in place), else a contiguous copy."""
    return t if t.shape[2] <= 1 or t.stride(2) == 1 else t.contiguous()
