# The Triton path of the pipeline (interpreter on CPU) equals the reference path stage for stage.
import os

import pytest
import torch

from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
from svg_ear_compile.workloads import video_qkv

from ._oracles import rel_error, replaced_key_oracle

pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available(),
    reason="needs Triton (GPU or interpreter)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SMALL = dict(num_q_clusters=8, num_k_clusters=24, min_seq_len=0, kmeans_iters_init=6, block_m=16, block_n=16)


def _inputs(dtype, frames=2, seed=0):
    return video_qkv(batch=1, heads=2, frames=frames, height=6, width=10, head_dim=16, dtype=dtype, device=DEVICE,
                     seed=seed)


@pytest.mark.parametrize(("routing", "compensation"), [("error_aware", True), ("attention", False)])
def test_triton_equals_reference_fp32(routing, compensation):
    q, k, v = _inputs(torch.float32)
    cfg = SvgEarConfig(**SMALL, budget=0.3, routing=routing, compensation=compensation)
    ref, ref_stats = svg_ear_attention(q, k, v, cfg.replace(impl="reference"), return_stats=True)
    out, stats = svg_ear_attention(q, k, v, cfg.replace(impl="triton"), return_stats=True)
    assert stats["impl"] == "triton" and ref_stats["impl"] == "reference"
    assert torch.equal(stats["query_labels"], ref_stats["query_labels"])
    assert torch.equal(stats["key_labels"], ref_stats["key_labels"])
    assert torch.equal(stats["selected"], ref_stats["selected"])
    assert rel_error(out, ref) < 1e-4


def test_head_major_views_of_token_major_inputs_give_the_same_answer():
    """Attention calls traced from diffusers pass (B, H, S, D) views of (B, S, H, D) tensors; the kernels
    read those rows where they lie. Same labels, map and output as contiguous inputs, warm calls too."""
    q, k, v = _inputs(torch.float32)
    views = tuple(x.transpose(1, 2).contiguous().transpose(1, 2) for x in (q, k, v))
    assert not views[0].is_contiguous() and torch.equal(views[0], q)
    cfg = SvgEarConfig(**SMALL, budget=0.3, impl="triton")
    states = SvgEarState(), SvgEarState()
    for _ in range(2):
        out, stats = svg_ear_attention(q, k, v, cfg, state=states[0], return_stats=True)
        out_views, stats_views = svg_ear_attention(*views, cfg, state=states[1], return_stats=True)
        assert torch.equal(stats_views["key_labels"], stats["key_labels"])
        assert torch.equal(stats_views["selected"], stats["selected"])
        assert torch.equal(out_views, out)


def test_triton_joint_attention_equals_reference():
    q, k, v = _inputs(torch.float32)
    text = [torch.randn(1, 2, 5, 16, device=DEVICE) for _ in range(3)]
    q, k, v = (torch.cat([a, t], dim=2) for a, t in zip((q, k, v), text, strict=True))
    valid = torch.ones(1, q.shape[2], dtype=torch.bool, device=DEVICE)
    valid[:, -2:] = False
    cfg = SvgEarConfig(**SMALL, budget=0.3)
    ref = svg_ear_attention(q, k, v, cfg.replace(impl="reference"), num_video=q.shape[2] - 5, key_padding_mask=valid)
    out = svg_ear_attention(q, k, v, cfg.replace(impl="triton"), num_video=q.shape[2] - 5, key_padding_mask=valid)
    assert rel_error(out, ref) < 1e-4


def test_triton_fp16_and_warm_start_stay_close_to_exact():
    q, k, v = _inputs(torch.float16)
    cfg = SvgEarConfig(**SMALL, budget=1.0, impl="triton")
    state = SvgEarState()
    exact = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float())
    for _ in range(2):
        out = svg_ear_attention(q, k, v, cfg, state=state)
        assert out.dtype == torch.float16 and rel_error(out, exact) < 5e-3
    assert state.cold_starts == 1


def test_triton_results_are_identical_across_runs():
    q, k, v = _inputs(torch.float32, seed=3)
    cfg = SvgEarConfig(**SMALL, budget=0.25, impl="triton")
    first = svg_ear_attention(q, k, v, cfg)
    second = svg_ear_attention(q, k, v, cfg)
    assert torch.equal(first, second)


def test_triton_reusing_calls_equal_the_oracle_under_the_kept_routing():
    cfg = SvgEarConfig(**SMALL, budget=0.3, kmeans_iters=1, refresh_every=2, impl="triton")
    state = SvgEarState()
    _, fresh = svg_ear_attention(*_inputs(torch.float32, seed=1), cfg, state=state, return_stats=True)
    q, k, v = _inputs(torch.float32, seed=2)
    out, stats = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    assert stats["reused_routing"] and torch.equal(stats["selected"], fresh["selected"])
    on_cpu = {name: t.cpu() for name, t in fresh.items() if isinstance(t, torch.Tensor)}
    assert rel_error(out.cpu(), replaced_key_oracle(q.cpu(), k.cpu(), v.cpu(), on_cpu)) < 1e-4


def test_triton_reusing_calls_take_the_kept_plan(monkeypatch):
    """The fresh call keeps its attention plan with the routing; reusing calls run on it without building
    another (at 14B the plan is ~100 launches and ~1 ms of a reusing call) and still equal the oracle."""
    cfg = SvgEarConfig(**SMALL, budget=0.3, kmeans_iters=1, refresh_every=3, impl="triton")
    state = SvgEarState()
    _, fresh = svg_ear_attention(*_inputs(torch.float32, seed=1), cfg, state=state, return_stats=True)
    assert {"plan_work", "plan_range_delta", "plan_range_starts"} <= set(state.routing.plan)
    from svg_ear_compile.kernels import sparse_attention as kernel_module

    def refuse(*args, **kwargs):
        raise AssertionError("a reusing call built a new plan")

    monkeypatch.setattr(kernel_module, "attention_plan", refuse)
    for seed in (2, 3):
        q, k, v = _inputs(torch.float32, seed=seed)
        out, stats = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
        assert stats["reused_routing"]
        on_cpu = {name: t.cpu() for name, t in fresh.items() if isinstance(t, torch.Tensor)}
        assert rel_error(out.cpu(), replaced_key_oracle(q.cpu(), k.cpu(), v.cpu(), on_cpu)) < 1e-4


def test_triton_batch_shared_routing_equals_reference():
    q, k, v = video_qkv(batch=2, heads=2, frames=2, height=6, width=10, head_dim=16, device=DEVICE, seed=4)
    cfg = SvgEarConfig(**SMALL, budget=0.3, batch_shares_routing=True)
    ref, ref_stats = svg_ear_attention(q, k, v, cfg.replace(impl="reference"), return_stats=True)
    out, stats = svg_ear_attention(q, k, v, cfg.replace(impl="triton"), return_stats=True)
    for name in ("query_labels", "key_labels", "selected"):
        assert torch.equal(stats[name], ref_stats[name]) and torch.equal(stats[name][1], stats[name][0])
    assert rel_error(out, ref) < 1e-4


@pytest.mark.parametrize("case", ["fresh", "reusing", "batch_shared"])
def test_triton_expanded_tail_equals_reference(case):
    """``exact_centroids``: the Triton path (tables + kernel) equals the reference path on fresh calls,
    on calls that reuse a kept routing (their own query means) and with routing shared across a batch."""
    batch = 2 if case == "batch_shared" else 1
    inputs = [video_qkv(batch=batch, heads=2, frames=2, height=6, width=10, head_dim=16, device=DEVICE, seed=seed)
              for seed in (5, 6)]
    cfg = SvgEarConfig(**SMALL, budget=0.2, exact_centroids=3, refresh_every=2 if case == "reusing" else 1,
                       batch_shares_routing=case == "batch_shared")
    outs = {}
    for impl, exact in (("reference", 3), ("triton", 3), ("reference", None)):
        state = SvgEarState()
        for q, k, v in inputs if case == "reusing" else inputs[:1]:
            outs[impl, exact], stats = svg_ear_attention(q, k, v, cfg.replace(impl=impl, exact_centroids=exact),
                                                         state=state, return_stats=True)
        assert stats["reused_routing"] == (case == "reusing") and stats["exact_centroids"] == exact
    assert rel_error(outs["triton", 3], outs["reference", 3]) < 1e-4
    assert rel_error(outs["reference", 3], outs["reference", None]) > 1e-4  # the tail was expanded
