"""Session 19 experiment: where the host's time goes in an eager call reusing a routing (cProfile).

Wan2.1-1.3B 480p shape at the operating point (2%, QC 128, KC 1,024, 64 listed, refresh_every 6).
"""
import cProfile
import pstats
import time

import torch

from svg_ear_compile import SvgEarConfig, SvgEarState
from svg_ear_compile.pipeline import run_pipeline
from svg_ear_compile.workloads import video_qkv

q, k, v = video_qkv(1, 12, 21, 30, 52, 128, dtype=torch.bfloat16, device="cuda")
config = SvgEarConfig(num_q_clusters=128, num_k_clusters=1024, budget=0.02, min_seq_len=0, impl="triton",
                      refresh_every=6, kmeans_iters=1, kmeans_iters_init=10, exact_centroids=64)
state = SvgEarState()
for _ in range(14):
    run_pipeline(q, k, v, config, state)
torch.cuda.synchronize()
profiler = cProfile.Profile()
issue = []
for call in range(12):
    torch.cuda.synchronize()
    start = time.perf_counter()
    if call % 6:
        profiler.enable()
    _, stats = run_pipeline(q, k, v, config, state)
    if call % 6:
        profiler.disable()
        issue.append((time.perf_counter() - start) * 1e3)
    torch.cuda.synchronize()
print("reusing calls, host issue ms (profiled):", ", ".join(f"{x:.2f}" for x in issue))
pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
