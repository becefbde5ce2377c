"""Experiment: how each key tile finds its token rows, and an unmasked main loop.

INDEX 0: shipped (cumsum of start bits + tl.gather of the delta window)
INDEX 1: elementwise popcount of start bits, delta gathered from global (L1)
INDEX 2: token rows materialised per tile by torch (upper bound for index cost)
INDEX 3: contiguous (wrong output; loop ceiling)
SPLIT: full tiles run without masks, the last partial tile masked.
"""
import argparse
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "main", "benchmarks"))
sys.path.insert(0, "benchmarks")
from svg_ear_compile.kernels.attention_plan import attention_plan  # noqa: E402
from svg_ear_compile.kernels.block_map import BlockMap  # noqa: E402
from svg_ear_compile.kernels.sparse_attention import _online_softmax_step as _step2, sparse_attention  # noqa: E402

_LOG2_E = 1.4426950408889634


@triton.jit
def _popcount(x):
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    x = x + (x >> 8)
    x = x + (x >> 16)
    return x & 0x3F


@triton.jit
def _online_softmax_step(logits, values, m_i, l_i, acc, DOT_PRECISION: tl.constexpr):
    return _step2(logits, values, m_i, l_i, acc, DOT_PRECISION, True)


@triton.jit
def _step_unmasked(logits, values, m_i, l_i, acc, DOT_PRECISION: tl.constexpr):
    m_new = tl.maximum(m_i, tl.max(logits, 1))
    alpha = tl.math.exp2(m_i - m_new)
    p = tl.math.exp2(logits - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = tl.dot(p.to(values.dtype), values, acc * alpha[:, None], input_precision=DOT_PRECISION)
    return m_new, l_i, acc


@triton.jit
def _tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row,
            delta_ptr, tile_range_ptr, range_starts_ptr, tokens_ptr,
            BLOCK_N: tl.constexpr, START_WORDS: tl.constexpr, INDEX: tl.constexpr):
    offs_n = tile_start + lane
    tile = block_row * tiles_per_row + tile_start // BLOCK_N
    if INDEX == 0:
        first = tl.load(tile_range_ptr + tile)
        words = tl.load(range_starts_ptr + tile * START_WORDS + lane // 32)
        flags = (words >> (lane % 32)) & 1
        local = tl.cumsum(flags, 0) - tl.sum(tl.where(lane == 0, flags, 0), 0)
        window = first + lane
        deltas = tl.load(delta_ptr + ranges + window, mask=window < range_count, other=0)
        tokens = offs_n + tl.gather(deltas, local, 0)
    elif INDEX == 1:
        first = tl.load(tile_range_ptr + tile)
        word_of_lane = lane // 32
        bit = lane % 32
        local = tl.zeros_like(lane)
        for w in tl.static_range(START_WORDS):
            word = tl.load(range_starts_ptr + tile * START_WORDS + w)
            if w == 0:
                word = word & ~1  # a range starting at the tile's first position is `first` itself
            low = tl.where(bit == 31, -1, (2 << bit) - 1)
            part = tl.where(word_of_lane > w, word, tl.where(word_of_lane == w, word & low, 0))
            local += _popcount(part)
        tokens = offs_n + tl.load(delta_ptr + ranges + first + local)
    elif INDEX == 2:
        tokens = tl.load(tokens_ptr + tile * BLOCK_N + lane)
    else:
        tokens = offs_n
    return tokens


@triton.jit
def _variant_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, perm_ptr, work_ptr,
    delta_ptr, count_ptr, total_ptr, tile_range_ptr, range_starts_ptr, tokens_ptr,
    selected_ptr, log2_sizes_ptr, centroids_ptr, value_means_ptr,
    num_rows, num_keys, num_q_clusters, num_k_clusters, range_width, tiles_per_row,
    qk_scale,
    COMPENSATION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, HEAD_DIM: tl.constexpr,
    START_WORDS: tl.constexpr, DOT_PRECISION: tl.constexpr, INDEX: tl.constexpr, SPLIT: tl.constexpr,
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
    if SPLIT:
        full_end = (total // BLOCK_N) * BLOCK_N
        for tile_start in range(0, full_end, BLOCK_N):
            tokens = _tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row, delta_ptr,
                             tile_range_ptr, range_starts_ptr, tokens_ptr, BLOCK_N, START_WORDS, INDEX)
            keys = tl.load(k_base + tokens[:, None] * HEAD_DIM + offs_d[None, :])
            logits = tl.dot(q, tl.trans(keys), input_precision=DOT_PRECISION) * qk_scale
            values = tl.load(v_base + tokens[:, None] * HEAD_DIM + offs_d[None, :])
            m_i, l_i, acc = _step_unmasked(logits, values, m_i, l_i, acc, DOT_PRECISION)
        tail_start = full_end
    else:
        tail_start = 0
    for tile_start in range(tail_start, total, BLOCK_N):
        offs_n = tile_start + lane
        n_mask = offs_n < total
        tokens = _tokens(tile_start, lane, block_row, ranges, range_count, tiles_per_row, delta_ptr,
                         tile_range_ptr, range_starts_ptr, tokens_ptr, BLOCK_N, START_WORDS, INDEX)
        tokens = tl.where(n_mask, tokens, 0)
        keys = tl.load(k_base + tokens[:, None] * HEAD_DIM + offs_d[None, :], mask=n_mask[:, None], other=0.0)
        logits = tl.dot(q, tl.trans(keys), input_precision=DOT_PRECISION) * qk_scale
        logits = tl.where(n_mask[None, :], logits, float("-inf"))
        values = tl.load(v_base + tokens[:, None] * HEAD_DIM + offs_d[None, :], mask=n_mask[:, None], other=0.0)
        m_i, l_i, acc = _online_softmax_step(logits, values, m_i, l_i, acc, DOT_PRECISION)
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
            logits = tl.dot(q, tl.trans(centroids), input_precision=DOT_PRECISION) * qk_scale
            logits = tl.where(skipped[None, :], logits + log2_size[None, :], float("-inf"))
            means = tl.load(value_means_ptr + (group * num_k_clusters + offs_c)[:, None] * HEAD_DIM
                            + offs_d[None, :], mask=skipped[:, None], other=0.0)
            m_i, l_i, acc = _online_softmax_step(logits, means, m_i, l_i, acc, DOT_PRECISION)
    result = acc / tl.where(l_i > 0.0, l_i, 1.0)[:, None]
    original_rows = tl.load(perm_ptr + group * num_rows + offs_m, mask=m_mask, other=0)
    tl.store(out_ptr + group * num_rows * HEAD_DIM + original_rows[:, None] * HEAD_DIM + offs_d[None, :],
             result.to(out_ptr.dtype.element_ty), mask=m_mask[:, None])


def materialised_tokens(plan, block_n):
    rows, tiles = plan.tile_range.shape
    width = plan.range_delta.shape[1]
    vstart = torch.arange(width, device=plan.range_delta.device)  # placeholder, replaced below
    del vstart
    pos = torch.arange(tiles * block_n, device=plan.tile_range.device, dtype=torch.int32)
    # packed start of each range: cumsum of lengths = begin - delta; recover from delta via searchsorted
    # on (range index) -> use tile_range + bits: simplest, per position range = count of starts <= pos.
    bits = plan.range_starts  # (rows, tiles, words)
    lanes = torch.arange(block_n, device=bits.device)
    flags = (bits[..., lanes // 32] >> (lanes % 32)) & 1  # (rows, tiles, BN)
    flags[..., 0] = 0
    local = flags.cumsum(-1)
    rng = (plan.tile_range[..., None] + local).clamp_max(width - 1).long()
    delta = torch.gather(plan.range_delta, 1, rng.reshape(rows, -1)).reshape(rows, tiles, block_n)
    return (pos.view(1, tiles, block_n) + delta).to(torch.int32).contiguous()


def run_variant(p, compensation, block_m, block_n, num_warps, num_stages, index, split, cache):
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
    groups, num_rows, head_dim = q.shape
    out = torch.empty_like(q)
    _variant_kernel[(plan.work.shape[0],)](
        q, k, v, out, p["q_layout"].perm.contiguous(), plan.work,
        plan.range_delta, plan.range_count, plan.range_total, plan.tile_range, plan.range_starts, tokens,
        sel_u8, log2_sizes, p["k_means"].to(q.dtype).contiguous(), p["v_means"].to(q.dtype).contiguous(),
        num_rows, k.shape[1], selected.shape[1], selected.shape[2], plan.range_delta.shape[1],
        plan.tile_range.shape[1], float(p["scale"]) * _LOG2_E,
        COMPENSATION=compensation, BLOCK_M=block_m, BLOCK_N=block_n, HEAD_DIM=head_dim,
        START_WORDS=plan.range_starts.shape[-1], DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
        INDEX=index, SPLIT=split, num_warps=num_warps, num_stages=num_stages)
    return out


def shipped(p, compensation, block_m, block_n, num_warps, num_stages):
    return sparse_attention(*(p[n] for n in ("q_sorted", "k_sorted", "v_sorted", "q_layout", "k_layout",
                                               "block_map", "k_means", "v_means", "scale")), compensation,
                            block_m=block_m, block_n=block_n, num_warps=num_warps, num_stages=num_stages)


def main():
    from bench_kernels import bench, clustered_problem
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--shapes", nargs="+", default=["1.3b", "14b"])
    parser.add_argument("--densities", nargs="+", type=float, default=[0.1, 0.2])
    parser.add_argument("--bench-problem", action="store_true")
    parser.add_argument("--indices", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--tiles128", action="store_true")
    a = parser.parse_args()
    cuda = torch.cuda.is_available() and not a.smoke
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    shapes = {"1.3b": (12, 21, 30, 52), "14b": (40, 21, 45, 80), "smoke": (2, 2, 15, 17)}
    if a.smoke:
        a.shapes = ["smoke"]
        a.densities = [0.3]
    args = argparse.Namespace(head_dim=64 if a.smoke else 128, q_clusters=8 if a.smoke else 256,
                              k_clusters=24 if a.smoke else 1024, kmeans_iters=20 if a.bench_problem else 5,
                              map_heads=4 if a.bench_problem else 2)
    tiles = [(32, 32, 4, 1)] if a.smoke else [(128, 128, 8, 2), (128, 64, 8, 3)]
    if a.tiles128:
        tiles = tiles[:1]
    for shape in a.shapes:
        for density in a.densities:
            p = clustered_problem(*shapes[shape], args.head_dim, density, args, device, dtype)
            heads, seq_len = p["q"].shape[:2]
            area = float((p["block_map"].density().double() * seq_len**2).sum())
            flops = 4 * args.head_dim * area
            cache = {}
            for t in tiles:
                for comp in (True,) if not a.smoke else (True, False):
                    ref = shipped(p, comp, *t)
                    ms = bench(lambda: shipped(p, comp, *t), cuda)
                    print(f"{shape} d={density} tiles={t} comp={comp} shipped: {ms:.2f} ms {flops/ms/1e9:.0f} TFLOP/s",
                          flush=True)
                    if cuda:
                        ms = bench(lambda: sparse_attention(*(p[n] for n in ("q_sorted", "k_sorted", "v_sorted",
                                   "q_layout", "k_layout", "block_map", "k_means", "v_means", "scale")), comp,
                                   block_m=t[0], block_n=t[1], num_warps=t[2], num_stages=t[3], remainder_m=64), cuda)
                        print(f"   shipped remainder_m=64: {ms:.2f} ms {flops/ms/1e9:.0f} TFLOP/s", flush=True)
                    for index in a.indices:
                        for split in [bool(x) for x in a.splits]:
                            if a.smoke and index == 3:
                                continue
                            try:
                                out = run_variant(p, comp, *t, index, split, cache)
                                err = float((out.float() - ref.float()).norm() / ref.float().norm())
                                ms = bench(lambda: run_variant(p, comp, *t, index, split, cache), cuda)
                                print(f"   index={index} split={split}: {ms:.2f} ms {flops/ms/1e9:.0f} TFLOP/s "
                                      f"err_vs_shipped={err:.2e}", flush=True)
                            except Exception as e:  # noqa: BLE001
                                print(f"   index={index} split={split}: FAILED {type(e).__name__}: {str(e)[:300]}",
                                      flush=True)
            del p, cache
            torch.cuda.empty_cache() if cuda else None
    if cuda:
        for kern in (_variant_kernel,):
            for key, compiled in kern.device_caches[torch.cuda.current_device()][0].items():
                print("compiled", str(key)[-200:], "regs", getattr(compiled, "n_regs", None), "spills",
                      getattr(compiled, "n_spills", None), "smem", compiled.metadata.shared)


if __name__ == "__main__":
    main()
