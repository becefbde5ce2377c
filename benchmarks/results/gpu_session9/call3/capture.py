"""Experiment: the sparse kernel on the arguments it gets inside a Wan2.1-14B 720p forward (random weights).

Runs the regional svg_ear compile of bench_e2e's 14B model at one config, captures the sparse_attention
arguments of a few layers on a warm fresh call, then times the kernel alone on them (profiler) with the
shipped tiles and alternatives, and prints what shapes its work: query-tile fill, key tiles per row,
cluster sizes, density spread."""
import argparse
import sys

import torch

sys.path.insert(0, "benchmarks")
import bench_e2e as be  # noqa: E402

from svg_ear_compile.kernels import sparse_attention as sa  # noqa: E402
from svg_ear_compile.kernels.attention_plan import attention_plan  # noqa: E402
from svg_ear_compile.kernels.block_map import BlockMap  # noqa: E402
from svg_ear_compile.ops import reset_centroid_caches  # noqa: E402


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
    ap.add_argument("--layers", nargs="+", type=int, default=[0, 13, 26, 39])
    ap.add_argument("--k-clusters", type=int, default=512)
    ap.add_argument("--budget", type=float, default=0.03)
    ap.add_argument("--tiles", nargs="+", default=["128,128,8,3", "128,128,8,3,64", "64,128,4,3", "128,64,8,3"])
    a = ap.parse_args()
    dev, dtype = torch.device("cuda"), torch.bfloat16
    config, latent = be.MODELS["14b"]
    model = be.build_model(config, dev, dtype)
    gen = torch.Generator(dev).manual_seed(1)
    inputs = dict(hidden_states=torch.randn(latent, generator=gen, device=dev, dtype=dtype),
                  timestep=torch.tensor([500.0], device=dev),
                  encoder_hidden_states=torch.randn(1, be.TEXT_TOKENS, config["text_dim"], generator=gen,
                                                    device=dev, dtype=dtype), return_dict=False)
    options = dict(num_q_clusters=128, num_k_clusters=a.k_clusters, kmeans_iters=1, kmeans_iters_init=10,
                   refresh_every=3, budget=a.budget)
    forward = be.compile_run(model, "svg_ear", options, True, None)
    calls, captured, capture = [0], {}, [False]
    shipped = sa.sparse_attention

    def spy(*args, **kwargs):
        if capture[0]:
            layer = calls[0] % config["num_layers"]
            if layer in a.layers:
                captured[layer] = (args, kwargs)
            calls[0] += 1
        return shipped(*args, **kwargs)

    sa.sparse_attention = spy
    with torch.no_grad(), be.sdpa_cudnn_first(dev):
        reset_centroid_caches()
        for _ in range(3):  # cold fresh, reuse, reuse
            forward(**inputs)
        capture[0] = True
        forward(**inputs)  # warm fresh
        torch.cuda.synchronize()
    sa.sparse_attention = shipped
    del model
    torch.cuda.empty_cache()
    print(f"config {options}; captured layers {sorted(captured)}")
    print("| layer | density (min-max over heads) | q sizes min/median/max | fill 128 | key tiles/row mean (max) | "
          + " | ".join(f"{t} ms" for t in a.tiles) + " | no comp ms |")
    print("|---" * (6 + len(a.tiles)) + "|")
    for layer, (args, kwargs) in sorted(captured.items()):
        q_layout, k_layout, bm = args[3], args[4], args[5]
        density = bm.density().float()
        sizes = q_layout.sizes.float().flatten()
        fill = float(sizes.sum() / ((sizes / 128).ceil() * 128).sum())
        sel = bm.selected & (bm.key_sizes > 0).unsqueeze(1)
        plan = attention_plan(q_layout, k_layout, BlockMap(sel, bm.query_sizes, bm.key_sizes), 128, 128,
                              a.k_clusters)
        tiles_row = ((plan.range_total.float() + 127) // 128)
        weights = q_layout.sizes.flatten().float()
        mean_tiles = float((tiles_row * weights).sum() / weights.sum())
        times = []
        for t in a.tiles:
            m, n, w, s, *r = (int(x) for x in t.split(","))
            kw = dict(kwargs, block_m=m, block_n=n, num_warps=w, num_stages=s, remainder_m=r[0] if r else None)
            kw.pop("out", None)
            times.append(kernel_ms(lambda kw=kw: shipped(*args, **kw)))
        kw = dict(kwargs)
        kw.pop("out", None)
        no_comp = list(args)
        no_comp[9] = False
        times.append(kernel_ms(lambda: shipped(*no_comp, **kw)))
        print(f"| {layer} | {density.mean():.1%} ({density.min():.1%}-{density.max():.1%}) | "
              f"{sizes.min():.0f}/{sizes.median():.0f}/{sizes.max():.0f} | {fill:.1%} | {mean_tiles:.1f} "
              f"({tiles_row.max():.0f}) | " + " | ".join(f"{x:.2f}" for x in times) + " |", flush=True)


if __name__ == "__main__":
    main()
