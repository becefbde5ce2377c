"""Tile sweep of the k-means assignment and error-probe kernels on the Wan attention shapes (GPU).

For each shape, on video-like Q/K/V (``svg_ear_compile.workloads.video_qkv``, all heads, bf16) with
QC=256 query and KC=1024 key clusters, times with ``triton.testing.do_bench`` (median):

* ``kmeans_assign`` of the queries (256 centroids) and of the keys (1024) for each ``block_n × block_c``;
* ``log_error_probe`` (query-cluster centroids against every key cluster) for each ``block_r × block_n``.

Every variant's output is compared with the default tiles' and the comparison printed beside its time
(share of identical labels; the probe's largest relative difference and whether its ``-inf`` entries,
the empty clusters, coincide), so a faster row is never a silently wrong one.

    python benchmarks/sweep_stage_tiles.py --json $OUT/stage_tiles.json
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch
import triton
import triton.testing

from svg_ear_compile.kernels import cluster_stats_ref, kmeans_ref
from svg_ear_compile.kernels.kmeans import kmeans_assign
from svg_ear_compile.kernels.permute_ref import cluster_layout, permute
from svg_ear_compile.kernels.probe import log_error_probe
from svg_ear_compile.workloads import video_qkv

SHAPES = {"wan-1.3b-480p": (12, 21, 30, 52), "wan-14b-720p": (40, 21, 45, 80)}
ASSIGN_TILES = [(n, c) for n, c in itertools.product((32, 64, 128), (32, 64, 128))]
PROBE_TILES = [(r, n) for r, n in itertools.product((16, 32, 64, 128), (32, 64))]


def median_ms(fn) -> float:
    return triton.testing.do_bench(fn, warmup=10, rep=100, return_mode="median")


def sweep_shape(name: str, heads: int, frames: int, height: int, width: int, rows: list[dict],
                device: str = "cuda", dtype: torch.dtype = torch.bfloat16) -> None:
    q, k, v = (x.reshape(heads, -1, 128).to(dtype).contiguous()
               for x in video_qkv(1, heads, frames, height, width, 128, device=device))
    scale = 128**-0.5
    for label, points, clusters in (("assign q", q, 256), ("assign k", k, 1024)):
        centroids = kmeans_ref.kmeans(points[:, ::4].float(), kmeans_ref.strided_init(points[:, ::4].float(),
                                                                                      clusters), 3)[0]
        centroids = centroids.to(points.dtype)
        reference = kmeans_assign(points, centroids)
        for block_n, block_c in ASSIGN_TILES:
            labels = kmeans_assign(points, centroids, block_n=block_n, block_c=block_c)
            agree = float((labels == reference).double().mean())
            ms = median_ms(lambda p=points, c=centroids, bn=block_n, bc=block_c:
                           kmeans_assign(p, c, block_n=bn, block_c=bc))
            rows.append(dict(shape=name, stage=label, tiles=[block_n, block_c], ms=ms, agreement=agree))
            print(f"| {name} | {label} | {block_n}x{block_c} | {ms:.3f} | labels equal to default: {agree:.5f} |",
                  flush=True)
        if label == "assign q":
            q_labels = reference
        else:
            k_labels = reference
    q_layout, k_layout = cluster_layout(q_labels, 256), cluster_layout(k_labels, 1024)
    query_means = cluster_stats_ref.cluster_means(q.float(), q_labels, q_layout.sizes).to(q.dtype)
    key_means = cluster_stats_ref.cluster_means(k.float(), k_labels, k_layout.sizes).to(k.dtype)
    value_means = cluster_stats_ref.cluster_means(v.float(), k_labels, k_layout.sizes).to(v.dtype)
    keys_sorted, values_sorted = permute(k, k_layout.perm), permute(v, k_layout.perm)
    args = (query_means, keys_sorted, values_sorted, k_layout.offsets, key_means, value_means, scale)
    reference = log_error_probe(*args)
    finite = torch.isfinite(reference)
    for block_r, block_n in PROBE_TILES:
        out = log_error_probe(*args, block_r=block_r, block_n=block_n)
        same_support = bool(torch.equal(torch.isfinite(out), finite))
        error = float(((out - reference).abs() / reference.abs().clamp_min(1.0))[finite].max())
        ms = median_ms(lambda br=block_r, bn=block_n: log_error_probe(*args, block_r=br, block_n=bn))
        rows.append(dict(shape=name, stage="probe", tiles=[block_r, block_n], ms=ms, max_rel_diff=error,
                         same_support=same_support))
        print(f"| {name} | probe | {block_r}x{block_n} | {ms:.3f} | max rel. diff to default {error:.1e}, "
              f"same -inf pattern: {same_support} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("sweep_stage_tiles: needs a CUDA GPU")
    print(f"device: {torch.cuda.get_device_name()}; torch {torch.__version__}; triton {triton.__version__}")
    print("| shape | stage | tiles | ms | check |\n|---|---|---|---|---|")
    rows: list[dict] = []
    for name in args.shapes:
        sweep_shape(name, *SHAPES[name], rows)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
