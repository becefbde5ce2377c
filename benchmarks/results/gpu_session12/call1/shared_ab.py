"""Experiment: one warm op call with and without batch_shares_routing, side by side, B=2 (a guidance batch),
at the fixture's long-clip shape (4 heads × 73,728 tokens × 64) and at Wan2.1-14B 720p (40 × 75,600 × 128)."""
import torch
from triton.testing import do_bench

from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
from svg_ear_compile.workloads import video_qkv

SHAPES = {"fixture-long": (4, 16, 48, 96, 64), "wan14b-720p": (40, 21, 45, 80, 128)}
for name, (heads, f, h, w, d) in SHAPES.items():
    q, k, v = video_qkv(2, heads, f, h, w, d, dtype=torch.bfloat16, device="cuda", seed=0)
    # the second video: the first one perturbed (an uncond prediction attends much like the cond one)
    for x in (q, k, v):
        x[1] = x[0] + 0.3 * torch.randn_like(x[0])
    base = SvgEarConfig(num_q_clusters=128, num_k_clusters=512, kmeans_iters=1, kmeans_iters_init=10, budget=0.03,
                        min_seq_len=0)
    results = {}
    for _ in range(2):  # two interleaved rounds
        for shared in (False, True):
            cfg = base.replace(batch_shares_routing=shared)
            state = SvgEarState()
            for _ in range(3):
                svg_ear_attention(q, k, v, cfg, state=state)
            ms = do_bench(lambda cfg=cfg, state=state: svg_ear_attention(q, k, v, cfg, state=state), warmup=5, rep=300)
            results.setdefault(shared, []).append(ms)
    out, stats = svg_ear_attention(q, k, v, base.replace(batch_shares_routing=True), return_stats=True)
    print(f"{name}: B=2 x {heads} heads x {q.shape[2]} tokens x {d}; warm call ms, two rounds: "
          f"unshared {results[False]}, shared {results[True]}; shared/unshared "
          f"{min(results[True]) / min(results[False]):.3f}; density {float(stats['density']):.3f}", flush=True)
    del q, k, v
    torch.cuda.empty_cache()
