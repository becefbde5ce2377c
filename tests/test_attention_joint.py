# Joint video+text attention: video sparsified, text exact, padded text never enters attention or compensation.
import pytest
import torch

from svg_ear_compile import SvgEarConfig, svg_ear_attention
from svg_ear_compile.workloads import video_qkv

from ._oracles import dense_attention, rel_error, replaced_key_oracle

SMALL = dict(num_q_clusters=16, num_k_clusters=48, min_seq_len=0, kmeans_iters_init=8)
TEXT = 9


def _joint_inputs(batch=2, seed=0):
    """Video tokens from the structured workload, then TEXT random text tokens; batch 0 pads its last 4."""
    q, k, v = video_qkv(batch=batch, heads=2, frames=3, height=8, width=12, head_dim=16, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    text = [torch.randn(batch, 2, TEXT, 16, generator=gen) for _ in range(3)]
    q, k, v = (torch.cat([a, t], dim=2) for a, t in zip((q, k, v), text, strict=True))
    valid = torch.ones(batch, q.shape[2], dtype=torch.bool)
    valid[0, -4:] = False
    k[0, :, -4:] = 40.0 * q[0, :, :1].mean(dim=2, keepdim=True)  # padded keys with huge logits: leaks would show
    v[0, :, -4:] = 1e3
    return q, k, v, valid


def _masked_oracle(q, k, v, valid):
    """Exact attention of every query over the valid keys only (float64)."""
    bias = torch.zeros(valid.shape, dtype=torch.float64).masked_fill(~valid, float("-inf"))
    q, k, v = q.double(), k.double(), v.double()
    logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + bias[:, None, None, :]
    return torch.softmax(logits, dim=-1) @ v


@pytest.mark.parametrize("mask_shape", ["b_s", "b_1_1_s"])
def test_full_budget_equals_masked_exact_attention(mask_shape):
    q, k, v, valid = _joint_inputs()
    mask = valid if mask_shape == "b_s" else valid[:, None, None, :]
    video = q.shape[2] - TEXT
    out, stats = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=1.0), num_video=video,
                                   key_padding_mask=mask, return_stats=True)
    assert not stats["dense"] and stats["query_labels"].shape[-1] == video
    assert rel_error(out, _masked_oracle(q, k, v, valid)) < 1e-5


@pytest.mark.parametrize("compensation", [True, False])
def test_sparse_video_rows_match_replaced_key_oracle_and_text_rows_are_exact(compensation):
    q, k, v, valid = _joint_inputs()
    video = q.shape[2] - TEXT
    cfg = SvgEarConfig(**SMALL, budget=0.2, compensation=compensation)
    out, stats = svg_ear_attention(q, k, v, cfg, num_video=video, key_padding_mask=valid, return_stats=True)
    assert stats["density"] < 0.5
    text = (k[:, :, video:], v[:, :, video:], valid[:, video:])
    expected_video = replaced_key_oracle(q[:, :, :video], k[:, :, :video], v[:, :, :video], stats, compensation,
                                         shared=text)
    assert rel_error(out[:, :, :video], expected_video) < 1e-5
    assert rel_error(out[:, :, video:], _masked_oracle(q, k, v, valid)[:, :, video:]) < 1e-5
    assert float(out.abs().max()) < 100  # the padded values (1e3) never reached any output


def test_shared_routing_keeps_each_videos_own_text_keys_and_padding():
    q, k, v, valid = _joint_inputs()  # video 0 pads text, video 1 does not
    video = q.shape[2] - TEXT
    cfg = SvgEarConfig(**SMALL, budget=0.2, batch_shares_routing=True)
    out, stats = svg_ear_attention(q, k, v, cfg, num_video=video, key_padding_mask=valid, return_stats=True)
    assert torch.equal(stats["selected"][1], stats["selected"][0])
    text = (k[:, :, video:], v[:, :, video:], valid[:, video:])
    expected_video = replaced_key_oracle(q[:, :, :video], k[:, :, :video], v[:, :, :video], stats, shared=text)
    assert rel_error(out[:, :, :video], expected_video) < 1e-5
    assert float(out.abs().max()) < 100  # video 0's padded values (1e3) reached no output of either video


def test_sparse_joint_output_is_close_to_exact():
    q, k, v, valid = _joint_inputs()
    out = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=0.3), num_video=q.shape[2] - TEXT,
                            key_padding_mask=valid)
    assert rel_error(out, _masked_oracle(q, k, v, valid)) < 0.15


def test_no_text_and_no_mask_is_plain_self_attention():
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=8, width=8, head_dim=16)
    cfg = SvgEarConfig(**SMALL, budget=0.3)
    plain = svg_ear_attention(q, k, v, cfg)
    joint = svg_ear_attention(q, k, v, cfg, num_video=q.shape[2], key_padding_mask=torch.ones(1, q.shape[2]).bool())
    torch.testing.assert_close(joint, plain, rtol=0, atol=0)


def test_padding_inside_the_video_runs_exact_and_says_so():
    q, k, v, valid = _joint_inputs()
    valid[1, 3] = False
    out, stats = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=0.2), num_video=q.shape[2] - TEXT,
                                   key_padding_mask=valid, return_stats=True)
    assert stats["dense"] and "pads some video tokens" in stats["reason"]
    assert rel_error(out, _masked_oracle(q, k, v, valid)) < 1e-5


def test_short_video_runs_exact_on_the_video_length():
    q, k, v, valid = _joint_inputs()
    video = q.shape[2] - TEXT
    _, stats = svg_ear_attention(q, k, v, SvgEarConfig(**{**SMALL, "min_seq_len": video + 1}), num_video=video,
                                 key_padding_mask=valid, return_stats=True)
    assert stats["dense"] and f"S={video}" in stats["reason"]


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(num_video=0), "num_video=0"),
    (dict(num_video=10_000), "num_video=10000"),
    (dict(key_padding_mask=torch.ones(2, 5, dtype=torch.bool)), "key_padding_mask must have shape"),
    (dict(key_padding_mask=torch.ones(2, 1, 3, 5, dtype=torch.bool)), "key_padding_mask must have shape"),
    (dict(key_padding_mask=torch.zeros(2, 64)), "must be bool"),
])
def test_bad_joint_arguments_name_the_problem(kwargs, match):
    q = k = v = torch.randn(2, 1, 64, 8)
    with pytest.raises(ValueError, match=match):
        svg_ear_attention(q, k, v, SvgEarConfig(**SMALL), **kwargs)


def test_dense_oracle_agrees_with_masked_oracle_without_padding():
    q, k, v, valid = _joint_inputs()
    assert rel_error(_masked_oracle(q, k, v, torch.ones_like(valid)), dense_attention(q, k, v)) < 1e-12
