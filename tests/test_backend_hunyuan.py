# HunyuanVideo: joint attention rewritten (video sparse, text exact, padding masked), the text refiner untouched.
import pytest
import torch

from svg_ear_compile import record
from svg_ear_compile.backend import rewrite_graph

from ._models import capture_graphs, hunyuan_inputs, tiny_hunyuan

pytest.importorskip("diffusers")

OPTIONS = {"min_seq_len": 0, "num_q_clusters": 8, "num_k_clusters": 16}


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_joint_attention_rewritten_and_refiner_left_exact():
    with torch.no_grad():
        graphs = capture_graphs(tiny_hunyuan(), hunyuan_inputs())
    assert len(graphs) == 1
    reports = rewrite_graph(graphs[0], {"min_seq_len": 0})
    kinds = {r.module_path: (r.kind, r.layer, r.reason) for r in reports}
    assert kinds["transformer_blocks.0.attn"][:2] == ("rewritten", 0)
    assert kinds["single_transformer_blocks.0.attn"][:2] == ("rewritten", 1)
    assert "joint" in kinds["transformer_blocks.0.attn"][2]
    refiner = kinds["context_embedder.token_refiner.refiner_blocks.0.attn"]
    assert refiner[0] == "exact" and "not a key-padding mask" in refiner[2]
    ops = [n for n in graphs[0].graph.nodes if n.target is torch.ops.svg_ear.attention.default]
    assert len(ops) == 2
    assert all(n.args[7].op == "call_method" and n.args[7].target == "size" for n in ops)  # video length at run time


def test_full_budget_equals_dense_compile_and_sparse_stays_close_with_per_sample_padding():
    inputs = hunyuan_inputs(batch=2, text_valid=(3, 7))
    with torch.no_grad():
        torch._dynamo.reset()
        dense = torch.compile(tiny_hunyuan())(**inputs)[0]
        torch._dynamo.reset()
        full = torch.compile(tiny_hunyuan(), backend="svg_ear", options={**OPTIONS, "budget": 1.0})(**inputs)[0]
        torch._dynamo.reset()
        with record() as rec:
            sparse = torch.compile(tiny_hunyuan(), backend="svg_ear", options={**OPTIONS, "budget": 0.25})(**inputs)[0]
    assert _rel(full, dense) < 1e-4
    assert 1e-6 < _rel(sparse, dense) < 0.5
    assert len(rec.records) == 2 and all(0 < r.density < 1 for r in rec.records)


def test_padded_text_changes_nothing_when_it_is_masked():
    """Replacing the padded text embeddings must not change the output: they never enter attention."""
    inputs = hunyuan_inputs(text_valid=(4,))
    altered = dict(inputs, encoder_hidden_states=inputs["encoder_hidden_states"].clone())
    altered["encoder_hidden_states"][:, 4:] = 50.0
    torch._dynamo.reset()
    compiled = torch.compile(tiny_hunyuan(), backend="svg_ear", options={**OPTIONS, "budget": 0.25})
    with torch.no_grad():
        first, second = compiled(**inputs)[0], compiled(**altered)[0]
    assert _rel(second, first) < 1e-5


def test_no_graph_break_and_no_recompile_across_timesteps_and_cfg():
    from torch._dynamo.utils import counters

    model = tiny_hunyuan()
    torch._dynamo.reset()
    with torch.no_grad():
        assert torch._dynamo.explain(model)(**hunyuan_inputs()).graph_break_count == 0
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="svg_ear", options={**OPTIONS, "budget": 0.25})
    with torch.no_grad(), record() as rec:
        for step, timestep in enumerate((999.0, 750.0, 500.0, 250.0)):
            for branch in range(2):
                compiled(**hunyuan_inputs(timestep=timestep, seed=100 * branch + step))
    assert counters["stats"]["unique_graphs"] == 1
    assert len(rec.records) == 16 and {r.layer for r in rec.records} == {0, 1}
