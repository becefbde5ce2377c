"""Where does the fused sparse attention kernel lose time? The shipped kernel beside a contiguous-load copy.

The copy is the shipped kernel source with one line changed, ``tokens = offs_n``: each key tile then
loads its keys and values contiguously instead of gathering them through the plan's ranges. Its output
is wrong; its flops, loop and softmax are the same, so the difference in time is the cost of the gather
and its index arithmetic. Both run on the Wan2.1-1.3B shape (H=12, S=32,760, D=128, bf16) at 20% and
100% density, beside dense SDPA; then the compiled kernel's TTGIR/PTX are searched for the instructions
that show pipelining (``cp.async``, ``wgmma``) and its register/shared-memory use is printed.

    python benchmarks/diagnose_kernel.py        # GPU only
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re
import tempfile

import torch
import torch.nn.functional as F
from bench_kernels import bench, clustered_problem

from svg_ear_compile.kernels import sparse_attention as shipped
from svg_ear_compile.kernels.block_map import BlockMap

_GATHER_LINE = "    return tile_start + lane + tl.gather(deltas, local, 0)\n"
TILES = ((128, 128, 8, 2), (128, 64, 8, 3))
TTGIR_MARKERS = ("async_copy_global_to_local", "warp_group_dot", "async_wait", "local_alloc", "tt.gather")
PTX_MARKERS = ("cp.async", "wgmma.mma_async", "ld.global", "mma.sync", "bar.sync", "shfl.sync")


def contiguous_copy(directory: pathlib.Path):
    """The kernel module with the key gather replaced by contiguous loads (wrong output, same work)."""
    source = pathlib.Path(shipped.__file__).read_text()
    if _GATHER_LINE not in source:
        raise SystemExit("diagnose_kernel: the gather line of sparse_attention.py changed; update _GATHER_LINE")
    path = directory / "sparse_attention_contiguous.py"
    path.write_text(source.replace(_GATHER_LINE, "    return tile_start + lane\n")
                    .replace("from .", "from svg_ear_compile.kernels."))
    spec = importlib.util.spec_from_file_location("sparse_attention_contiguous", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_variants(density: float, contiguous) -> None:
    args = argparse.Namespace(head_dim=128, q_clusters=256, k_clusters=1024, kmeans_iters=10, map_heads=2)
    p = clustered_problem(12, 21, 30, 52, 128, density, args, torch.device("cuda"), torch.bfloat16)
    if density >= 1.0:
        bm = p["block_map"]
        p["block_map"] = BlockMap(torch.ones_like(bm.selected), bm.query_sizes, bm.key_sizes)
    heads, seq_len = p["q"].shape[:2]
    area = float((p["block_map"].density().double() * seq_len**2).sum())
    kernel_args = tuple(p[name] for name in ("q_sorted", "k_sorted", "v_sorted", "q_layout", "k_layout",
                                             "block_map", "k_means", "v_means", "scale"))
    measured = float(p["block_map"].density().mean())
    for tiles in TILES:
        launch = dict(zip(("block_m", "block_n", "num_warps", "num_stages"), tiles, strict=True))
        for name, module in (("gather (shipped)", shipped), ("contiguous keys (wrong output, same flops)",
                                                             contiguous)):
            for compensation in (True, False):
                ms = bench(lambda m=module, c=compensation, t=launch: m.sparse_attention(*kernel_args, c, **t),
                           cuda=True)
                print(f"density {measured:.3f} tiles {tiles} comp={compensation} {name}: {ms:.2f} ms, "
                      f"{4 * 128 * area / ms / 1e9:.0f} TFLOP/s useful", flush=True)
    q, k, v = (p[name].unsqueeze(0) for name in ("q", "k", "v"))
    ms = bench(lambda: F.scaled_dot_product_attention(q, k, v), cuda=True)
    print(f"cuDNN/auto SDPA dense: {ms:.2f} ms, {4 * 128 * heads * seq_len**2 / ms / 1e9:.0f} TFLOP/s", flush=True)


def print_compiled(limit: int = 2) -> None:
    """Instruction counts of the first ``limit`` compiled variants of the shipped kernel."""
    kernel = shipped._sparse_attention_kernel
    cache = kernel.device_caches[torch.cuda.current_device()][0]
    for key, compiled in list(cache.items())[:limit]:
        ttgir, ptx = compiled.asm["ttgir"], compiled.asm["ptx"]
        print("---", str(key)[:160])
        for marker in TTGIR_MARKERS:
            print(f"ttgir {marker}: {len(re.findall(re.escape(marker), ttgir))}")
        for marker in PTX_MARKERS:
            print(f"ptx {marker}: {len(re.findall(re.escape(marker), ptx))}")
        print("shared mem", compiled.metadata.shared, "regs", getattr(compiled, "n_regs", None),
              "spills", getattr(compiled, "n_spills", None))


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("diagnose_kernel: needs a CUDA GPU")
    with tempfile.TemporaryDirectory() as directory:
        contiguous = contiguous_copy(pathlib.Path(directory))
        for density in (0.2, 1.0):
            time_variants(density, contiguous)
    print_compiled()


if __name__ == "__main__":
    main()
