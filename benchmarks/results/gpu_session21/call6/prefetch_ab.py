"""Session 21, call 6: the whole-model 1.3B forward (backend="svg_ear", budget 0.02, staggered), one compiled model,
its timestep prefetch on and off in interleaved rounds (the backend looks runtime.prefetch_timestep up per call)."""
import json
import statistics
import sys

import torch

sys.path.insert(0, "benchmarks")
from _timing import median_ms  # noqa: E402
from bench_e2e import MODELS, TEXT_TOKENS, build_model, sdpa_cudnn_first  # noqa: E402

from svg_ear_compile import runtime  # noqa: E402
from svg_ear_compile.ops import reset_centroid_caches  # noqa: E402

device = torch.device("cuda")
config, latent = MODELS["1.3b"]
model = build_model(config, device, torch.bfloat16)
gen = torch.Generator(device).manual_seed(1)
inputs = dict(hidden_states=torch.randn(latent, generator=gen, device=device, dtype=torch.bfloat16),
              encoder_hidden_states=torch.randn(1, TEXT_TOKENS, config["text_dim"], generator=gen, device=device,
                                                dtype=torch.bfloat16), return_dict=False)
timestep = torch.tensor([500.0], device=device)
options = dict(budget=0.02, num_q_clusters=128, num_k_clusters=1024, exact_centroids=64, kmeans_iters=1,
               kmeans_iters_init=10, refresh_every=6, stagger_refresh=True)
compiled = torch.compile(model, backend="svg_ear", options=options)
prefetch = runtime.prefetch_timestep
results = {"on": [], "off": []}
with torch.no_grad(), sdpa_cudnn_first(device):
    reset_centroid_caches()
    forward = lambda: compiled(**inputs, timestep=timestep.clone())  # noqa: E731
    median_ms(forward, device, 6, warmup=6)
    for _ in range(4):
        for mode in ("on", "off"):
            runtime.prefetch_timestep = prefetch if mode == "on" else (lambda t: None)
            results[mode] += median_ms(forward, device, 6, warmup=0)[1]
runtime.prefetch_timestep = prefetch
for mode, times in results.items():
    print(f"prefetch {mode}: median {statistics.median(times):.1f} ms, mean {statistics.mean(times):.1f}, "
          f"min {min(times):.1f}, max {max(times):.1f} over {len(times)} forwards")
json.dump(results, open(sys.argv[1], "w"))
