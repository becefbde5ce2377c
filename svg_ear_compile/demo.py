"""``make demo``: a diffusers Wan transformer compiled with ``backend="svg_ear"``, dense vs sparse.

Part 1 builds a small ``WanTransformer3DModel`` (random weights: no download), compiles it once with
Inductor alone and once with ``backend="svg_ear"``, runs the same short flow-matching denoising loop
through both from the same noise, and prints what the backend rewrote, the density per layer and
step, the PSNR of the final latent against the dense run, and the time of each loop.

Part 2 compares the routing/compensation modes on one attention call of a structured, video-like
clip (relative error against exact attention at equal density).

    python -m svg_ear_compile.demo --frames 5 --height 16 --width 24 --steps 8 --budget 0.25
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import torch
import torch.nn.functional as F

from . import SvgEarConfig, SvgEarState, explain, record, svg_ear_attention
from .ops import reset_centroid_caches
from .workloads import video_qkv

MODES = {
    "SVG-EAR (error-aware + compensation)": dict(routing="error_aware", compensation=True),
    "SVG2 (top mass, dropped)": dict(routing="attention", compensation=False),
    "compensation only (top mass)": dict(routing="attention", compensation=True),
    "error-aware only (dropped)": dict(routing="error_aware", compensation=False),
}


def _timed(fn, repeats: int = 3):
    """Result of ``fn`` and the median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, sorted(times)[len(times) // 2]


def psnr(actual: torch.Tensor, reference: torch.Tensor) -> float:
    """``10·log10(range² / MSE)`` with the reference's value range; ``inf`` when identical."""
    mse = float((actual.double() - reference.double()).square().mean())
    value_range = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(value_range**2 / mse)


def small_wan(layers: int, heads: int, head_dim: int, seed: int = 0) -> torch.nn.Module:
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim, in_channels=4, out_channels=4,
        text_dim=64, freq_dim=64, ffn_dim=4 * heads * head_dim, num_layers=layers, rope_max_seq_len=64,
    ).eval()


def denoise(model, noise: torch.Tensor, text: torch.Tensor, steps: int) -> torch.Tensor:
    """Flow-matching Euler steps from σ=1 to σ=0: ``x ← x + (σ_next − σ)·v(x, 1000σ)``."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)
    latent = noise
    with torch.no_grad():
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:], strict=True):
            velocity = model(hidden_states=latent, timestep=(1000 * sigma).reshape(1), encoder_hidden_states=text,
                             return_dict=False)[0]
            latent = latent + (sigma_next - sigma) * velocity
    return latent


def model_demo(args: argparse.Namespace) -> None:
    model = small_wan(args.layers, args.heads, args.head_dim)
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(1, 4, args.frames, args.height, args.width, generator=gen)
    text = torch.randn(1, 16, 64, generator=gen)
    tokens = args.frames * (args.height // 2) * (args.width // 2)
    options = dict(budget=args.budget, num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters,
                   min_seq_len=0, dense_above_timestep=args.dense_above)
    print(f"Part 1: WanTransformer3DModel, {args.layers} layers x {args.heads} heads x {args.head_dim}, random "
          f"weights, {tokens} video tokens, {args.steps} denoising steps, float32 on CPU")
    print(f"backend options: {options}\n")
    explain(model, model_kwargs=dict(hidden_states=noise, timestep=torch.tensor([1000.0]),
                                     encoder_hidden_states=text, return_dict=False), **options)

    runs = {}
    for name, compile_kwargs in (("dense (Inductor, SDPA)", {}),
                                 ("svg_ear", dict(backend="svg_ear", options=options))):
        torch._dynamo.reset()
        reset_centroid_caches()
        compiled = torch.compile(model, **compile_kwargs)
        start = time.perf_counter()
        denoise(compiled, noise, text, 1)
        compile_seconds = time.perf_counter() - start
        reset_centroid_caches()
        with record() as rec:
            start = time.perf_counter()
            latent = denoise(compiled, noise, text, args.steps)
            seconds = time.perf_counter() - start
        runs[name] = (latent, compile_seconds, seconds, rec)

    dense = runs["dense (Inductor, SDPA)"][0]
    rec = runs["svg_ear"][3]
    print(f"\nsvg_ear op calls (layer, denoising step; 'exact' = warm-up above timestep {args.dense_above}):")
    print(rec.table())
    print(f"\n{'run':24s} {'density':>8s} {'PSNR vs dense':>14s} {'update rel.err':>15s} {'first call s':>13s} "
          f"{'loop s':>8s}")
    for name, (latent, compile_seconds, seconds, run_rec) in runs.items():
        density = f"{run_rec.mean_density():.1%}" if run_rec.records else "100%"
        update_error = float((latent - dense).norm() / (dense - noise).norm())
        print(f"{name:24s} {density:>8s} {psnr(latent, dense):11.2f} dB {update_error:15.2e} "
              f"{compile_seconds:13.1f} {seconds:8.2f}")
    print("\nPSNR of the final latent; 'update rel.err' = ‖x₀ − x₀(dense)‖ / ‖x₀(dense) − noise‖, the error on\n"
          "what the loop changed. Density averages every op call, warm-up steps (exact) included. The\n"
          "weights are random, so this measures how faithfully the sparse attention reproduces the dense\n"
          "computation, not image quality. Times are the torch reference path on a CPU (first call =\n"
          "compile + one step); the Triton kernels are what turn density into speed on a GPU.\n")


def attention_demo(args: argparse.Namespace) -> None:
    q, k, v = video_qkv(1, 4, 8, 24, 32, 64)
    print(f"Part 2: one attention call on a structured clip: B=1 H=4 S={q.shape[2]} D=64 float32 on CPU")
    exact, dense_time = _timed(lambda: F.scaled_dot_product_attention(q, k, v))
    print(f"exact SDPA: {dense_time * 1e3:8.1f} ms\n")
    print(f"{'mode':40s} {'target':>6s} {'density':>8s} {'rel.err':>8s} {'warm ms':>8s}")
    base = SvgEarConfig(num_q_clusters=64, num_k_clusters=256, min_seq_len=0, kmeans_iters_init=20)
    for density in args.densities:
        for name, mode in MODES.items():
            cfg = base.replace(budget=density, **mode)
            run = functools.partial(svg_ear_attention, q, k, v, cfg, state=SvgEarState(), return_stats=True)
            (out, stats), seconds = _timed(run)
            error = float((out - exact).norm() / exact.norm())
            print(f"{name:40s} {density:6.0%} {stats['density']:8.1%} {error:8.4f} {seconds * 1e3:8.1f}")
        print()
    print("Lower relative error at equal density is better.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--height", type=int, default=16)
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--budget", type=float, default=0.25, help="density of the sparse run")
    parser.add_argument("--q-clusters", type=int, default=16)
    parser.add_argument("--k-clusters", type=int, default=48)
    parser.add_argument("--dense-above", type=float, default=800.0, help="exact attention above this timestep")
    parser.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3], help="part 2")
    parser.add_argument("--part", choices=["all", "model", "attention"], default="all")
    args = parser.parse_args(argv)
    if args.part in ("all", "model"):
        model_demo(args)
    if args.part in ("all", "attention"):
        attention_demo(args)


if __name__ == "__main__":
    main()
