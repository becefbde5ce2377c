"""Tiny diffusers video transformers (random weights) and their inputs, for CPU tests."""

import torch


def tiny_wan(num_layers: int = 2, seed: int = 0):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4,
        text_dim=32, freq_dim=32, ffn_dim=64, num_layers=num_layers, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    ).eval()
    return model


def wan_inputs(batch: int = 1, frames: int = 3, height: int = 8, width: int = 8, timestep: float = 500.0,
               seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return dict(
        hidden_states=torch.randn(batch, 4, frames, height, width, generator=gen),
        timestep=torch.full((batch,), timestep),
        encoder_hidden_states=torch.randn(batch, 7, 32, generator=gen),
        return_dict=False,
    )


def tiny_hunyuan(seed: int = 0):
    """HunyuanVideo with one dual-stream block, one single-stream block and one text-refiner block."""
    from diffusers import HunyuanVideoTransformer3DModel

    torch.manual_seed(seed)
    return HunyuanVideoTransformer3DModel(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=1,
        num_single_layers=1, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm",
        guidance_embeds=True, text_embed_dim=32, pooled_projection_dim=24, rope_axes_dim=(4, 6, 6),
    ).eval()


def hunyuan_inputs(batch: int = 1, frames: int = 3, height: int = 8, width: int = 8, timestep: float = 500.0,
                   text_valid: tuple[int, ...] = (5,), seed: int = 0) -> dict:
    """Inputs with 7 text tokens, of which ``text_valid[b]`` are real for batch element b."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, 7, dtype=torch.int64)
    for b, valid in enumerate(text_valid * batch if len(text_valid) == 1 else text_valid):
        mask[b, :valid] = 1
    return dict(
        hidden_states=torch.randn(batch, 4, frames, height, width, generator=gen),
        timestep=torch.full((batch,), timestep),
        encoder_hidden_states=torch.randn(batch, 7, 32, generator=gen),
        encoder_attention_mask=mask,
        pooled_projections=torch.randn(batch, 24, generator=gen),
        guidance=torch.full((batch,), 6000.0),
        return_dict=False,
    )


def capture_graphs(model, inputs: dict) -> list:
    """The Dynamo FX graphs of ``model(**inputs)``, traced by a backend that keeps them and runs them as traced."""
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(model, backend=backend)(**inputs)
    return graphs
