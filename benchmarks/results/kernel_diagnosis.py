"""Where does the fused kernel lose time? Same map, three variants, plus what the compiler emitted."""
import argparse, importlib.util, pathlib, re, sys
import torch, triton, triton.testing
sys.path.insert(0, "benchmarks")
import bench_kernels as bk
from svg_ear_compile.kernels import sparse_attention as sa
from svg_ear_compile.kernels.block_map import BlockMap

src = pathlib.Path(sa.__file__).read_text().replace("from .", "from svg_ear_compile.kernels.")
line = "        tokens = offs_n + tl.gather(deltas, local, 0)\n"
assert line in src
variant = pathlib.Path("/tmp/sa_contiguous.py")
variant.write_text(src.replace(line, "        tokens = offs_n\n"))
spec = importlib.util.spec_from_file_location("sa_contiguous", variant)
contig = importlib.util.module_from_spec(spec); spec.loader.exec_module(contig)

args = argparse.Namespace(head_dim=128, q_clusters=256, k_clusters=1024, kmeans_iters=10, map_heads=2)
for density in (0.2, 1.0):
    p = bk.clustered_problem(12, 21, 30, 52, 128, density, args, torch.device("cuda"), torch.bfloat16)
    if density == 1.0:
        bm = p["block_map"]; p["block_map"] = BlockMap(torch.ones_like(bm.selected), bm.query_sizes, bm.key_sizes)
    S = p["q"].shape[1]
    area = float((p["block_map"].density().double() * S**2).sum())
    kargs = (p["q_sorted"], p["k_sorted"], p["v_sorted"], p["q_layout"], p["k_layout"], p["block_map"], p["k_means"], p["v_means"], p["scale"])
    for tiles in ((128, 128, 8, 2), (128, 64, 8, 3)):
        launch = dict(zip(("block_m", "block_n", "num_warps", "num_stages"), tiles))
        for name, mod in (("gather (shipped)", sa), ("contiguous keys (wrong output, same flops)", contig)):
            for comp in (True, False):
                ms = triton.testing.do_bench(lambda: mod.sparse_attention(*kargs, comp, **launch), warmup=25, rep=200, return_mode="median")
                print(f"density {p['block_map'].density().mean():.3f} tiles {tiles} comp={comp} {name}: {ms:.2f} ms, {4*128*area/ms/1e9:.0f} TFLOP/s useful", flush=True)
    q4, k4, v4 = (p[x].unsqueeze(0) for x in ("q", "k", "v"))
    ms = triton.testing.do_bench(lambda: torch.nn.functional.scaled_dot_product_attention(q4, k4, v4), warmup=25, rep=200, return_mode="median")
    print(f"cuDNN/auto SDPA dense: {ms:.2f} ms, {4*128*12*S*S/ms/1e9:.0f} TFLOP/s", flush=True)

kernel = sa._sparse_attention_kernel
try:
    cache = kernel.device_caches[torch.cuda.current_device()][0] if hasattr(kernel, "device_caches") else kernel.cache[torch.cuda.current_device()]
    for key, compiled in list(cache.items())[:2]:
        ttgir, ptx = compiled.asm["ttgir"], compiled.asm["ptx"]
        print("---", str(key)[:160])
        for pat in ("async_copy_global_to_local", "warp_group_dot", "ttng.warp_group_dot_wait", "async_wait", "local_alloc", "tt.gather", "num-stages", "ttg.num-warps"):
            print(f"ttgir {pat}: {len(re.findall(re.escape(pat), ttgir))}")
        for pat in ("cp.async", "wgmma.mma_async", "ld.global", "mma.sync", "bar.sync", "shfl.sync"):
            print(f"ptx {pat}: {len(re.findall(re.escape(pat), ptx))}")
        print("shared mem", compiled.metadata.shared, "regs", getattr(compiled, "n_regs", None), "spills", getattr(compiled, "n_spills", None))
except Exception as e:
    print("asm inspection failed:", type(e).__name__, e)
