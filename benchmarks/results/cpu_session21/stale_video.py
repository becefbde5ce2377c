"""CPU: does a second video sampled without reset_centroid_caches() lose quality? (fixture, native clip)"""
import copy, dataclasses, sys, time
import torch
import svg_ear_compile
from svg_ear_compile.fixture import load_fixture
from svg_ear_compile.fixture.sample import sample
from svg_ear_compile.metrics import psnr, ssim
from svg_ear_compile.ops import reset_centroid_caches

torch.manual_seed(0)
fx = load_fixture(device=torch.device("cpu"), dtype=torch.float32)
refresh = int(sys.argv[1]) if len(sys.argv) > 1 else 3
opts = dict(budget=0.1, num_q_clusters=64, num_k_clusters=256, refresh_every=refresh, kmeans_iters=1, kmeans_iters_init=10)
kw = dict(steps=10, guidance=1.0)
dense_model = copy.deepcopy(fx.model); dense_model.compile_repeated_blocks()
sparse_model = copy.deepcopy(fx.model); svg_ear_compile.compile_repeated_blocks(sparse_model, opts)
dense, sparse = dataclasses.replace(fx, model=dense_model), dataclasses.replace(fx, model=sparse_model)
A, B = (0, 0), (1, 1)
t = time.time()
ref_b = sample(dense, *B, **kw, progress=False)
reset_centroid_caches()
fresh_b = sample(sparse, *B, **kw, progress=False)
reset_centroid_caches()
_ = sample(sparse, *A, **kw, progress=False)
stale_b = sample(sparse, *B, **kw, progress=False)
def q(x): return f"{float(psnr(x, ref_b)):.2f} dB, SSIM {float(ssim(x, ref_b)):.4f}"
print(f"refresh_every={refresh}: B after a reset: {q(fresh_b)}; B right after A, no reset: {q(stale_b)}; {time.time()-t:.0f} s")
