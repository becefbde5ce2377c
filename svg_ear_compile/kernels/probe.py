"""EAR's error probe in Triton: ``log ε̂`` per (query point, key cluster), streamed over cluster-sorted keys.

For a query point ``p`` (a query-cluster centroid ``q̄_i``) and key cluster ``j``, with
``a_t = s·p·k_t``, ``c = s·p·k̄_j``, the running block max ``m = max(c, max_t a_t)``,
``E_t = e^{a_t−m}`` and ``C = e^{c−m}``::

    ε̂_ij = e^{2m} Σ_{t∈K_j} E_t²‖v_t − v̄_j‖² + 2E_t(E_t − C)(v_t − v̄_j)·v̄_j + (E_t − C)²‖v̄_j‖²

the centred form of ``Σ_t ‖e^{a_t} v_t − e^{c} v̄_j‖²`` (see ``probe_ref``: nothing cancels). One
program takes a tile of query points and one key cluster and walks the cluster's contiguous rows
``[offsets[j], offsets[j+1])`` in tiles, keeping per query point the running ``m`` and the sum scaled
by ``e^{−2m}``. Every summand is quadratic in ``(E, C)``, so when ``m`` grows to ``m'`` the sum is
rescaled by ``e^{2(m−m')}``. No ``R × N`` matrix exists; the keys are read ``⌈R / block_r⌉`` times.

The logits are taken on centred keys, ``a_t − c = s·p·(k_t − k̄_j)``: the small difference that
decides ``E_t − C`` is computed directly rather than as the difference of two large logits, so a
low-precision ``tl.dot`` (tf32, bf16) loses precision relative to that difference, not to ``a_t``.
Empty clusters (and exact summaries) give ``-inf``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_PRECISIONS = ("ieee", "tf32", "tf32x3")


@triton.jit
def _probe_kernel(
    points_ptr, keys_ptr, values_ptr, offsets_ptr, key_centroids_ptr, value_means_ptr, out_ptr,
    R, D, DV, scale,
    stride_pg, stride_pr, stride_pd,
    stride_kg, stride_kn, stride_kd,
    stride_vg, stride_vn, stride_vd,
    stride_og, stride_oc,
    stride_cg, stride_cc, stride_cd,
    stride_mg, stride_mc, stride_md,
    stride_eg, stride_er, stride_ec,
    BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
):
    cluster = tl.program_id(0)
    group = tl.program_id(2).to(tl.int64)
    points_index = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)
    dims = tl.arange(0, BLOCK_D)
    value_dims = tl.arange(0, BLOCK_DV)
    start = tl.load(offsets_ptr + group * stride_og + cluster * stride_oc)
    end = tl.load(offsets_ptr + group * stride_og + (cluster + 1) * stride_oc)

    points = tl.load(points_ptr + group * stride_pg + points_index[:, None] * stride_pr + dims[None, :] * stride_pd,
                     mask=(points_index < R)[:, None] & (dims < D)[None, :], other=0.0)
    key_centroid = tl.load(key_centroids_ptr + group * stride_cg + cluster * stride_cc + dims * stride_cd,
                           mask=dims < D, other=0.0).to(tl.float32)
    value_mean = tl.load(value_means_ptr + group * stride_mg + cluster * stride_mc + value_dims * stride_md,
                         mask=value_dims < DV, other=0.0).to(tl.float32)
    centroid_logit = scale * tl.sum(points.to(tl.float32) * key_centroid[None, :], axis=1)  # c, (BLOCK_R,)
    mean_sq = tl.sum(value_mean * value_mean, axis=0)

    # Relative to c: shift = m − c = max(0, max_t a_t − c) >= 0, and scaled_error = ε̂ e^{−2m}.
    shift = tl.zeros([BLOCK_R], dtype=tl.float32)
    scaled_error = tl.zeros([BLOCK_R], dtype=tl.float32)
    for row_start in range(start, end, BLOCK_N):
        rows = row_start + tl.arange(0, BLOCK_N)
        in_range = rows < end
        keys = tl.load(keys_ptr + group * stride_kg + rows[:, None] * stride_kn + dims[None, :] * stride_kd,
                       mask=in_range[:, None] & (dims < D)[None, :], other=0.0)
        centred_keys = (keys.to(tl.float32) - key_centroid[None, :]).to(keys.dtype)
        logit_gap = scale * tl.dot(points, tl.trans(centred_keys), input_precision=INPUT_PRECISION)  # a_t − c
        logit_gap = tl.where(in_range[None, :], logit_gap, float("-inf"))
        new_shift = tl.maximum(shift, tl.max(logit_gap, axis=1))
        rescale = tl.exp(shift - new_shift)
        shift = new_shift

        values = tl.load(values_ptr + group * stride_vg + rows[:, None] * stride_vn + value_dims[None, :] * stride_vd,
                         mask=in_range[:, None] & (value_dims < DV)[None, :], other=0.0).to(tl.float32)
        deviation = tl.where(in_range[:, None], values - value_mean[None, :], 0.0)
        deviation_sq = tl.sum(deviation * deviation, axis=1)
        deviation_dot_mean = tl.sum(deviation * value_mean[None, :], axis=1)

        token_weight = tl.exp(logit_gap - shift[:, None])  # E_t; 0 outside the cluster
        centroid_weight = tl.exp(-shift)  # C
        gap = token_weight - centroid_weight[:, None]
        terms = (token_weight * token_weight * deviation_sq[None, :]
                 + 2.0 * token_weight * gap * deviation_dot_mean[None, :]
                 + gap * gap * mean_sq)
        terms = tl.where(in_range[None, :], terms, 0.0)
        scaled_error = scaled_error * rescale * rescale + tl.sum(terms, axis=1)

    log_error = tl.log(tl.maximum(scaled_error, 0.0)) + 2.0 * (centroid_logit + shift)
    log_error = tl.where(end > start, log_error, float("-inf"))
    tl.store(out_ptr + group * stride_eg + points_index * stride_er + cluster * stride_ec, log_error,
             mask=points_index < R)


def _check(name: str, t: torch.Tensor, shape: tuple[int | None, ...], like: torch.Tensor | None) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != len(shape):
        got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"log_error_probe: {name} must have rank {len(shape)}, got {got}")
    if any(want is not None and want != have for want, have in zip(shape, t.shape, strict=True)):
        expected = tuple("·" if want is None else want for want in shape)
        raise ValueError(f"log_error_probe: {name} must have shape {expected}, got {tuple(t.shape)}")
    if like is not None and (t.device != like.device or t.dtype != like.dtype):
        raise ValueError(f"log_error_probe: {name} must be {like.dtype} on {like.device}, got {t.dtype} on {t.device}")


def log_error_probe(
    query_points: torch.Tensor,
    keys_sorted: torch.Tensor,
    values_sorted: torch.Tensor,
    key_offsets: torch.Tensor,
    key_centroids: torch.Tensor,
    value_means: torch.Tensor,
    scale: float,
    *,
    out: torch.Tensor | None = None,
    block_r: int = 128,
    block_n: int = 32,
    input_precision: str = "ieee",
) -> torch.Tensor:
    """``log ε̂`` as float32 ``(G, R, KC)`` for query points ``(G, R, D)`` against every key cluster.

    ``keys_sorted`` ``(G, N, D)`` and ``values_sorted`` ``(G, N, Dv)`` are in key-cluster order,
    ``key_offsets`` ``(G, KC+1)`` is :func:`~svg_ear_compile.kernels.permute_ref.cluster_layout`'s;
    ``key_centroids`` ``(G, KC, D)`` and ``value_means`` ``(G, KC, Dv)`` must be the exact member means
    (:func:`~svg_ear_compile.kernels.cluster_stats.cluster_stats`). Equals
    :func:`~svg_ear_compile.kernels.probe_ref.log_error_probe` on the same data. ``input_precision``
    is ``tl.dot``'s for float32 inputs (fp16/bf16 ignore it). The default tiles are the fastest of
    ``benchmarks/sweep_stage_tiles.py`` on an H100 (each program reads its key cluster once per
    ``block_r`` query points).
    """
    _check("query_points", query_points, (None, None, None), None)
    if query_points.dtype not in _DTYPES:
        raise ValueError(f"log_error_probe: query_points must be float16, bfloat16 or float32, "
                         f"got {query_points.dtype}")
    groups, rows, d = query_points.shape
    _check("keys_sorted", keys_sorted, (groups, None, d), query_points)
    n = keys_sorted.shape[1]
    _check("values_sorted", values_sorted, (groups, n, None), query_points)
    dv = values_sorted.shape[2]
    _check("key_offsets", key_offsets, (groups, None), None)
    clusters = key_offsets.shape[1] - 1
    if clusters < 1 or key_offsets.dtype.is_floating_point or key_offsets.device != query_points.device:
        raise ValueError(f"log_error_probe: key_offsets must be an integer (G, KC+1) tensor with KC >= 1 on "
                         f"{query_points.device}, got {key_offsets.dtype} {tuple(key_offsets.shape)} on "
                         f"{key_offsets.device}")
    _check("key_centroids", key_centroids, (groups, clusters, d), query_points)
    _check("value_means", value_means, (groups, clusters, dv), query_points)
    if input_precision not in _PRECISIONS:
        raise ValueError(f"log_error_probe: input_precision must be one of {_PRECISIONS}, got {input_precision!r}")
    for name, block in (("block_r", block_r), ("block_n", block_n)):
        if block < 16 or block & (block - 1):
            raise ValueError(f"log_error_probe: {name} must be a power of two >= 16 (tl.dot), got {block}")
    if out is None:
        out = torch.empty((groups, rows, clusters), dtype=torch.float32, device=query_points.device)
    if tuple(out.shape) != (groups, rows, clusters) or out.dtype != torch.float32 or out.device != query_points.device:
        raise ValueError(f"log_error_probe: out must be float32 of shape {(groups, rows, clusters)} on "
                         f"{query_points.device}, got {out.dtype} {tuple(out.shape)} on {out.device}")
    if out.numel() == 0:
        return out
    _probe_kernel[(clusters, triton.cdiv(rows, block_r), groups)](
        query_points, keys_sorted, values_sorted, key_offsets, key_centroids, value_means, out,
        rows, d, dv, float(scale),
        *query_points.stride(), *keys_sorted.stride(), *values_sorted.stride(), *key_offsets.stride(),
        *key_centroids.stride(), *value_means.stride(), *out.stride(),
        BLOCK_R=block_r, BLOCK_N=block_n, BLOCK_D=max(16, triton.next_power_of_2(d)),
        BLOCK_DV=triton.next_power_of_2(dv),
        INPUT_PRECISION=input_precision if query_points.dtype == torch.float32 else "tf32",
    )
    return out
