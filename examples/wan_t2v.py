"""Wan2.1 text-to-video in diffusers, with its video self-attention made sparse by ``backend="svg_ear"``.

The one line that matters::

    pipe.transformer = torch.compile(pipe.transformer, backend="svg_ear", options={"budget": 0.2})

Real use needs the model weights, which diffusers downloads from the Hugging Face Hub on the first
run (``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``: transformer, VAE and the UMT5 text encoder), and a CUDA
GPU; it runs in bfloat16 and writes an mp4::

    python examples/wan_t2v.py --prompt "A cat walks on the grass, realistic"
    python examples/wan_t2v.py --dense        # the same run with exact attention (Inductor), to compare
    python examples/wan_t2v.py --regional     # compile each transformer block instead of the whole model

Defaults: 480x832, 81 frames, 50 steps; options ``budget=0.2`` (20% of the attention area computed
exactly, the rest compensated), ``dense_above_timestep=900`` (exact warm-up steps),
``dense_layers=1`` (the first layer always exact) and ``refresh_every=2``: ``WanPipeline`` runs
classifier-free guidance as two transformer calls per step (prompt, then negative prompt), so the
second call reuses the first one's clustering and block map; the two predictions then err alike and
their errors cancel in the guidance (``benchmarks/RESULTS.md``, ninth session: +2.2 dB on the fixture,
and the reusing call is cheaper). On a CUDA GPU the op runs its Triton kernels; elsewhere its torch
reference, where the printed density, not the wall time, is what to look at.

``--random-weights`` downloads nothing but configs: the transformer and VAE get random weights and
the text embeddings are random tensors (no text encoder), so the video is noise. With ``--tiny``
the configs are tiny too and nothing is downloaded at all: a CPU smoke run of the same code path::

    python examples/wan_t2v.py --random-weights --tiny
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from diffusers.utils import export_to_video

import svg_ear_compile

MODEL_ID = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
SIZES = dict(height=480, width=832, frames=81, steps=50)
TINY_SIZES = dict(height=96, width=128, frames=9, steps=3)
TINY_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                        out_channels=16, text_dim=32, freq_dim=32, ffn_dim=64, num_layers=2, rope_max_seq_len=32)
TINY_VAE = dict(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True])
# Tiny sequences (144 video tokens) need fewer clusters than the defaults, and no minimum length.
TINY_OPTIONS = dict(min_seq_len=0, num_q_clusters=8, num_k_clusters=16)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL_ID)
    parser.add_argument("--prompt", default="A cat walks on the grass, realistic")
    parser.add_argument("--negative-prompt", default="blurry, low quality, static")
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, help=f"default {default} (--tiny: {TINY_SIZES[name]})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="wan_t2v.mp4", help="where the video is written")
    parser.add_argument("--budget", type=float, default=0.2, help="fraction of the attention area computed exactly")
    parser.add_argument("--dense-above", type=float, default=900.0, help="exact attention above this timestep")
    parser.add_argument("--dense-layers", type=int, default=1, help="the first N layers run exact attention")
    parser.add_argument("--refresh-every", type=int, default=2,
                        help="calls that share one routing (2: a step's guidance pair; 1: route every call)")
    parser.add_argument("--dense", action="store_true", help="exact attention (plain Inductor), for comparison")
    parser.add_argument("--regional", action="store_true", help="compile the repeated blocks, not the whole model")
    parser.add_argument("--random-weights", action="store_true", help="random weights, random text embeddings")
    parser.add_argument("--tiny", action="store_true", help="tiny configs and sizes for a CPU smoke run")
    args = parser.parse_args(argv)
    if args.tiny and not args.random_weights:
        parser.error("--tiny needs --random-weights (tiny configs have no pretrained weights)")
    for name, default in (TINY_SIZES if args.tiny else SIZES).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    return args


def backend_options(args: argparse.Namespace) -> dict:
    options = {"budget": args.budget, "dense_above_timestep": args.dense_above, "dense_layers": args.dense_layers,
               "refresh_every": args.refresh_every}
    return {**options, **TINY_OPTIONS} if args.tiny else options


def pretrained_pipeline(model_id: str, device: str) -> WanPipeline:
    # Wan's VAE is recommended in float32; everything else runs in bfloat16.
    vae = AutoencoderKLWan.from_pretrained(model_id, subfolder="vae", torch_dtype=torch.float32)
    return WanPipeline.from_pretrained(model_id, vae=vae, torch_dtype=torch.bfloat16).to(device)


def random_pipeline(args: argparse.Namespace, device: str) -> WanPipeline:
    """Random weights from the model's configs (or tiny ones); no tokenizer or text encoder."""
    if args.tiny:
        transformer_config, vae_config = TINY_TRANSFORMER, TINY_VAE
    else:
        transformer_config = WanTransformer3DModel.load_config(args.model, subfolder="transformer")
        vae_config = AutoencoderKLWan.load_config(args.model, subfolder="vae")
    torch.manual_seed(args.seed)
    transformer = WanTransformer3DModel.from_config(transformer_config).to(device)
    if device == "cuda":
        transformer = transformer.to(torch.bfloat16)
    vae = AutoencoderKLWan.from_config(vae_config).to(device)
    # shift=3 (Wan2.1 at 480p): with 3 steps the timesteps are 1000, 750, 3, so warm-up and sparse steps both run.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return WanPipeline(tokenizer=None, text_encoder=None, vae=vae, scheduler=scheduler, transformer=transformer)


def prompt_inputs(args: argparse.Namespace, pipe: WanPipeline, device: str) -> dict:
    """The prompt, or (random weights) random text embeddings of the transformer's text width."""
    if not args.random_weights:
        return {"prompt": args.prompt, "negative_prompt": args.negative_prompt}
    generator = torch.Generator().manual_seed(args.seed)
    shape = (1, 16, pipe.transformer.config.text_dim)
    return {"prompt_embeds": torch.randn(shape, generator=generator).to(device),
            "negative_prompt_embeds": torch.randn(shape, generator=generator).to(device)}


def compile_transformer(pipe: WanPipeline, args: argparse.Namespace) -> None:
    if args.dense and args.regional:
        pipe.transformer.compile_repeated_blocks()  # diffusers' regional compile, exact attention
    elif args.dense:
        pipe.transformer = torch.compile(pipe.transformer)
    elif args.regional:
        pipe.transformer = svg_ear_compile.compile_repeated_blocks(pipe.transformer, backend_options(args))
    else:
        pipe.transformer = torch.compile(pipe.transformer, backend="svg_ear", options=backend_options(args))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipe = random_pipeline(args, device) if args.random_weights else pretrained_pipeline(args.model, device)
    compile_transformer(pipe, args)
    print(f"{'dense (Inductor)' if args.dense else 'svg_ear'}{' regional' if args.regional else ''}: "
          f"{args.height}x{args.width}, {args.frames} frames, {args.steps} steps on {device}")

    start = time.perf_counter()
    with svg_ear_compile.record() as rec:
        video = pipe(**prompt_inputs(args, pipe, device), height=args.height, width=args.width, num_frames=args.frames,
                     num_inference_steps=args.steps, generator=torch.Generator().manual_seed(args.seed),
                     output_type="np").frames[0]
    print(f"pipeline: {time.perf_counter() - start:.1f} s (first call includes compilation)")

    if rec.records:
        print(rec.table() if args.tiny else rec.layer_table())  # tiny: every call, a handful
    if not args.random_weights:
        export_to_video(video, args.out, fps=16)
        print(f"wrote {args.out}")
    if args.dense:
        print("svg_ear: off (--dense), exact attention everywhere")
    elif not rec.records:  # e.g. every sequence shorter than min_seq_len: svg_ear_compile.explain lists why
        print("svg_ear: 0 attention calls, nothing was rewritten")
    else:
        print(f"svg_ear: {len(rec.records)} attention calls, mean density {rec.mean_density():.1%}")


if __name__ == "__main__":
    main()
