# torch.ops.svg_ear.attention passes opcheck, equals svg_ear_attention, and keeps one centroid cache per layer.
import pytest
import torch

import svg_ear_compile
from svg_ear_compile import SvgEarConfig, ops, svg_ear_attention
from svg_ear_compile.workloads import video_qkv

CFG = SvgEarConfig(num_q_clusters=8, num_k_clusters=24, min_seq_len=0, kmeans_iters_init=5, budget=0.3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_opcheck(dtype):
    q, k, v = video_qkv(batch=2, heads=2, frames=2, height=4, width=8, head_dim=16, dtype=dtype)
    torch.library.opcheck(torch.ops.svg_ear.attention.default, (q, k, v, CFG.to_yaml(), -1))


def test_op_equals_function_and_fake_shape():
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=4, width=8, head_dim=16)
    out = torch.ops.svg_ear.attention(q, k, v, CFG.to_yaml(), -1)
    torch.testing.assert_close(out, svg_ear_attention(q, k, v, CFG))
    mode = torch._subclasses.fake_tensor.FakeTensorMode()
    fake_q, fake_k, fake_v = (mode.from_tensor(x) for x in (q, k, v[..., :8].contiguous()))
    with mode:
        fake = torch.ops.svg_ear.attention(fake_q, fake_k, fake_v, CFG.to_yaml(), 0)
    assert tuple(fake.shape) == (1, 2, 64, 8)


def test_op_caches_centroids_per_layer_and_compiles():
    ops.reset_centroid_caches()
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=4, width=8, head_dim=16)
    text = CFG.to_yaml()
    torch.ops.svg_ear.attention(q, k, v, text, 3)
    state = ops.layer_state(text, 3)
    assert state.warm and state.cold_starts == 1
    torch.ops.svg_ear.attention(q, k, v, text, 3)
    assert state.cold_starts == 1 and not ops.layer_state(text, 4).warm

    compiled = torch.compile(lambda a, b, c: torch.ops.svg_ear.attention(a, b, c, text, 3) * 2, backend="eager",
                             fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), 2 * svg_ear_attention(q, k, v, CFG, state=state))
    ops.reset_centroid_caches()
    assert ops.layer_state(text, 3) is state and not state.warm and state.cold_starts == 0  # graphs kept
    ops.reset_centroid_caches(keep_graphs=False)
    assert ops.layer_state(text, 3) is not state and not ops.layer_state(text, 3).warm


def test_op_rejects_a_bad_config_string():
    q = torch.randn(1, 1, 8, 4)
    with pytest.raises(ValueError, match="budget"):
        torch.ops.svg_ear.attention(q, q, q, "budget: 3.0\n", -1)


def test_opcheck_joint_attention():
    q, k, v = video_qkv(batch=2, heads=2, frames=2, height=4, width=8, head_dim=16)
    valid = torch.ones(2, 1, 1, 64, dtype=torch.bool)
    valid[0, ..., -5:] = False
    torch.library.opcheck(torch.ops.svg_ear.attention.default, (q, k, v, CFG.to_yaml(), -1, None, valid, 56))
    out = torch.ops.svg_ear.attention(q, k, v, CFG.to_yaml(), -1, None, valid, 56)
    torch.testing.assert_close(out, svg_ear_attention(q, k, v, CFG, num_video=56, key_padding_mask=valid))


def test_layer_key_resolves_the_layer_at_run_time():
    from svg_ear_compile import runtime

    ops.reset_centroid_caches()
    blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(2)])
    runtime.register_blocks(blocks)
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=4, width=8, head_dim=16)
    text = CFG.replace(dense_layers=1).to_yaml()
    with svg_ear_compile.record() as rec:
        for block in (blocks[1], blocks[0], blocks[1]):
            torch.ops.svg_ear.attention(q, k, v, text, -1, layer_key=block.weight)
        torch.ops.svg_ear.attention(q, k, v, text, -1, layer_key=torch.nn.Linear(2, 2).weight)
    assert [(r.layer, r.dense) for r in rec.records] == [(1, False), (0, True), (1, False), (2, False)]
    assert ops.layer_state(text, 1, blocks[1].weight).cold_starts == 1
    ops.reset_centroid_caches()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="host syncs exist only with a GPU")
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_op_call_outside_record_never_waits_on_the_host(cuda_graph):
    q, k, v = video_qkv(1, 2, 4, 16, 32, 64, dtype=torch.bfloat16, device="cuda")
    config = SvgEarConfig(budget=0.2, num_q_clusters=16, num_k_clusters=64, min_seq_len=0,
                          dense_above_timestep=900.0, cuda_graph=cuda_graph).to_yaml(one_line=True)
    timestep = torch.tensor([500.0], device="cuda")
    # cold then warm k-means (which captures the graph): every kernel compiles outside the check, and the
    # timestep is read once
    for _ in range(2):
        torch.ops.svg_ear.attention(q, k, v, config, 7, timestep)
    torch.cuda.set_sync_debug_mode("error")
    try:
        torch.ops.svg_ear.attention(q, k, v, config, 7, timestep)  # the next layer of the same forward
    finally:
        torch.cuda.set_sync_debug_mode("default")
        ops.reset_centroid_caches()


def test_density_is_a_float_when_asked_for_and_recorded_per_call():
    q, k, v = video_qkv(1, 2, 4, 16, 32, 32)
    cfg = SvgEarConfig(budget=0.3, num_q_clusters=8, num_k_clusters=32, min_seq_len=0)
    _, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert isinstance(stats["density"], float) and 0.25 < stats["density"] < 0.5
    with svg_ear_compile.record() as rec:
        torch.ops.svg_ear.attention(q, k, v, cfg.to_yaml(one_line=True), -1)
    assert len(rec.records) == 1 and rec.records[0].density == pytest.approx(stats["density"], abs=0.05)
