"""Session 19 experiment: the tail-weights kernel's launch settings against the torch reference it replaced."""
import statistics

import torch
import triton

from svg_ear_compile.kernels.compensation_tail import _tail_weights_kernel
from svg_ear_compile.kernels.compensation_tail_ref import tail_weights_ref


def timed(fn, repeats=25):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


for name, groups, num_q in (("1.3B", 12, 128), ("14B", 40, 128), ("14B QC256", 40, 256)):
    num_k, dim, exact = 1024, 128, 64
    gen = torch.Generator(device="cuda").manual_seed(0)
    points = torch.randn(groups, num_q, dim, device="cuda", generator=gen)
    centroids = torch.randn(groups, num_k, dim, device="cuda", generator=gen) * 0.3
    means = torch.randn(groups, num_k, dim, device="cuda", generator=gen)
    log_sizes = torch.randint(1, 80, (groups, num_k), device="cuda", generator=gen).float().log()
    selected = torch.rand(groups, num_q, num_k, device="cuda", generator=gen) < 0.03
    ref = tail_weights_ref(points, centroids, means, log_sizes, selected, 0.088, exact)
    print(f"{name}: G={groups} QC={num_q} KC={num_k}; torch reference {timed(lambda: tail_weights_ref(points, centroids, means, log_sizes, selected, 0.088, exact)):.3f} ms")
    for rank_rows, warps, block_c in ((4, 8, 64), (16, 8, 64), (16, 4, 64), (8, 4, 32), (16, 8, 32), (16, 16, 64)):
        outs = (torch.empty(groups, num_q, num_k, device="cuda"), torch.empty(groups, num_q, exact, dtype=torch.int32, device="cuda"),
                torch.empty(groups, num_q, device="cuda"), torch.empty(groups, num_q, dim, device="cuda"),
                torch.empty(groups, num_q, dim, device="cuda"))

        def run():
            _tail_weights_kernel[(groups * triton.cdiv(num_q, 16),)](
                points, centroids, means, log_sizes, selected.view(torch.uint8), *outs, num_q, num_k, exact, 0.088,
                HEAD_DIM=dim, VALUE_DIM=dim, BLOCK_Q=16, BLOCK_K=1024, BLOCK_C=block_c, BLOCK_D=128, BLOCK_DV=128,
                RANK_ROWS=rank_rows, num_warps=warps)
        try:
            ms = timed(run)
        except Exception as error:  # noqa: BLE001
            print(f"  rank_rows={rank_rows} warps={warps} block_c={block_c}: {type(error).__name__}: {str(error)[:100]}")
            continue
        weights, listed, log2w, mean_key, value = outs
        same = torch.equal(listed, ref[0])
        err = max(float((a - b).abs().max()) for a, b in ((log2w, ref[1]), (weights, ref[2]), (mean_key, ref[3]), (value, ref[4])))
        print(f"  rank_rows={rank_rows} warps={warps} block_c={block_c}: {ms:.3f} ms, listed equal {same}, max abs diff {err:.2e}")
