"""Experiment: the shipped kernel (old copy) against the working tree's, kernel alone (profiler), at
14B 720p shapes for given densities and key-cluster counts; plus the host plan's time and tile stats."""
import argparse
import os
import sys

import torch

sys.path.insert(0, "benchmarks")
from bench_kernels import clustered_problem  # noqa: E402
from triton.testing import do_bench  # noqa: E402

from svg_ear_compile.kernels import sparse_attention as new  # noqa: E402
from svg_ear_compile.kernels import sparse_attention_old as old  # noqa: E402
from svg_ear_compile.kernels.attention_plan import attention_plan  # noqa: E402
from svg_ear_compile.kernels.block_map import BlockMap  # noqa: E402


def kernel_ms(fn, calls=5):
    from torch.profiler import ProfilerActivity, profile
    fn(); torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return sum(e.device_time for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
               and "_sparse_attention_kernel" in e.name) / 1e3 / calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--densities", nargs="+", type=float, default=[0.03, 0.1])
    ap.add_argument("--k-clusters", nargs="+", type=int, default=[1024, 512])
    ap.add_argument("--q-clusters", type=int, default=128)
    ap.add_argument("--tiles", nargs="+", default=["128,128,8,3"])
    ap.add_argument("--shape", default="14b")
    a = ap.parse_args()
    shapes = {"1.3b": (12, 21, 30, 52), "14b": (40, 21, 45, 80)}
    dev, dtype = torch.device("cuda"), torch.bfloat16
    print("| KC | target | density | tile | comp | old ms | new ms | new/old | max diff | plan ms | row fill | key tiles/row | comp tiles/row | programs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kc in a.k_clusters:
        for density in a.densities:
            args = argparse.Namespace(head_dim=128, q_clusters=a.q_clusters, k_clusters=kc, kmeans_iters=20, map_heads=4)
            p = clustered_problem(*shapes[a.shape], 128, density, args, dev, dtype)
            bm = p["block_map"]
            measured = float(bm.density().float().mean())
            base = (p["q_sorted"], p["k_sorted"], p["v_sorted"], p["q_layout"], p["k_layout"], bm,
                    p["k_means"], p["v_means"], p["scale"])
            for tile in (tuple(int(x) for x in t.split(",")) for t in a.tiles):
                bmm, bn, w, s = tile
                sel = bm.selected & (bm.key_sizes > 0).unsqueeze(1)
                plan_fn = lambda: attention_plan(p["q_layout"], p["k_layout"], BlockMap(sel, bm.query_sizes, bm.key_sizes), bmm, bn, kc)  # noqa: E731
                plan_ms = do_bench(plan_fn, warmup=5, rep=100)
                plan = plan_fn()
                work = plan.work.long()
                real = work[:, 3] > work[:, 2]
                rows = (work[real, 3] - work[real, 2]).sum().item()
                block_row = work[real, 0] * a.q_clusters + work[real, 1]
                key_tiles = ((plan.range_total.long()[block_row] + bn - 1) // bn).float().mean().item()
                for comp in (True, False):
                    kw = dict(block_m=bmm, block_n=bn, num_warps=w, num_stages=s)
                    outs = {}
                    times = {}
                    for name, mod in (("old", old), ("new", new)):
                        fn = lambda mod=mod: mod.sparse_attention(*base, comp, **kw)  # noqa: E731
                        outs[name] = fn()
                        times[name] = kernel_ms(fn)
                    diff = (outs["old"].float() - outs["new"].float()).abs().max().item()
                    print(f"| {kc} | {density:.0%} | {measured:.1%} | {tile} | {comp} | {times['old']:.2f} | "
                          f"{times['new']:.2f} | {times['new'] / times['old']:.3f} | {diff:.2e} | {plan_ms:.2f} | "
                          f"{rows / (real.sum().item() * bmm):.1%} | {key_tiles:.1f} | {-(-kc // bn) if comp else 0} | "
                          f"{real.sum().item()} |", flush=True)
            del p, base
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
