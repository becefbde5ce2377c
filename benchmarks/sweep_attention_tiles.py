"""Tile sweep of the sparse attention kernel at the op's own operating point (GPU).

The tile table (:mod:`svg_ear_compile.kernels.tiles`) was measured at 10–30% density with every
centroid in the compensation; the fixture's 30 dB point runs at 2–3% with ``exact_centroids``, where a
row tile visits a handful of key tiles and its fixed costs (loading the query rows through the
permutation, the listed centroids, the tail, the write-back) weigh more. This script takes the inputs
the kernel really gets there: it runs the op once (Triton, video-like Q/K/V of a Wan shape) and keeps
its clustering and block map, rebuilds the sorted keys, cluster means and query means from them, and
times the attention kernel alone (``torch.profiler``, ``_sparse_attention_kernel``) for each tile, plan
built for that tile. The plan runs its work head by head (within a head costliest first), which keeps a
head's keys and values in L2; ``--order both`` also times each tile with the work in one cost order over
all heads (the plan's order before the thirteenth session). ``--contiguous-keys`` also times each tile
with :mod:`diagnose_kernel`'s copy of the kernel that loads each key tile contiguously (wrong output,
same flops and loop): the difference is the cost of the gather and its index arithmetic there. The
compiled kernels' register, spill and shared-memory use is printed at the end.

Each variant's output is compared with the op's own output (same clustering and routing): the largest
absolute difference relative to the output's largest entry, printed beside its time, so a fast row is
never a silently wrong one.

    python benchmarks/sweep_attention_tiles.py --heads 12 --density 0.02 --json $OUT/tiles_1p3b.json
    python benchmarks/sweep_attention_tiles.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03
    python benchmarks/sweep_attention_tiles.py --density 0.03 --tiles 128x128x8x3 64x64x4x3 --order head
    python benchmarks/sweep_attention_tiles.py --tiles 64x64x4x3 --contiguous-keys
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import pathlib
import tempfile

import torch
from _timing import add_config_set_argument, add_video_shape_arguments, kernel_ms, tile_spec, video_inputs
from diagnose_kernel import contiguous_copy, print_compiled

from svg_ear_compile import SvgEarConfig, SvgEarState
from svg_ear_compile.kernels import sparse_attention as shipped
from svg_ear_compile.kernels.attention_plan import AttentionPlan
from svg_ear_compile.kernels.block_map import BlockMap
from svg_ear_compile.kernels.cluster_stats import segment_means, sorted_with_stats
from svg_ear_compile.kernels.permute_ref import cluster_layout
from svg_ear_compile.kernels.sparse_attention import sparse_attention_plan
from svg_ear_compile.kernels.tiles import tile_config
from svg_ear_compile.pipeline import run_pipeline

# Each tile with and without remainder tiles of half its height (the table's H100 entries use none).
TILES = [(m, n, w, s, r) for m, n, w, s in itertools.product((64, 128), (64, 128), (4, 8), (2, 3, 4))
         for r in (None, m // 2)]


def by_global_cost(plan: AttentionPlan, num_q: int, extra_keys: int) -> AttentionPlan:
    """``plan`` with its work items in one cost order (rows × keys to visit, costliest first) over all
    heads instead of head by head; empty items stay last."""
    def reorder(work: torch.Tensor) -> torch.Tensor:
        rows = (work[:, 3] - work[:, 2]).long()
        keys = plan.range_total[(work[:, 0] * num_q + work[:, 1]).long()] + extra_keys + 1
        cost = torch.where(rows > 0, rows * keys, -1)
        return work[torch.argsort(cost, descending=True, stable=True)].contiguous()

    return plan._replace(work=reorder(plan.work),
                         remainder_work=None if plan.remainder_work is None else reorder(plan.remainder_work))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_video_shape_arguments(parser)
    parser.add_argument("--density", type=float, default=0.02, help="the routing budget")
    parser.add_argument("--q-clusters", type=int, default=128)
    parser.add_argument("--k-clusters", type=int, default=1024)
    parser.add_argument("--exact-centroids", type=int, default=64, help="0: every centroid in the compensation")
    parser.add_argument("--order", choices=["head", "global", "both"], default="head",
                        help="work head by head (the plan's), in one cost order over all heads, or both")
    parser.add_argument("--tiles", type=tile_spec, nargs="+", default=None, metavar="MxNxWARPSxSTAGES[xR]",
                        help="these tiles only (default: the table's, then a sweep of 48)")
    parser.add_argument("--contiguous-keys", action="store_true",
                        help="also time each tile with contiguous key loads (wrong output, same flops)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    add_config_set_argument(parser)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("sweep_attention_tiles.py times the Triton kernel: it needs a CUDA device")

    device = torch.device("cuda")
    q, k, v = video_inputs(args, dtype=torch.bfloat16, device=device)
    exact = args.exact_centroids or None
    config = SvgEarConfig(num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters, budget=args.density,
                          min_seq_len=0, impl="triton", cuda_graph=False, kmeans_iters=1, kmeans_iters_init=10,
                          exact_centroids=exact).replace(**dict(args.set))
    reference, stats = run_pipeline(q, k, v, config, SvgEarState())
    reference = reference[0]
    queries, keys, values = q[0], k[0], v[0]
    query_layout = cluster_layout(stats["query_labels"][0], args.q_clusters)
    key_layout = cluster_layout(stats["key_labels"][0], args.k_clusters)
    keys_sorted, values_sorted, key_means, value_means = sorted_with_stats(keys, values, key_layout.perm,
                                                                           key_layout.offsets)
    query_means = segment_means(queries, query_layout.offsets, row_index=query_layout.perm)[0]
    block_map = BlockMap.from_selection(stats["selected"][0], query_layout.sizes, key_layout.sizes)
    density = float(block_map.density().mean())
    default = tile_config(args.head_dim, queries.shape[1], device, density=args.density)
    print(f"shape H={args.heads} S={queries.shape[1]} D={args.head_dim}, budget {args.density} (density "
          f"{density:.2%}), QC {args.q_clusters}, KC {args.k_clusters}, exact_centroids {exact}, "
          f"{torch.cuda.get_device_name()}; table tiles {default}; the first row is the baseline")
    print(f"{'block_m':>8}{'block_n':>8}{'warps':>6}{'stages':>7}{'rem_m':>6}{'order':>6}{'kernel ms':>11}"
          f"{'vs table':>9}{'max diff':>10}")

    contiguous = None
    if args.contiguous_keys:
        directory = tempfile.TemporaryDirectory()
        contiguous = contiguous_copy(pathlib.Path(directory.name))
    out = torch.empty_like(reference)
    compensation_keys = exact + 1 if exact else args.k_clusters  # what the plan adds to a row's keys
    orders = (["head", "global"] if args.order == "both" else [args.order]) + (["contig"] if contiguous else [])
    rows, table_ms = [], None
    tiles = args.tiles or sorted(TILES, key=lambda t: t != (default.block_m, default.block_n, default.num_warps,
                                                            default.num_stages, default.remainder_m))
    for block_m, block_n, warps, stages, *remainder in tiles:
        remainder = remainder[0] if remainder else None
        launch = dict(block_m=block_m, block_n=block_n, remainder_m=remainder)
        plan = sparse_attention_plan(query_layout, key_layout, block_map, True, exact_centroids=exact, **launch)
        for order in orders:
            ordered = by_global_cost(plan, args.q_clusters, compensation_keys) if order == "global" else plan
            module = contiguous if order == "contig" else shipped
            call = functools.partial(module.sparse_attention, queries, keys_sorted, values_sorted, query_layout,
                                     key_layout, block_map, key_means, value_means, args.head_dim ** -0.5, True,
                                     num_warps=warps, num_stages=stages, out=out, exact_centroids=exact,
                                     query_means=query_means, plan=ordered, queries_in_place=True, **launch)
            try:
                out.fill_(float("nan"))
                difference = float((call().float() - reference.float()).abs().max() / reference.float().abs().max())
                ms = kernel_ms(call, "_sparse_attention_kernel", calls=10)
            except Exception as error:  # noqa: BLE001 - a tile that does not compile is reported, not fatal
                print(f"{block_m:>8}{block_n:>8}{warps:>6}{stages:>7}{remainder!s:>6}{order:>6}  failed: "
                      f"{type(error).__name__}: {str(error)[:80]}", flush=True)
                continue
            table_ms = table_ms if table_ms is not None else ms
            rows.append(dict(block_m=block_m, block_n=block_n, num_warps=warps, num_stages=stages,
                             remainder_m=remainder, order=order, kernel_ms=ms, max_rel_difference=difference))
            print(f"{block_m:>8}{block_n:>8}{warps:>6}{stages:>7}{remainder!s:>6}{order:>6}{ms:>11.3f}"
                  f"{table_ms / ms:>8.2f}x{difference:>10.1e}", flush=True)

    print("\nfastest five:")
    for row in sorted(rows, key=lambda r: r["kernel_ms"])[:5]:
        print(f"  {row['block_m']}x{row['block_n']} w{row['num_warps']} s{row['num_stages']} "
              f"r{row['remainder_m']} {row['order']}: {row['kernel_ms']:.3f} ms ({table_ms / row['kernel_ms']:.2f}x)")
    print()
    print_compiled(limit=len(tiles))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(shape=dict(heads=args.heads, seq_len=queries.shape[1], head_dim=args.head_dim),
                           budget=args.density, density=density, q_clusters=args.q_clusters,
                           k_clusters=args.k_clusters, exact_centroids=exact, device=torch.cuda.get_device_name(),
                           rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
