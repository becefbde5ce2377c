"""One Wan2.1-1.3B transformer forward: ``torch.compile`` default (Inductor + SDPA) vs ``backend="svg_ear"``.

The full-size architecture (30 layers × 12 heads × 128, FFN 8960, text 4096; random weights) at 480p ×
81 frames (latent 16 × 21 × 60 × 104 → 21·30·52 = 32,760 tokens), bf16, B=1. For each run: compile
time (first call), then the median of ``--repeats`` forwards timed with CUDA events after warm-up,
the density the op reported, and the relative error of the output against the default compile.
The sparse op's ``impl`` is printed: until the Triton kernels are wired in, this is the reference path.

    python benchmarks/bench_wan_forward.py --json $OUT/wan_forward.json           # H100
    python benchmarks/bench_wan_forward.py --tiny                                  # CPU smoke run
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import statistics
import time

import torch
from _timing import synchronize

import svg_ear_compile
from svg_ear_compile.ops import reset_centroid_caches

WAN_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
                text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads")
TINY = dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=16, text_dim=32, freq_dim=32, ffn_dim=64,
            num_layers=2, in_channels=4, out_channels=4, rope_max_seq_len=32)


def _milliseconds(fn, device: torch.device, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer toy at a tiny shape (CPU smoke run)")
    parser.add_argument("--budget", type=float, default=0.2)
    parser.add_argument("--q-clusters", type=int, default=256)
    parser.add_argument("--k-clusters", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    config = TINY if args.tiny else WAN_1_3B
    model = WanTransformer3DModel(**config).to(device, dtype).eval()
    latent_shape = (1, config["in_channels"], 3, 8, 8) if args.tiny else (1, 16, 21, 60, 104)
    gen = torch.Generator(device).manual_seed(1)
    inputs = dict(hidden_states=torch.randn(latent_shape, generator=gen, device=device, dtype=dtype),
                  timestep=torch.tensor([500.0], device=device),
                  encoder_hidden_states=torch.randn(1, 512, config["text_dim"], generator=gen, device=device,
                                                    dtype=dtype),
                  return_dict=False)
    tokens = latent_shape[2] * (latent_shape[3] // 2) * (latent_shape[4] // 2)
    options = dict(budget=args.budget, num_q_clusters=args.q_clusters, num_k_clusters=args.k_clusters)
    if args.tiny:
        options.update(min_seq_len=0, num_q_clusters=8, num_k_clusters=16)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    header = (f"device: {name}; torch {torch.__version__}; {datetime.date.today()}; Wan "
              f"{config['num_layers']}x{config['num_attention_heads']}x{config['attention_head_dim']}, "
              f"{tokens} tokens, {dtype}; svg_ear options {options}")
    print(header)

    results: dict = {"header": header, "runs": []}
    outputs = {}
    with torch.no_grad():
        for run, compile_kwargs in (("inductor", {}), ("svg_ear", dict(backend="svg_ear", options=options))):
            torch._dynamo.reset()
            reset_centroid_caches()
            compiled = torch.compile(model, **compile_kwargs)
            forward = functools.partial(compiled, **inputs)
            compile_ms = _milliseconds(forward, device, 1)[0]
            _milliseconds(forward, device, 2)
            with svg_ear_compile.record() as rec:
                times = _milliseconds(forward, device, args.repeats)
            outputs[run] = forward()[0]
            density = rec.mean_density() if rec.records else 1.0
            results["runs"].append(dict(run=run, compile_ms=compile_ms, median_ms=statistics.median(times),
                                        times_ms=times, density=density, op_calls=len(rec.records)))
    reference = outputs["inductor"].float()
    print("| run | compile + first call s | forward ms (median) | density | rel. error vs inductor |")
    print("|---|---|---|---|---|")
    for row in results["runs"]:
        row["rel_error"] = float((outputs[row["run"]].float() - reference).norm() / reference.norm())
        print(f"| {row['run']} | {row['compile_ms'] / 1e3:.1f} | {row['median_ms']:.1f} | {row['density']:.1%} | "
              f"{row['rel_error']:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
