"""Per-cluster means over a cluster-contiguous layout (Triton): a segmented reduction, no atomics.

With rows sorted by cluster, cluster ``c`` of group ``g`` is the row range ``[offsets[g,c], offsets[g,c+1])``
and its mean is::

    mean[g, c] = Σ_{r ∈ [offsets[g,c], offsets[g,c+1])} x[g, r] / (offsets[g,c+1] − offsets[g,c])

One program per (cluster, group) walks its range in tiles of ``block_n`` rows and accumulates in
float32 registers, so every output row is written once by one program: no atomics, and the result
does not depend on scheduling. An optional ``row_index`` reads row ``row_index[g, r]`` instead of
``r`` (k-means' update reads the points through the sort permutation instead of copying them), an
optional second tensor shares the walk (keys and values in one pass), and empty clusters get either
zeros or a ``fallback`` row (k-means: the previous centroid). With ``row_index``, the rows read can
also be written out in sorted order (``gathered``): the permutation and the means in one pass over
the inputs, instead of a copy and a second read of it. Load balance follows cluster sizes: one
huge cluster is one long loop.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _segment_mean_kernel(
    x_ptr, y_ptr, index_ptr, offsets_ptr, fallback_ptr, x_out_ptr, y_out_ptr, x_copy_ptr, y_copy_ptr,
    DX, DY, num_rows,
    stride_xg, stride_xn, stride_xd,
    stride_yg, stride_yn, stride_yd,
    stride_ig, stride_in,
    stride_og, stride_oc,
    stride_fg, stride_fc, stride_fd,
    stride_xog, stride_xoc, stride_xod,
    stride_yog, stride_yoc, stride_yod,
    HAS_Y: tl.constexpr, HAS_INDEX: tl.constexpr, HAS_FALLBACK: tl.constexpr, HAS_COPY: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_DX: tl.constexpr, BLOCK_DY: tl.constexpr,
):
    cluster = tl.program_id(0)
    group = tl.program_id(1).to(tl.int64)
    start = tl.load(offsets_ptr + group * stride_og + cluster * stride_oc)
    end = tl.load(offsets_ptr + group * stride_og + (cluster + 1) * stride_oc)
    dx = tl.arange(0, BLOCK_DX)
    dy = tl.arange(0, BLOCK_DY)
    # A 2-D accumulator reduced once at the end: BLOCK_N partial sums per column, not one long chain.
    acc_x = tl.zeros([BLOCK_N, BLOCK_DX], dtype=tl.float32)
    acc_y = tl.zeros([BLOCK_N, BLOCK_DY], dtype=tl.float32)
    for row_start in range(start, end, BLOCK_N):
        rows = row_start + tl.arange(0, BLOCK_N)
        in_range = rows < end
        if HAS_INDEX:
            src = tl.load(index_ptr + group * stride_ig + rows * stride_in, mask=in_range, other=0)
        else:
            src = rows
        x_mask = in_range[:, None] & (dx < DX)[None, :]
        x = tl.load(x_ptr + group * stride_xg + src[:, None] * stride_xn + dx[None, :] * stride_xd, mask=x_mask,
                    other=0.0)
        acc_x += x.to(tl.float32)
        if HAS_COPY:
            tl.store(x_copy_ptr + (group * num_rows + rows)[:, None] * DX + dx[None, :], x, mask=x_mask)
        if HAS_Y:
            y_mask = in_range[:, None] & (dy < DY)[None, :]
            y = tl.load(y_ptr + group * stride_yg + src[:, None] * stride_yn + dy[None, :] * stride_yd, mask=y_mask,
                        other=0.0)
            acc_y += y.to(tl.float32)
            if HAS_COPY:
                tl.store(y_copy_ptr + (group * num_rows + rows)[:, None] * DY + dy[None, :], y, mask=y_mask)
    count = (end - start).to(tl.float32)
    denominator = tl.maximum(count, 1.0)
    mean_x = tl.sum(acc_x, axis=0) / denominator
    if HAS_FALLBACK:
        previous = tl.load(fallback_ptr + group * stride_fg + cluster * stride_fc + dx * stride_fd,
                           mask=dx < DX, other=0.0)
        mean_x = tl.where(count > 0, mean_x, previous.to(tl.float32))
    tl.store(x_out_ptr + group * stride_xog + cluster * stride_xoc + dx * stride_xod,
             mean_x.to(x_out_ptr.dtype.element_ty), mask=dx < DX)
    if HAS_Y:
        mean_y = tl.sum(acc_y, axis=0) / denominator
        tl.store(y_out_ptr + group * stride_yog + cluster * stride_yoc + dy * stride_yod,
                 mean_y.to(y_out_ptr.dtype.element_ty), mask=dy < DY)


def _check_rows(name: str, t: torch.Tensor, groups: int | None, rows: int | None) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 3:
        shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"segment_means: {name} must be a (G, N, D) tensor, got {shape}")
    if t.dtype not in _DTYPES:
        raise ValueError(f"segment_means: {name} must be float16, bfloat16 or float32, got {t.dtype}")
    if groups is not None and (t.shape[0], t.shape[1]) != (groups, rows):
        raise ValueError(f"segment_means: {name} must have (G, N) = {(groups, rows)}, got {tuple(t.shape)}")


def _check_out(name: str, out: torch.Tensor, shape: tuple[int, ...], like: torch.Tensor) -> None:
    if tuple(out.shape) != shape or out.dtype != like.dtype or out.device != like.device:
        raise ValueError(f"segment_means: {name} must be {like.dtype} of shape {shape} on {like.device}, "
                         f"got {out.dtype} of shape {tuple(out.shape)} on {out.device}")


def segment_means(
    x: torch.Tensor,
    offsets: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    row_index: torch.Tensor | None = None,
    fallback: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    y_out: torch.Tensor | None = None,
    gathered: tuple[torch.Tensor, torch.Tensor | None] | None = None,
    block_n: int = 32,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Means of ``x`` (and ``y``) ``(G, N, ·)`` over the row ranges of ``offsets`` ``(G, C+1)``.

    ``row_index`` ``(G, N)``: read ``x[g, row_index[g, r]]`` for sorted row ``r`` (a permutation);
    ``gathered`` (with ``row_index``): contiguous ``(G, N, ·)`` tensors like ``x`` (and ``y``) that
    receive the rows in sorted order, ``permute(x, row_index)``, as they are read. Rows outside every
    range (``offsets[g, -1] < N``) are not written.
    ``fallback`` ``(G, C, Dx)``: the row an empty cluster gets instead of zeros (``x`` only).
    Returns ``(x_means (G, C, Dx), y_means (G, C, Dy) or None)`` in the inputs' dtypes.
    """
    _check_rows("x", x, None, None)
    groups, rows, dx = x.shape
    if y is not None:
        _check_rows("y", y, groups, rows)
    if offsets.dim() != 2 or offsets.shape[0] != groups or offsets.shape[1] < 2 or offsets.dtype.is_floating_point:
        raise ValueError(f"segment_means: offsets must be an integer (G={groups}, C+1) tensor with C >= 1, "
                         f"got {offsets.dtype} of shape {tuple(offsets.shape)}")
    if offsets.device != x.device or (row_index is not None and row_index.device != x.device):
        raise ValueError(f"segment_means: offsets and row_index must be on x's device {x.device}")
    clusters = offsets.shape[1] - 1
    if row_index is not None and (tuple(row_index.shape) != (groups, rows) or row_index.dtype.is_floating_point):
        raise ValueError(f"segment_means: row_index must be an integer (G, N) = {(groups, rows)} tensor, "
                         f"got {row_index.dtype} of shape {tuple(row_index.shape)}")
    if fallback is not None:
        _check_out("fallback", fallback, (groups, clusters, dx), x)
    if block_n < 1 or block_n & (block_n - 1):
        raise ValueError(f"segment_means: block_n must be a power of two, got {block_n}")
    if out is None:
        out = torch.empty((groups, clusters, dx), dtype=x.dtype, device=x.device)
    _check_out("out", out, (groups, clusters, dx), x)
    if y is not None:
        if y_out is None:
            y_out = torch.empty((groups, clusters, y.shape[2]), dtype=y.dtype, device=y.device)
        _check_out("y_out", y_out, (groups, clusters, y.shape[2]), y)
    if gathered is not None:
        if row_index is None:
            raise ValueError("segment_means: gathered needs row_index (the rows to gather)")
        if (gathered[1] is None) != (y is None):
            raise ValueError("segment_means: gathered must hold a tensor for y exactly when y is given")
        for name, target, like in (("gathered[0]", gathered[0], x), ("gathered[1]", gathered[1], y)):
            if target is not None and not (tuple(target.shape) == tuple(like.shape) and target.dtype == like.dtype
                                           and target.device == like.device and target.is_contiguous()):
                raise ValueError(f"segment_means: {name} must be a contiguous {like.dtype} tensor of shape "
                                 f"{tuple(like.shape)} on {like.device}, got {target.dtype} {tuple(target.shape)}")
    if out.numel() == 0:
        return out, y_out
    y_or_x, y_out_or_out = (y, y_out) if y is not None else (x, out)
    x_copy, y_copy = gathered if gathered is not None else (out, None)
    y_copy = y_copy if y_copy is not None else x_copy
    index_or_offsets = row_index if row_index is not None else offsets
    fallback_or_out = fallback if fallback is not None else out
    _segment_mean_kernel[(clusters, groups)](
        x, y_or_x, index_or_offsets, offsets, fallback_or_out, out, y_out_or_out, x_copy, y_copy,
        dx, y_or_x.shape[2], rows,
        *x.stride(), *y_or_x.stride(), *index_or_offsets.stride(), *offsets.stride(),
        *fallback_or_out.stride(), *out.stride(), *y_out_or_out.stride(),
        HAS_Y=y is not None, HAS_INDEX=row_index is not None, HAS_FALLBACK=fallback is not None,
        HAS_COPY=gathered is not None,
        BLOCK_N=block_n, BLOCK_DX=triton.next_power_of_2(dx), BLOCK_DY=triton.next_power_of_2(y_or_x.shape[2]),
    )
    return out, (y_out if y is not None else None)


def sorted_with_stats(
    keys: torch.Tensor, values: torch.Tensor, perm: torch.Tensor, offsets: torch.Tensor, *, block_n: int = 32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(keys_sorted, values_sorted, k̄, v̄)``: the keys and values in cluster order, ``permute(·, perm)``,
    and their cluster means, in one pass over the unsorted inputs (the permutation's copy is not read
    again). Equals :func:`~svg_ear_compile.kernels.permute_ref.permute` followed by :func:`segment_means`;
    ``perm`` and ``offsets`` are one layout's; inputs may be strided views (each row contiguous)."""
    if keys.dim() != 3 or values.dim() != 3:
        raise ValueError(f"sorted_with_stats: keys and values must be (G, N, D), got {tuple(keys.shape)} and "
                         f"{tuple(values.shape)}")
    keys_sorted = torch.empty(keys.shape, dtype=keys.dtype, device=keys.device)
    values_sorted = torch.empty(values.shape, dtype=values.dtype, device=values.device)
    key_centroids, value_means = segment_means(keys, offsets, values, row_index=perm,
                                               gathered=(keys_sorted, values_sorted), block_n=block_n)
    assert value_means is not None
    return keys_sorted, values_sorted, key_centroids, value_means
