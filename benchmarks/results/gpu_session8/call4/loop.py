"""Experiment: the key loop's softmax arithmetic and tile shapes (kept out of the tree).

INDEX 0: shipped gather of token rows; INDEX 3: contiguous rows (wrong output, loop ceiling).
FMA: row max taken on raw scores, p = exp2(s*scale - m) (one FFMA per element instead of FMUL+FADD).
LAZY: keep the running max unless a row's max grows by more than 8 (log2 units); rescale acc only
      when some row grew (scalar branch). Exact: p <= 2^8 before rescale.
"""
import argparse
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, "benchmarks")
from variants import _tokens, materialised_tokens, shipped  # noqa: E402
from svg_ear_compile.kernels.attention_plan import attention_plan  # noqa: E402
from svg_ear_compile.kernels.block_map import BlockMap  # noqa: E402
from svg_ear_compile.kernels.sparse_attention import _online_softmax_step  # noqa: E402

_LOG2_E = 1.4426950408889634


@triton.jit
def _fold(scores, values, m_i, l_i, acc, qk_scale, FMA: tl.constexpr, LAZY: tl.constexpr):
    if FMA:
        m_cand = tl.maximum(m_i, tl.max(scores, 1) * qk_scale)
    else:
        scores = scores * qk_scale
        m_cand = tl.maximum(m_i, tl.max(scores, 1))
    if LAZY:
        grow = m_cand > m_i + 8.0
        m_new = tl.where(grow, m_cand, m_i)
    else:
        m_new = m_cand
    if FMA:
        p = tl.math.exp2(scores * qk_scale - m_new[:, None])
    else:
        p = tl.math.exp2(scores - m_new[:, None])
    if LAZY:
        if tl.max(grow.to(tl.int32), 0) > 0:
            alpha = tl.math.exp2(m_i - m_new)
            acc = acc * alpha[:, None]
            l_i = l_i * alpha
        l_i = l_i + tl.sum(p, 1)
        acc = tl.dot(p.to(values.dtype), values, acc)
    else:
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(values.dtype), values, acc * alpha[:, None])
    return m_new, l_i, acc


@triton.jit
def _loop_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, perm_ptr, work_ptr,
    delta_ptr, count_ptr, total_ptr, tile_range_ptr, range_starts_ptr, tokens_ptr,
    selected_ptr, log2_sizes_ptr, centroids_ptr, value_means_ptr,
    num_rows, num_keys, num_q_clusters, num_k_clusters, range_width, tiles_per_row,
    qk_scale,
    COMPENSATION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    START_WORDS: tl.constexpr, INDEX: tl.constexpr, FMA: tl.constexpr, LAZY: tl.constexpr,
):
    item = work_ptr + tl.program_id(0) * 4
    row_start = tl.load(item + 2)
    row_end = tl.load(item + 3)
    if row_start >= row_end:
        return
    group = tl.load(item).to(tl.int64)
    block_row = group * num_q_clusters + tl.load(item + 1)
    offs_m = row_start + tl.arange(0, BLOCK_M)
    m_mask = offs_m < row_end
    offs_d = tl.arange(0, HEAD_DIM)
    q = tl.load(q_ptr + group * num_rows * HEAD_DIM + offs_m[:, None] * HEAD_DIM + offs_d[None, :],
                mask=m_mask[:, None], other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], tl.float32)
    k_base = k_ptr + group * num_keys * HEAD_DIM
    v_base = v_ptr + group * num_keys * HEAD_DIM
    ranges = block_row * range_width
    range_count = tl.load(count_ptr + block_row)
    total = tl.load(total_ptr + block_row)
    lane = tl.arange(0, BLOCK_N)
    full_end = (total // BLOCK_N) * BLOCK_N
    for tile_start in range(0, full_end, BLOCK_N):
        tokens = _tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row, delta_ptr,
                         tile_range_ptr, range_starts_ptr, tokens_ptr, BLOCK_N, START_WORDS, INDEX)
        keys = tl.load(k_base + tokens[:, None] * HEAD_DIM + offs_d[None, :])
        scores = tl.dot(q, tl.trans(keys))
        values = tl.load(v_base + tokens[:, None] * HEAD_DIM + offs_d[None, :])
        m_i, l_i, acc = _fold(scores, values, m_i, l_i, acc, qk_scale, FMA, LAZY)
    if full_end < total:
        offs_n = full_end + lane
        n_mask = offs_n < total
        tokens = _tokens(full_end, lane, block_row, ranges, range_count, tiles_per_row, delta_ptr,
                         tile_range_ptr, range_starts_ptr, tokens_ptr, BLOCK_N, START_WORDS, INDEX)
        tokens = tl.where(n_mask, tokens, 0)
        keys = tl.load(k_base + tokens[:, None] * HEAD_DIM + offs_d[None, :], mask=n_mask[:, None], other=0.0)
        logits = tl.dot(q, tl.trans(keys)) * qk_scale
        logits = tl.where(n_mask[None, :], logits, float("-inf"))
        values = tl.load(v_base + tokens[:, None] * HEAD_DIM + offs_d[None, :], mask=n_mask[:, None], other=0.0)
        m_i, l_i, acc = _online_softmax_step(logits, 1.0, values, m_i, l_i, acc, "tf32", False)
    if COMPENSATION:
        for cluster_start in range(0, num_k_clusters, BLOCK_N):
            offs_c = cluster_start + tl.arange(0, BLOCK_N)
            c_mask = offs_c < num_k_clusters
            chosen = tl.load(selected_ptr + block_row * num_k_clusters + offs_c, mask=c_mask, other=1)
            log2_size = tl.load(log2_sizes_ptr + group * num_k_clusters + offs_c, mask=c_mask,
                                other=float("-inf"))
            skipped = c_mask & (chosen == 0) & (log2_size > float("-inf"))
            centroids = tl.load(centroids_ptr + (group * num_k_clusters + offs_c)[:, None] * HEAD_DIM
                                + offs_d[None, :], mask=skipped[:, None], other=0.0)
            logits = tl.dot(q, tl.trans(centroids)) * qk_scale
            logits = tl.where(skipped[None, :], logits + log2_size[None, :], float("-inf"))
            means = tl.load(value_means_ptr + (group * num_k_clusters + offs_c)[:, None] * HEAD_DIM
                            + offs_d[None, :], mask=skipped[:, None], other=0.0)
            m_i, l_i, acc = _online_softmax_step(logits, 1.0, means, m_i, l_i, acc, "tf32", True)
    result = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
    original_rows = tl.load(perm_ptr + group * num_rows + offs_m, mask=m_mask, other=0)
    tl.store(out_ptr + group * num_rows * HEAD_DIM + original_rows[:, None] * HEAD_DIM + offs_d[None, :],
             result.to(out_ptr.dtype.element_ty), mask=m_mask[:, None])


def run(p, comp, tile, index, fma, lazy, cache):
    block_m, block_n, warps, stages = tile
    bm = p["block_map"]
    selected = bm.selected & (bm.key_sizes > 0).unsqueeze(1)
    key = (block_m, block_n)
    if key not in cache:
        plan = attention_plan(p["q_layout"], p["k_layout"], BlockMap(selected, bm.query_sizes, bm.key_sizes),
                              block_m, block_n, bm.selected.shape[2])
        cache[key] = (plan, materialised_tokens(plan, block_n), selected.contiguous().view(torch.uint8),
                      bm.key_sizes.to(torch.float32).log2().contiguous())
    plan, tokens, sel_u8, log2_sizes = cache[key]
    q, k, v = p["q_sorted"], p["k_sorted"], p["v_sorted"]
    out = torch.empty_like(q)
    _loop_kernel[(plan.work.shape[0],)](
        q, k, v, out, p["q_layout"].perm.contiguous(), plan.work,
        plan.range_delta, plan.range_count, plan.range_total, plan.tile_range, plan.range_starts, tokens,
        sel_u8, log2_sizes, p["k_means"].to(q.dtype).contiguous(), p["v_means"].to(q.dtype).contiguous(),
        q.shape[1], k.shape[1], selected.shape[1], selected.shape[2], plan.range_delta.shape[1],
        plan.tile_range.shape[1], float(p["scale"]) * _LOG2_E,
        COMPENSATION=comp, BLOCK_M=block_m, BLOCK_N=block_n, HEAD_DIM=q.shape[2],
        START_WORDS=plan.range_starts.shape[-1], INDEX=index, FMA=fma, LAZY=lazy,
        num_warps=warps, num_stages=stages)
    return out


def main():
    from bench_kernels import bench, clustered_problem
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=["14b", "1.3b"])
    parser.add_argument("--densities", nargs="+", type=float, default=[0.1])
    parser.add_argument("--indices", nargs="+", type=int, default=[0, 3])
    parser.add_argument("--modes", nargs="+", default=["base", "fma", "fma+lazy"])
    parser.add_argument("--tiles", nargs="+", default=["128,128,8,2", "128,128,8,3", "128,64,8,3", "64,128,4,2",
                                                       "64,64,4,3"])
    a = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    shapes = {"1.3b": (12, 21, 30, 52), "14b": (40, 21, 45, 80), "smoke": (2, 2, 15, 17)}
    tiles = [tuple(int(x) for x in t.split(",")) for t in a.tiles]
    head_dim = 128 if cuda else 64
    args = argparse.Namespace(head_dim=head_dim, q_clusters=256 if cuda else 8, k_clusters=1024 if cuda else 24,
                              kmeans_iters=20, map_heads=4)
    for shape in a.shapes:
        for density in a.densities:
            p = clustered_problem(*shapes[shape], head_dim, density, args, device, dtype)
            seq_len = p["q"].shape[1]
            area = float((p["block_map"].density().double() * seq_len**2).sum())
            flops = 4 * head_dim * area
            ref = shipped(p, True, 128, 128, 8, 2) if cuda else shipped(p, True, 16, 16, 4, 1)
            ms = bench(lambda: shipped(p, True, 128, 128, 8, 2), cuda) if cuda else float("nan")
            print(f"{shape} d={density} shipped plan+kernel 128x128 w8 s2: {ms:.2f} ms {flops/ms/1e9:.0f} TFLOP/s",
                  flush=True)
            cache = {}
            for tile in tiles:
                for index in a.indices:
                    for mode in a.modes:
                        fma, lazy = "fma" in mode, "lazy" in mode
                        try:
                            out = run(p, True, tile, index, fma, lazy, cache)
                            err = float((out.float() - ref.float()).norm() / ref.float().norm())
                            ms = bench(lambda: run(p, True, tile, index, fma, lazy, cache), cuda)
                            print(f"  tile={tile} index={index} {mode:9s}: {ms:7.2f} ms {flops/ms/1e9:4.0f} TFLOP/s "
                                  f"err={err:.1e}", flush=True)
                        except Exception as e:  # noqa: BLE001
                            print(f"  tile={tile} index={index} {mode}: FAILED {type(e).__name__}: {str(e)[:300]}",
                                  flush=True)
            del p, cache
            if cuda:
                torch.cuda.empty_cache()
    if cuda:
        for key, compiled in _loop_kernel.device_caches[torch.cuda.current_device()][0].items():
            print("compiled", str(key)[-160:], "regs", getattr(compiled, "n_regs", None), "spills",
                  getattr(compiled, "n_spills", None), "smem", compiled.metadata.shared)


if __name__ == "__main__":
    main()
