"""Experiment (kept out of the tree): where the sparse kernel's time goes, as raw tile work vs useful work.

For the loop kernel of loop.py (INDEX 0: shipped token lookup, 2: token rows from a table,
3: contiguous rows, wrong output) with and without compensation, prints per variant: ms, useful
TFLOP/s (selected area), raw TFLOP/s (every MMA tile issued: padded query rows, the masked last
key tile, compensation tiles), and the fill factors that separate the two.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, "benchmarks")
from loop import run  # noqa: E402


def raw_work(plan, block_m, block_n, num_q, num_k, head_dim, comp):
    work = plan.work.long()
    real = work[:, 3] > work[:, 2]
    block_row = work[real, 0] * num_q + work[real, 1]
    key_tiles = (plan.range_total.long()[block_row] + block_n - 1) // block_n
    comp_tiles = (num_k + block_n - 1) // block_n if comp else 0
    rows = (work[real, 3] - work[real, 2]).sum().item()
    tiles = (key_tiles + comp_tiles).sum().item()
    key_only = key_tiles.sum().item()
    return dict(raw=4 * head_dim * block_m * block_n * tiles, row_fill=rows / (real.sum().item() * block_m),
                key_tiles=key_only, all_tiles=tiles)


def main():
    from bench_kernels import bench, clustered_problem
    parser = argparse.ArgumentParser()
    parser.add_argument("--shapes", nargs="+", default=["14b"])
    parser.add_argument("--densities", nargs="+", type=float, default=[0.1, 0.2])
    parser.add_argument("--tiles", nargs="+", default=["128,128,8,3", "128,64,4,3", "64,64,4,3"])
    parser.add_argument("--indices", nargs="+", type=int, default=[0, 2, 3])
    a = parser.parse_args()
    device, dtype = torch.device("cuda"), torch.bfloat16
    shapes = {"1.3b": (12, 21, 30, 52), "14b": (40, 21, 45, 80)}
    args = argparse.Namespace(head_dim=128, q_clusters=256, k_clusters=1024, kmeans_iters=20, map_heads=4)
    for shape in a.shapes:
        for density in a.densities:
            p = clustered_problem(*shapes[shape], 128, density, args, device, dtype)
            seq_len = p["q"].shape[1]
            area = float((p["block_map"].density().double() * seq_len**2).sum())
            useful = 4 * 128 * area
            print(f"\n## {shape} target {density:.0%}: useful {useful / 1e12:.2f} TFLOP", flush=True)
            print("| tile | index | comp | ms | useful TFLOP/s | raw TFLOP/s | query-row fill | key-tile fill | "
                  "comp share of tiles |", flush=True)
            cache = {}
            for tile in (tuple(int(x) for x in t.split(",")) for t in a.tiles):
                for comp in (True, False):
                    for index in a.indices:
                        try:
                            run(p, comp, tile, index, True, False, cache)
                            ms = bench(lambda: run(p, comp, tile, index, True, False, cache), True)
                            plan = cache[tile[:2]][0]
                            w = raw_work(plan, tile[0], tile[1], 256, 1024, 128, comp)
                            # key-tile fill: selected area over the area of issued key tiles (rows as issued)
                            issued_key_area = w["key_tiles"] * tile[0] * tile[1]
                            print(f"| {tile} | {index} | {comp} | {ms:.2f} | {useful / ms / 1e9:.0f} | "
                                  f"{w['raw'] / ms / 1e9:.0f} | {w['row_fill']:.1%} | "
                                  f"{area / issued_key_area / w['row_fill']:.1%} | "
                                  f"{1 - w['key_tiles'] / w['all_tiles']:.1%} |", flush=True)
                        except Exception as e:  # noqa: BLE001
                            print(f"| {tile} | {index} | {comp} | FAILED {type(e).__name__}: {str(e)[:200]} |",
                                  flush=True)
            del p, cache
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
