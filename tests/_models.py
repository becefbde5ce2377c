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
