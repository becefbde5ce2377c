"""HunyuanVideo text-to-video in diffusers, with its joint video+text attention made sparse by ``backend="svg_ear"``.

The one line that matters::

    pipe.transformer = torch.compile(pipe.transformer, backend="svg_ear", options={"budget": 0.2})

In HunyuanVideo's blocks the video tokens attend to the video and the prompt together; the backend
clusters and routes the video keys and keeps the (unpadded) text keys exact in the same softmax.
The text refiner's attention stays exact.

Real use needs the model weights, which diffusers downloads from the Hugging Face Hub on the first
run (``hunyuanvideo-community/HunyuanVideo``: the 13B transformer, VAE, a Llama text encoder and
CLIP), and a large CUDA GPU (the transformer alone is 26 GB in bfloat16); it writes an mp4::

    python examples/hunyuan_video.py --prompt "A cat walks on the grass, realistic"
    python examples/hunyuan_video.py --height 320 --width 512 --frames 61 --steps 30   # a quicker first look
    python examples/hunyuan_video.py --dense        # the same run with exact attention (Inductor), to compare
    python examples/hunyuan_video.py --regional     # compile each transformer block instead of the whole model

Defaults: the pipeline's own 720x1280, 129 frames, 50 steps (the setting sparse video attention is
evaluated at; long sequences are where it pays); options ``budget=0.2``, ``dense_above_timestep=900``
(exact warm-up steps) and ``dense_layers=1``. The op runs its torch reference path in this version,
so the printed density, not the wall time, is what to look at; the Triton kernels turn density into
speed.

``--random-weights`` downloads nothing but configs: the transformer and VAE get random weights and
the text embeddings are random tensors with a padded attention mask (no text encoders), so the video
is noise. With ``--tiny`` the configs are tiny too and nothing is downloaded at all: a CPU smoke run
of the same code path::

    python examples/hunyuan_video.py --random-weights --tiny
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import (
    AutoencoderKLHunyuanVideo,
    FlowMatchEulerDiscreteScheduler,
    HunyuanVideoPipeline,
    HunyuanVideoTransformer3DModel,
)
from diffusers.utils import export_to_video

import svg_ear_compile

MODEL_ID = "hunyuanvideo-community/HunyuanVideo"
SIZES = dict(height=720, width=1280, frames=129, steps=50)
TINY_SIZES = dict(height=96, width=128, frames=9, steps=3)
TINY_TRANSFORMER = dict(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=1,
                        num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1,
                        qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=32, pooled_projection_dim=24,
                        rope_axes_dim=(4, 6, 6))
TINY_VAE = dict(latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
# Tiny sequences (144 video tokens) need fewer clusters than the defaults, and no minimum length.
TINY_OPTIONS = dict(min_seq_len=0, num_q_clusters=8, num_k_clusters=16)
TEXT_TOKENS, VALID_TEXT_TOKENS = 16, 11  # random prompt: the last 5 tokens are padding, masked out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL_ID)
    parser.add_argument("--prompt", default="A cat walks on the grass, realistic")
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, help=f"default {default} (--tiny: {TINY_SIZES[name]})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="hunyuan_video.mp4", help="where the video is written")
    parser.add_argument("--budget", type=float, default=0.2, help="fraction of the attention area computed exactly")
    parser.add_argument("--dense-above", type=float, default=900.0, help="exact attention above this timestep")
    parser.add_argument("--dense-layers", type=int, default=1, help="the first N layers run exact attention")
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
    options = {"budget": args.budget, "dense_above_timestep": args.dense_above, "dense_layers": args.dense_layers}
    return {**options, **TINY_OPTIONS} if args.tiny else options


def pretrained_pipeline(model_id: str, device: str) -> HunyuanVideoPipeline:
    pipe = HunyuanVideoPipeline.from_pretrained(model_id, torch_dtype=torch.bfloat16)
    pipe.vae.enable_tiling()  # decoding 720p x 129 frames in one piece needs far more memory
    return pipe.to(device)


def random_pipeline(args: argparse.Namespace, device: str) -> HunyuanVideoPipeline:
    """Random weights from the model's configs (or tiny ones); no tokenizers or text encoders."""
    if args.tiny:
        transformer_config, vae_config = TINY_TRANSFORMER, TINY_VAE
    else:
        transformer_config = HunyuanVideoTransformer3DModel.load_config(args.model, subfolder="transformer")
        vae_config = AutoencoderKLHunyuanVideo.load_config(args.model, subfolder="vae")
    torch.manual_seed(args.seed)
    transformer = HunyuanVideoTransformer3DModel.from_config(transformer_config).to(device)
    if device == "cuda":
        transformer = transformer.to(torch.bfloat16)
    vae = AutoencoderKLHunyuanVideo.from_config(vae_config).to(device)
    # shift=7 (HunyuanVideo's): with 3 steps the timesteps are 1000, 933, 778, so warm-up and sparse steps both run.
    scheduler = FlowMatchEulerDiscreteScheduler(shift=7.0)
    return HunyuanVideoPipeline(text_encoder=None, tokenizer=None, transformer=transformer, vae=vae,
                                scheduler=scheduler, text_encoder_2=None, tokenizer_2=None)


def prompt_inputs(args: argparse.Namespace, pipe: HunyuanVideoPipeline, device: str) -> dict:
    """The prompt, or (random weights) random Llama-side and CLIP-side embeddings with a padded mask."""
    if not args.random_weights:
        return {"prompt": args.prompt}
    config = pipe.transformer.config
    generator = torch.Generator().manual_seed(args.seed)
    mask = torch.zeros(1, TEXT_TOKENS, dtype=torch.int64)
    mask[:, :VALID_TEXT_TOKENS] = 1
    return {"prompt_embeds": torch.randn(1, TEXT_TOKENS, config.text_embed_dim, generator=generator).to(device),
            "pooled_prompt_embeds": torch.randn(1, config.pooled_projection_dim, generator=generator).to(device),
            "prompt_attention_mask": mask.to(device)}


def compile_transformer(pipe: HunyuanVideoPipeline, args: argparse.Namespace) -> None:
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
        video = pipe(**prompt_inputs(args, pipe, device), height=args.height, width=args.width,
                     num_frames=args.frames, num_inference_steps=args.steps,
                     generator=torch.Generator().manual_seed(args.seed), output_type="np").frames[0]
    print(f"pipeline: {time.perf_counter() - start:.1f} s (first call includes compilation)")

    if rec.records:
        print(rec.table() if args.tiny else rec.layer_table())  # tiny: every call, a handful
    if not args.random_weights:
        export_to_video(video, args.out, fps=24)
        print(f"wrote {args.out}")
    if args.dense:
        print("svg_ear: off (--dense), exact attention everywhere")
    elif not rec.records:  # e.g. every sequence shorter than min_seq_len: svg_ear_compile.explain lists why
        print("svg_ear: 0 attention calls, nothing was rewritten")
    else:
        print(f"svg_ear: {len(rec.records)} attention calls, mean density {rec.mean_density():.1%}")


if __name__ == "__main__":
    main()
