"""Kernel benchmark: the fused Triton sparse attention beside cuDNN/flash SDPA and FlexAttention, one process.

For each shape and density it builds a realistic block map (video-like Q/K/V from
``svg_ear_compile.workloads.video_qkv``, reference k-means, error probe and error-aware routing on a
few heads, repeated to all heads), then times with ``triton.testing.do_bench`` (median):

* dense cuDNN SDPA and flash SDPA (``torch.nn.attention.sdpa_kernel``);
* FlexAttention (compiled) with the same block map as a token-level mask over the cluster-sorted
  order, 128×128 blocks (exact selected blocks only, no compensation: SVG2's kernel);
* the Triton kernel with compensation (SVG-EAR) and without (SVG2), host-side plan included, and the
  plan alone.

Useful TFLOP/s counts ``4·D·area`` per head (QKᵀ and PV over the selected area; the S² area for
dense). Errors are relative Frobenius norms against a float32 reference of the same computation, on
the first ``--check-heads`` heads (dense: exact attention on ``--check-rows`` random rows).

    python benchmarks/bench_kernels.py --json $OUT/kernels.json    # GPU: (H=12, S=32,760), (H=40, S=75,600)
    python benchmarks/bench_kernels.py --smoke                      # CPU: tiny shapes through the interpreter
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import sys
import time

import torch

if "--smoke" in sys.argv and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before the first @triton.jit is imported

import torch.nn.functional as F  # noqa: E402
import triton  # noqa: E402
import triton.testing  # noqa: E402
from _timing import kernel_ms, tile_spec, wall_ms  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.nn.attention.flex_attention import BlockMask, flex_attention  # noqa: E402

from svg_ear_compile import SvgEarConfig  # noqa: E402
from svg_ear_compile.kernels import centroid_mass_ref, cluster_stats_ref, kmeans_ref, probe_ref, routing_ref  # noqa: E402
from svg_ear_compile.kernels.attention_plan import attention_plan  # noqa: E402
from svg_ear_compile.kernels.block_map import BlockMap  # noqa: E402
from svg_ear_compile.kernels.permute_ref import ClusterLayout, cluster_layout, permute  # noqa: E402
from svg_ear_compile.kernels.sparse_attention import sparse_attention  # noqa: E402
from svg_ear_compile.kernels.sparse_attention_ref import sparse_attention_ref  # noqa: E402
from svg_ear_compile.kernels.tiles import tile_config  # noqa: E402
from svg_ear_compile.workloads import video_qkv  # noqa: E402

SHAPES = {"wan-1.3b-480p": (12, 21, 30, 52), "wan-14b-720p": (40, 21, 45, 80)}  # heads, frames, height, width
SMOKE_SHAPES = {"smoke": (2, 2, 15, 17)}  # S=510: a partial last 128-block


def clustered_problem(heads, frames, height, width, head_dim, density, args, device, dtype):
    """Sorted inputs, layouts, block map and means for ``heads`` heads: the map comes from the reference
    stages (k-means, probe, error-aware routing) on ``args.map_heads`` heads, repeated to all heads."""
    gen_heads = min(heads, args.map_heads)
    q, k, v = video_qkv(1, gen_heads, frames, height, width, head_dim, device=device)
    points = [x.reshape(gen_heads, -1, head_dim) for x in (q, k, v)]
    scale = head_dim**-0.5
    labels = []
    for x, clusters in ((points[0], args.q_clusters), (points[1], args.k_clusters)):
        labels.append(kmeans_ref.kmeans(x, kmeans_ref.strided_init(x, clusters), args.kmeans_iters)[1])
    q_layout, k_layout = cluster_layout(labels[0], args.q_clusters), cluster_layout(labels[1], args.k_clusters)
    q_means, k_means, v_means = (cluster_stats_ref.cluster_means(x, lab, lay.sizes) for x, lab, lay in
                                 ((points[0], labels[0], q_layout), (points[1], labels[1], k_layout),
                                  (points[2], labels[1], k_layout)))
    mass = centroid_mass_ref.centroid_mass(q_means, k_means, k_layout.sizes, scale)
    log_error = probe_ref.log_error_probe(q_means, points[1], points[2], labels[1], k_means, v_means,
                                          k_layout.sizes, scale)
    config = SvgEarConfig(num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters, budget=density,
                          min_seq_len=0)
    selected = routing_ref.route(mass, log_error, q_layout.sizes, k_layout.sizes, config)

    reps = math.ceil(heads / gen_heads)

    def tile(x):
        return x.repeat((reps,) + (1,) * (x.dim() - 1))[:heads].contiguous()

    q_layout, k_layout = (ClusterLayout(*(tile(t) for t in (lay.perm, lay.labels_sorted, lay.sizes, lay.offsets)))
                          for lay in (q_layout, k_layout))
    block_map = BlockMap.from_selection(tile(selected), q_layout.sizes, k_layout.sizes)
    q, k, v = (tile(x).to(dtype) for x in points)
    return dict(q=q, k=k, v=v, q_layout=q_layout, k_layout=k_layout, block_map=block_map,
                k_means=tile(k_means), v_means=tile(v_means), scale=scale,
                q_sorted=permute(q, q_layout.perm), k_sorted=permute(k, k_layout.perm),
                v_sorted=permute(v, k_layout.perm))


MIN_REPEATS = 10


def bench(fn, cuda: bool) -> float:
    """Median milliseconds: CUDA events through do_bench on a GPU (at least ``MIN_REPEATS`` timed calls:
    do_bench's 200 ms budget alone gave a 100 ms call 2), perf_counter otherwise."""
    if cuda:
        _, first_ms = wall_ms(fn, torch.device("cuda"))
        return triton.testing.do_bench(fn, warmup=25, rep=max(200.0, MIN_REPEATS * first_ms), return_mode="median")
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def subset(p, heads: int):
    """The problem restricted to its first ``heads`` groups, in float32 (for the references)."""
    def lay(x):
        return ClusterLayout(*(t[:heads] for t in (x.perm, x.labels_sorted, x.sizes, x.offsets)))
    bm = p["block_map"]
    return (p["q_sorted"][:heads].float(), p["k_sorted"][:heads].float(), p["v_sorted"][:heads].float(),
            lay(p["q_layout"]), lay(p["k_layout"]),
            BlockMap(bm.selected[:heads], bm.query_sizes[:heads], bm.key_sizes[:heads]),
            p["k_means"][:heads].float(), p["v_means"][:heads].float(), p["scale"])


def flex_block_mask(p, heads: int, seq_len: int, device, block: int = 128) -> BlockMask:
    """The block map as a token-level FlexAttention mask over the sorted order, 128×128 blocks.

    Built from the cluster map directly (``create_block_mask`` would evaluate H·S² mask entries): a
    block's selected pair count is ``A_q · selected · A_kᵀ`` with ``A[b, c]`` = tokens of cluster c in
    token block b; full blocks skip the mask_mod, partial ones apply it."""
    q_labels, k_labels = p["q_layout"].labels_sorted, p["k_layout"].labels_sorted
    selected = p["block_map"].selected
    num_blocks = triton.cdiv(seq_len, block)
    token_block = torch.arange(seq_len, device=device) // block

    def membership(labels: torch.Tensor, clusters: int) -> torch.Tensor:
        counts = torch.zeros(heads, num_blocks * clusters, dtype=torch.float64, device=device)
        counts.scatter_add_(1, token_block * clusters + labels, torch.ones_like(labels, dtype=torch.float64))
        return counts.view(heads, num_blocks, clusters)

    pairs = membership(q_labels, selected.shape[1]) @ selected.double() @ membership(k_labels, selected.shape[2]).mT
    block_sizes = torch.bincount(token_block, minlength=num_blocks).double()
    full = pairs == block_sizes[:, None] * block_sizes[None, :]
    partial = (pairs > 0) & ~full

    def as_indices(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.argsort(blocks.to(torch.int8), dim=-1, descending=True, stable=True)
        return blocks.sum(-1).to(torch.int32)[None], order.to(torch.int32)[None]

    def mask_mod(b, h, q_idx, kv_idx):
        q_idx, kv_idx = q_idx.clamp(max=seq_len - 1), kv_idx.clamp(max=seq_len - 1)  # padded last block
        return selected[h, q_labels[h, q_idx], k_labels[h, kv_idx]]

    return BlockMask.from_kv_blocks(*as_indices(partial), *as_indices(full), BLOCK_SIZE=block, mask_mod=mask_mod,
                                    seq_lengths=(seq_len, seq_len))


def run_shape(name, heads, frames, height, width, density, args, device, dtype, rows):
    cuda = device.type == "cuda"
    p = clustered_problem(heads, frames, height, width, args.head_dim, density, args, device, dtype)
    seq_len, d = p["q"].shape[1], args.head_dim
    area = float((p["block_map"].density().double() * seq_len**2).sum())
    dense_flops, sparse_flops = 4 * d * seq_len**2 * heads, 4 * d * area
    tiles = tile_config(d, seq_len, device, block_m=args.block_m, block_n=args.block_n,
                        num_warps=args.num_warps, num_stages=args.num_stages)
    check = min(args.check_heads, heads)
    ref_args = subset(p, check)
    ear_ref = sparse_attention_ref(*ref_args, True)
    svg2_ref = sparse_attention_ref(*ref_args, False)

    # Exact attention on random rows of the checked heads (original order), chunk-free: rows ≪ S.
    gen = torch.Generator(device="cpu").manual_seed(0)
    check_rows = torch.randperm(seq_len, generator=gen)[: args.check_rows].to(device)
    qf, kf, vf = (p[x][:check].float() for x in ("q", "k", "v"))
    exact_rows = torch.softmax(p["scale"] * qf[:, check_rows] @ kf.mT, -1) @ vf

    q4, k4, v4 = (p[x].unsqueeze(0) for x in ("q", "k", "v"))
    methods = {}
    if cuda:
        for label, backend in (("cuDNN SDPA", SDPBackend.CUDNN_ATTENTION), ("flash SDPA", SDPBackend.FLASH_ATTENTION)):
            def dense(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q4, k4, v4)
            methods[label] = (dense, dense_flops, lambda o: rel_error(o[0, :check, check_rows], exact_rows))
    else:
        def dense_math():
            return F.scaled_dot_product_attention(q4, k4, v4)
        methods["SDPA (CPU)"] = (dense_math, dense_flops, lambda o: rel_error(o[0, :check, check_rows], exact_rows))

    start = time.perf_counter()
    block_mask = flex_block_mask(p, heads, seq_len, device)
    mask_ms = (time.perf_counter() - start) * 1e3
    flex = torch.compile(flex_attention) if cuda or args.compile_flex else flex_attention
    qs, ks, vs = (p[x].unsqueeze(0) for x in ("q_sorted", "k_sorted", "v_sorted"))
    methods["FlexAttention (128x128, no comp.)"] = (
        lambda: flex(qs, ks, vs, block_mask=block_mask, scale=p["scale"]), sparse_flops,
        lambda o: rel_error(o[0, :check], svg2_ref))

    kernel_args = (p["q_sorted"], p["k_sorted"], p["v_sorted"], p["q_layout"], p["k_layout"], p["block_map"],
                   p["k_means"], p["v_means"], p["scale"])
    launch = dict(block_m=tiles.block_m, block_n=tiles.block_n, num_warps=tiles.num_warps,
                  num_stages=tiles.num_stages)
    q_perm = p["q_layout"].perm[:check]  # kernel output is in the original order, the references sorted
    for label, comp, ref in (("Triton SVG-EAR (comp.)", True, ear_ref), ("Triton SVG2 (no comp.)", False, svg2_ref)):
        methods[label] = (lambda comp=comp: sparse_attention(*kernel_args, comp, **launch), sparse_flops,
                          lambda o, ref=ref: rel_error(permute(o[:check].float(), q_perm), ref))
    launches = {label: launch for label in methods if label.startswith("Triton")}
    for extra in args.tiles:
        sweep = dict(zip(("block_m", "block_n", "num_warps", "num_stages", "remainder_m"), extra, strict=False))
        label = "Triton SVG-EAR {}x{} w{} s{}".format(*extra) + (f" r{extra[4]}" if len(extra) > 4 else "")
        launches[label] = sweep
        methods[label] = (
            lambda sweep=sweep: sparse_attention(*kernel_args, True, **sweep), sparse_flops,
            lambda o: rel_error(permute(o[:check].float(), q_perm), ear_ref))
    methods["Triton host plan only"] = (
        lambda: attention_plan(p["q_layout"], p["k_layout"], p["block_map"], tiles.block_m, tiles.block_n,
                               args.k_clusters),
        0.0, None)

    dense_ms = None

    def report(label: str, ms: float, flops: float, error: float | None) -> None:
        """One row: appended to ``rows`` and printed as a table line (the first row is the baseline)."""
        nonlocal dense_ms
        dense_ms = dense_ms if dense_ms is not None else ms
        row = dict(shape=name, heads=heads, seq_len=seq_len, target=density,
                   density=area / (heads * seq_len**2), method=label, ms=ms,
                   tflops=flops / ms / 1e9 if flops else None, rel_error=error, speedup=dense_ms / ms,
                   tiles=launches.get(label.split(",")[0]),
                   block_mask_ms=mask_ms if label.startswith("Flex") else None)
        rows.append(row)
        tflops = f"{row['tflops']:.1f}" if row["tflops"] else "-"
        err = f"{error:.2e}" if error is not None else "-"
        print(f"| {name} | {density:.0%} | {row['density']:.1%} | {label} | {ms:.2f} | {tflops} | {err} | "
              f"{row['speedup']:.2f}x |", flush=True)

    for label, (fn, flops, error_fn) in methods.items():
        out = fn()
        report(label, bench(fn, cuda), flops, error_fn(out) if error_fn is not None else None)
    if cuda:  # the attention kernel alone: the SVG-EAR rows above also build the plan on every call
        for label in [label for label in methods if label.startswith("Triton SVG-EAR")]:
            report(f"{label}, kernel alone (profiler)",
                   kernel_ms(methods[label][0], "_sparse_attention_kernel"), sparse_flops, None)
    ear_out = methods["Triton SVG-EAR (comp.)"][0]()
    ear_quality = rel_error(ear_out[:check, check_rows], exact_rows)
    rows[-1]["ear_error_vs_exact"] = ear_quality
    print(f"|  |  |  | (SVG-EAR error vs exact attention: {ear_quality:.4f}) |  |  |  |  |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, float32, CPU interpreter when no GPU")
    parser.add_argument("--shapes", nargs="+", default=None, help=f"subset of {list(SHAPES)}")
    parser.add_argument("--densities", type=float, nargs="+", default=None)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--q-clusters", type=int, default=256)
    parser.add_argument("--k-clusters", type=int, default=1024)
    parser.add_argument("--kmeans-iters", type=int, default=20)
    parser.add_argument("--map-heads", type=int, default=4, help="heads that get their own block map")
    parser.add_argument("--check-heads", type=int, default=2)
    parser.add_argument("--check-rows", type=int, default=2048)
    parser.add_argument("--block-m", type=int)
    parser.add_argument("--block-n", type=int)
    parser.add_argument("--num-warps", type=int)
    parser.add_argument("--num-stages", type=int)
    parser.add_argument("--tiles", type=tile_spec, nargs="+", default=[], metavar="MxNxWARPSxSTAGES[xR]",
                        help="also time the SVG-EAR kernel with these tiles, e.g. 128x64x8x3 64x128x4x2; a fifth "
                             "number runs each query cluster's last tile of at most R rows in R-row tiles")
    parser.add_argument("--compile-flex", action="store_true", help="compile FlexAttention on a CPU too (slow)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.smoke:
        shapes, dtype = SMOKE_SHAPES, torch.float32
        args.head_dim, args.q_clusters, args.k_clusters, args.kmeans_iters = 64, 8, 32, 5
        args.check_rows = min(args.check_rows, 128)
        densities = args.densities or [0.2]
    else:
        shapes = {k: SHAPES[k] for k in (args.shapes or SHAPES)}
        dtype, densities = torch.bfloat16, args.densities or [0.1, 0.2, 0.3]
    if device.type == "cpu" and not args.smoke:
        parser.error("full shapes need a GPU; use --smoke on a CPU")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (Triton interpreter)"
    header = (f"device: {name}; torch {torch.__version__}; triton {triton.__version__}; {datetime.date.today()}; "
              f"B=1 D={args.head_dim} {str(dtype).removeprefix('torch.')}; QC={args.q_clusters} KC={args.k_clusters}")
    print(header)
    print("| shape | target | density | method | ms | useful TFLOP/s | rel. error vs fp32 ref | vs first row |")
    print("|---|---|---|---|---|---|---|---|")
    rows: list[dict] = []
    for shape, (heads, frames, height, width) in shapes.items():
        for density in densities:
            run_shape(shape, heads, frames, height, width, density, args, device, dtype, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
