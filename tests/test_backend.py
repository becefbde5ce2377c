# backend="svg_ear" resolves without import, rewrites only video self-attention, and is exact at full budget.
import subprocess
import sys

import pytest
import torch

from svg_ear_compile import SvgEarConfig, explain
from svg_ear_compile.backend import BACKEND_OPTIONS, config_from_options, rewrite_graph

from ._models import capture_graphs, tiny_wan, wan_inputs

pytest.importorskip("diffusers")


def test_backend_resolves_in_a_fresh_interpreter_without_import():
    code = (
        "import sys, torch\n"
        "assert 'svg_ear_compile' not in sys.modules\n"
        "f = torch.compile(lambda x: torch.nn.functional.scaled_dot_product_attention(x, x, x) * 2,\n"
        "                  backend='svg_ear', options={'min_seq_len': 0, 'budget': 1.0, 'num_q_clusters': 4,\n"
        "                  'num_k_clusters': 8})\n"
        "x = torch.randn(1, 2, 32, 8)\n"
        "torch.testing.assert_close(f(x), 2 * torch.nn.functional.scaled_dot_product_attention(x, x, x))\n"
        "assert 'svg_ear_compile' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_unknown_option_lists_valid_ones_and_bad_value_names_field():
    with pytest.raises(ValueError) as info:
        config_from_options({"budgett": 0.2})
    assert "budgett" in str(info.value) and all(name in str(info.value) for name in BACKEND_OPTIONS)
    with pytest.raises(ValueError, match="budget"):
        config_from_options({"budget": 2.0})


def test_profile_path_is_the_base_config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text(SvgEarConfig(budget=0.4, num_k_clusters=77).to_yaml())
    cfg = config_from_options({"profile": str(path), "budget": 0.3})
    assert cfg.num_k_clusters == 77 and cfg.budget == 0.3
    with pytest.raises(ValueError, match="no such file"):
        config_from_options({"profile": str(tmp_path / "missing.yaml")})


def test_wan_self_attention_rewritten_cross_attention_untouched():
    model = tiny_wan(num_layers=3)
    graphs = capture_graphs(model, wan_inputs())
    assert len(graphs) == 1
    reports = rewrite_graph(graphs[0], {"min_seq_len": 0})
    rewritten = [r for r in reports if r.kind == "rewritten"]
    assert [r.module_path for r in rewritten] == [f"blocks.{i}.attn1" for i in range(3)]
    assert [r.layer for r in rewritten] == [0, 1, 2]
    exact = [r for r in reports if r.kind == "exact"]
    assert [r.module_path for r in exact] == [f"blocks.{i}.attn2" for i in range(3)]
    assert all("cross-attention" in r.reason for r in exact)
    ops = [n for n in graphs[0].graph.nodes if n.target is torch.ops.svg_ear.attention.default]
    sdpa = [n for n in graphs[0].graph.nodes if n.target is torch.nn.functional.scaled_dot_product_attention]
    assert len(ops) == 3 and len(sdpa) == 3
    # Inductor copies node arguments into comments of its generated code: a newline there breaks the module
    config = ops[0].args[3]
    assert "\n" not in config and SvgEarConfig.from_yaml(config) == config_from_options({"min_seq_len": 0})


def test_cross_attention_with_equal_lengths_is_found_by_ancestry():
    model = tiny_wan(num_layers=1)
    inputs = wan_inputs()
    inputs["encoder_hidden_states"] = torch.randn(1, 48, 32)  # as many text tokens as video tokens
    reports = rewrite_graph(capture_graphs(model, inputs)[0], {"min_seq_len": 0})
    kinds = {r.module_path: (r.kind, r.reason) for r in reports}
    assert kinds["blocks.0.attn1"][0] == "rewritten"
    assert kinds["blocks.0.attn2"][0] == "exact" and "not the latent input" in kinds["blocks.0.attn2"][1]


def test_full_budget_compiled_output_equals_dense_compiled_output():
    model = tiny_wan(num_layers=2)
    inputs = wan_inputs()
    torch._dynamo.reset()
    with torch.no_grad():
        dense = torch.compile(model)(**inputs)[0]
        torch._dynamo.reset()
        options = {"min_seq_len": 0, "budget": 1.0, "num_q_clusters": 8, "num_k_clusters": 16}
        full = torch.compile(model, backend="svg_ear", options=options)(**inputs)[0]
        torch._dynamo.reset()
        sparse = torch.compile(model, backend="svg_ear", options={**options, "budget": 0.3})(**inputs)[0]
    rel = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    assert rel(full, dense) < 1e-4
    assert 1e-6 < rel(sparse, dense) < 0.5


def test_explain_lists_every_call_with_reasons(capsys):
    class Mixed(torch.nn.Module):
        def forward(self, x, text):
            a = torch.nn.functional.scaled_dot_product_attention(x, x, x)
            b = torch.nn.functional.scaled_dot_product_attention(a, a, a, is_causal=True)
            c = torch.nn.functional.scaled_dot_product_attention(query=b, key=text, value=text)
            return torch.nn.functional.scaled_dot_product_attention(c, c, c, dropout_p=0.1)

    torch._dynamo.reset()
    rows = explain(Mixed(), torch.randn(1, 2, 32, 8), torch.randn(1, 2, 5, 8), min_seq_len=0)
    assert [(r.kind, r.reason.split(" ")[0]) for r in rows] == [
        ("rewritten", "video"), ("exact", "causal"), ("exact", "cross-attention"), ("exact", "dropout_p=0.1"),
    ]
    assert "causal attention" in capsys.readouterr().out


def test_model_without_attention_compiles_warns_and_runs_exact():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4))
    torch._dynamo.reset()
    with pytest.warns(UserWarning, match="no scaled_dot_product_attention"):
        out = torch.compile(model, backend="svg_ear")(torch.ones(2, 4))
    torch.testing.assert_close(out, model(torch.ones(2, 4)))


def test_no_graph_break_no_recompile_across_timesteps_and_cfg_branches_and_record():
    from torch._dynamo.utils import counters

    from svg_ear_compile import record

    model = tiny_wan(num_layers=2)
    options = {"min_seq_len": 0, "budget": 0.3, "num_q_clusters": 8, "num_k_clusters": 16}
    torch._dynamo.reset()
    assert torch._dynamo.explain(model)(**wan_inputs()).graph_break_count == 0
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="svg_ear", options=options)
    with torch.no_grad(), record() as rec:
        for step, timestep in enumerate((999.0, 750.0, 500.0, 250.0)):
            for branch in range(2):  # conditional and unconditional text, as two forwards
                compiled(**wan_inputs(timestep=timestep, seed=100 * branch + step))
    assert counters["stats"]["unique_graphs"] == 1
    assert sorted({r.layer for r in rec.records}) == [0, 1]
    assert len(rec.records) == 2 * 8 and max(r.step for r in rec.records) == 7
    assert all(0 < r.density < 1 and not r.dense for r in rec.records)


def test_batch_of_two_runs_and_matches_dense_at_full_budget():
    model = tiny_wan(num_layers=1)
    inputs = wan_inputs(batch=2)
    torch._dynamo.reset()
    with torch.no_grad():
        expected = model(**inputs)[0]
        options = {"min_seq_len": 0, "budget": 1.0, "num_q_clusters": 8, "num_k_clusters": 16}
        got = torch.compile(model, backend="svg_ear", options=options)(**inputs)[0]
    assert float((got - expected).norm() / expected.norm()) < 1e-4


def test_warm_up_above_the_cut_is_exactly_dense_and_sparse_below():
    from torch._dynamo.utils import counters

    from svg_ear_compile import record

    model = tiny_wan(num_layers=2)
    options = {"min_seq_len": 0, "budget": 0.2, "num_q_clusters": 8, "num_k_clusters": 16,
               "dense_above_timestep": 600.0, "dense_layers": 1}
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="svg_ear", options=options)
    with torch.no_grad(), record() as rec:
        early = compiled(**wan_inputs(timestep=900.0))[0]
        late = compiled(**wan_inputs(timestep=300.0))[0]
        early_eager, late_eager = model(**wan_inputs(timestep=900.0))[0], model(**wan_inputs(timestep=300.0))[0]
    assert counters["stats"]["unique_graphs"] == 1
    assert float((early - early_eager).norm() / early_eager.norm()) < 1e-5
    assert float((late - late_eager).norm() / late_eager.norm()) > 1e-4
    by_step = {(r.layer, r.step): r.dense for r in rec.records}
    assert by_step == {(0, 0): True, (1, 0): True, (0, 1): True, (1, 1): False}


def test_explain_shows_the_layers_their_config_keeps_exact_as_the_op_then_runs_them(capsys):
    from svg_ear_compile import record

    model = tiny_wan(num_layers=3)
    options = dict(min_seq_len=0, num_q_clusters=4, num_k_clusters=8, budget=0.5, dense_layers=1,
                   layer_overrides={2: {"min_seq_len": 10**9}})
    torch._dynamo.reset()
    rows = explain(model, model_kwargs=wan_inputs(), **options)
    assert [(r.layer, r.kind) for r in rows if r.layer is not None] == [(0, "exact"), (1, "rewritten"), (2, "exact")]
    assert "dense_layers=1" in rows[0].reason and "min_seq_len=1000000000" in rows[4].reason
    assert "its layer config runs it exact" in capsys.readouterr().out

    def backend(gm, example_inputs):  # the backend's rewrite without Inductor: the op decides at run time
        rewrite_graph(gm, options)
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad(), record() as rec:
        torch.compile(model, backend=backend)(**wan_inputs())
    assert {r.layer: r.dense for r in rec.records} == {0: True, 1: False, 2: True}


def test_a_whole_model_graph_sends_its_timestep_to_the_host_first(monkeypatch):
    """Each call of a whole-model graph starts by handing its timestep input to ``prefetch_timestep`` (the
    op's read then waits on that copy alone, as under ``compile_repeated_blocks``' hook); outputs as before."""
    from svg_ear_compile import ops, runtime

    prefetched = []
    monkeypatch.setattr(runtime, "prefetch_timestep", prefetched.append)
    ops.reset_centroid_caches()
    torch._dynamo.reset()
    model = tiny_wan()
    compiled = torch.compile(model, backend="svg_ear", options={"min_seq_len": 0, "budget": 1.0,
                                                                "num_q_clusters": 8, "num_k_clusters": 16})
    with torch.no_grad():
        for timestep in (900.0, 400.0):
            inputs = wan_inputs(timestep=timestep)
            torch.testing.assert_close(compiled(**inputs)[0], model(**inputs)[0], atol=1e-4, rtol=1e-4)
            assert prefetched[-1] is inputs["timestep"]
    assert len(prefetched) == 2
    ops.reset_centroid_caches()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="only a CUDA timestep is copied ahead")
def test_the_op_in_a_whole_model_graph_reads_the_prefetched_timestep(monkeypatch):
    """On a GPU the op's timestep read in a whole-model graph is served by the copy the graph started: the
    plain read, which waits for the queued work, never runs."""
    from svg_ear_compile import ops, runtime

    def plain_read(timestep):
        raise AssertionError("the op read the timestep without the prefetched copy")

    monkeypatch.setattr(runtime, "_read_now", plain_read)
    ops.reset_centroid_caches()
    torch._dynamo.reset()
    model = tiny_wan().cuda()
    compiled = torch.compile(model, backend="svg_ear", options={"min_seq_len": 0, "budget": 0.5,
                                                                "num_q_clusters": 8, "num_k_clusters": 16,
                                                                "dense_above_timestep": 950.0})
    with torch.no_grad():
        for timestep in (999.0, 900.0, 400.0):  # one exact warm-up step, then sparse ones
            inputs = {name: value.cuda() if isinstance(value, torch.Tensor) else value
                      for name, value in wan_inputs(timestep=timestep).items()}
            assert torch.isfinite(compiled(**inputs)[0]).all()
    ops.reset_centroid_caches()
