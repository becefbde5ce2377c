"""How full the attention kernel's query tiles are: the share of computed rows that are real rows.

A work item of the fused kernel is up to ``block_m`` rows of one query cluster, so a cluster of n
rows runs ``ceil(n / block_m)`` full tiles. Fill = Σ n / Σ ceil(n / block_m)·block_m, over the query
clusters that k-means (the torch reference, warm-start count as in a cold call) finds on the
structured video workload. Also shown: tiles of ``block_m`` rows with the last partial tile of each
cluster run at half height when it fits (a second launch with ``block_m / 2``).

    python benchmarks/query_tile_fill.py                          # Wan2.1-1.3B 480p shape, 4 of 12 heads
    python benchmarks/query_tile_fill.py --q-clusters 128 256 --block-m 128 64
"""

from __future__ import annotations

import argparse

import torch
from _timing import add_video_shape_arguments, video_inputs

from svg_ear_compile.kernels import kmeans_ref


def tile_fill(sizes: torch.Tensor, block_m: int, half_height_remainders: bool = False) -> float:
    """Real rows / computed rows for clusters of ``sizes`` rows in tiles of ``block_m`` rows."""
    full = torch.div(sizes, block_m, rounding_mode="floor") * block_m
    remainder = sizes - full
    last = torch.where(remainder > 0, float(block_m), 0.0)
    if half_height_remainders:
        last = torch.where((remainder > 0) & (remainder <= block_m // 2), float(block_m // 2), last)
    return float(sizes.sum() / (full + last).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_video_shape_arguments(parser, heads=4)
    parser.add_argument("--q-clusters", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--block-m", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--iters", type=int, default=15, help="k-means iterations from the strided init")
    args = parser.parse_args()

    q, _, _ = video_inputs(args)
    points = q.reshape(args.heads, -1, args.head_dim)
    print(f"S={points.shape[1]}, {args.heads} heads, D={args.head_dim}, k-means {args.iters} iterations")
    print("| QC | mean rows | median | max | " + " | ".join(
        f"fill {m} | fill {m} + {m // 2}-row remainders" for m in args.block_m) + " |")
    print("|---|---|---|---|" + "---|---|" * len(args.block_m))
    for clusters in args.q_clusters:
        _, labels = kmeans_ref.kmeans(points, kmeans_ref.strided_init(points, clusters), args.iters)
        sizes = torch.stack([torch.bincount(row, minlength=clusters) for row in labels]).float()
        fills = " | ".join(f"{tile_fill(sizes, m):.1%} | {tile_fill(sizes, m, True):.1%}" for m in args.block_m)
        print(f"| {clusters} | {sizes.mean():.0f} | {sizes.median():.0f} | {sizes.max():.0f} | {fills} |")


if __name__ == "__main__":
    main()
