# The GPU benchmarks' CPU smoke runs complete and report consistent numbers; their ceiling arithmetic is right.
import argparse
import json
import pathlib
import sys
import types

import pytest
import torch

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

bench_e2e = pytest.importorskip("bench_e2e")
pytest.importorskip("diffusers")


def test_ceiling_and_schedule_arithmetic():
    # 100 ms dense, 40 ms outside attention: at density 0.5 the floor is 40 + 0.5 * 60 = 70 ms.
    assert bench_e2e.ceiling(100.0, 40.0, 0.5) == pytest.approx(100 / 70)
    assert bench_e2e.ceiling(100.0, 40.0, 1.0) == pytest.approx(1.0)
    args = argparse.Namespace(steps=10, warmup_fraction=0.2)
    row = dict(run="svg_ear@0.5", density=0.5, cold_ms=90.0, forward_ms=80.0)
    schedule = bench_e2e.schedule_row(row, 100.0, 40.0, args)
    assert schedule["dense_steps"] == 2
    assert schedule["total_s"] == pytest.approx((2 * 100 + 90 + 7 * 80) / 1e3)
    assert schedule["ceiling"] == pytest.approx(1000 / (2 * 100 + 8 * 70))
    assert schedule["of_ceiling"] == pytest.approx(schedule["speedup"] / schedule["ceiling"])


@pytest.mark.parametrize("refresh_every, warmup", [(2, 0), (3, 1), (6, 1), (6, 2)])
def test_bench_e2e_splits_fresh_and_reusing_forwards_as_the_layer_state_routes(refresh_every, warmup):
    """The oracle is SvgEarState itself: replay its routing decisions from the cold forward on, time a
    fresh forward 100 ms and a reusing one 10 ms, and the split must find exactly those."""
    from svg_ear_compile import SvgEarState

    kept, state, times = types.SimpleNamespace(key="layer"), SvgEarState(), []
    state.keep_routing(kept)  # the cold forward routes afresh and keeps its routing
    for call in range(1, 1 + warmup + 2 * refresh_every):
        fresh = state.take_routing("layer", refresh_every) is None
        if fresh:
            state.keep_routing(kept)
        if call > warmup:
            times.append(100.0 if fresh else 10.0)
    assert bench_e2e._fresh_and_reusing(times, refresh_every, warmup) == {"fresh_ms": 100.0, "reusing_ms": 10.0}


def test_bench_e2e_tiny_runs(tmp_path, capsys):
    out = tmp_path / "e2e.json"
    results = bench_e2e.main(["--tiny", "--regional", "--budgets", "0.25", "--repeats", "1", "--json", str(out),
                              "--variant", "kc8", "num_k_clusters=8", "kmeans_iters=1",
                              "--variant", "dense_half", "budget=0.5"])
    assert json.loads(out.read_text())["models"][0]["model"] == "tiny"
    runs = {row["run"]: row for row in results["models"][0]["runs"]}
    assert set(runs) == {"dense", "no_self_attn", "svg_ear@0.25", "svg_ear@0.25[kc8]", "svg_ear@0.5[dense_half]"}
    assert runs["svg_ear@0.5[dense_half]"]["options"]["budget"] == 0.5
    assert runs["svg_ear@0.25"]["options"]["num_k_clusters"] == 16
    assert runs["svg_ear@0.25[kc8]"]["options"] | {"num_k_clusters": 8, "kmeans_iters": 1, "budget": 0.25} == \
        runs["svg_ear@0.25[kc8]"]["options"]
    assert runs["no_self_attn"]["removed_per_graph"] == [1]  # one video self-attention per block graph
    assert runs["svg_ear@0.25"]["op_calls_per_forward"] == 2  # one per layer
    assert 0.1 < runs["svg_ear@0.25"]["density"] < 0.5
    assert runs["svg_ear@0.25"]["rel_error"] < 0.1 < runs["no_self_attn"]["rel_error"]
    assert "| svg_ear@0.25 |" in capsys.readouterr().out


@pytest.mark.parametrize("words", [["kc8"], ["num_k_clusters=8"], ["kc8", "num_k_clusters=8", "other"],
                                   ["kc8", "no_such_field=1"]])
def test_bench_e2e_rejects_a_malformed_variant(words, capsys):
    with pytest.raises(SystemExit):
        bench_e2e.main(["--tiny", "--variant", *words])
    assert "--variant" in capsys.readouterr().err


def test_bench_e2e_keeps_the_runs_measured_before_a_failure(tmp_path):
    out = tmp_path / "e2e.json"
    with pytest.raises(Exception, match="budget"):  # an invalid budget fails when its run compiles
        bench_e2e.main(["--tiny", "--regional", "--budgets", "0.25", "5.0", "--repeats", "1", "--json", str(out)])
    partial = json.loads(out.read_text())["models"][0]
    assert partial["model"] == "tiny"
    assert [row["run"] for row in partial["partial_runs"]] == ["dense", "no_self_attn", "svg_ear@0.25"]


def test_bench_op_reference_smoke_run(tmp_path):
    bench_op = pytest.importorskip("bench_op")
    out = tmp_path / "op.json"
    bench_op.main(["--frames", "2", "--height", "8", "--width", "16", "--heads", "2", "--head-dim", "32",
                   "--dtype", "float32", "--impls", "reference", "--densities", "0.3", "--q-clusters", "16",
                   "--k-clusters", "64", "--repeats", "1", "--json", str(out)])
    runs = {row["mode"]: row for row in json.loads(out.read_text())["runs"]}
    assert set(runs) == {"ear", "svg2"}
    assert all(abs(row["density"] - 0.3) < 0.1 for row in runs.values())
    # The untimed (graph-replay) timing exists on a GPU only.
    assert all((row["untimed_ms"] is None) != torch.cuda.is_available() for row in runs.values())
    assert runs["ear"]["rel_error"] < runs["svg2"]["rel_error"]  # compensation: the point of EAR


def test_query_tile_fill_counts_padded_rows():
    query_tile_fill = pytest.importorskip("query_tile_fill")
    import torch

    sizes = torch.tensor([[128.0, 130.0, 20.0, 0.0]])  # tiles of 128: 1 + 2 + 1 + 0 = 4 tiles, 278 rows
    assert query_tile_fill.tile_fill(sizes, 128) == pytest.approx(278 / 512)
    # the remainders of 2 and 20 rows fit 64-row tiles: 128 + (128 + 64) + 64
    assert query_tile_fill.tile_fill(sizes, 128, half_height_remainders=True) == pytest.approx(278 / 384)


def test_profile_op_says_it_needs_a_gpu(monkeypatch):
    profile_op = pytest.importorskip("profile_op")
    monkeypatch.setattr(sys, "argv", ["profile_op.py"])
    monkeypatch.setattr(profile_op.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="needs a CUDA device"):
        profile_op.main()


def test_sweep_attention_tiles_global_order_is_one_cost_order_over_the_plans_items():
    sweep = pytest.importorskip("sweep_attention_tiles")
    from svg_ear_compile.kernels.attention_plan import attention_plan
    from svg_ear_compile.kernels.block_map import BlockMap
    from svg_ear_compile.kernels.permute_ref import cluster_layout

    gen = torch.Generator().manual_seed(2)
    groups, n, qc, kc, extra = 3, 190, 6, 9, 4
    q_layout = cluster_layout(torch.randint(0, qc, (groups, n), generator=gen), qc)
    k_layout = cluster_layout(torch.randint(0, kc, (groups, n), generator=gen), kc)
    selected = torch.rand(groups, qc, kc, generator=gen) < 0.5
    plan = attention_plan(q_layout, k_layout, BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes),
                          32, 32, extra, 16)
    keys = (selected * k_layout.sizes[:, None, :]).sum(-1) + extra + 1  # direct oracle of a row's keys
    for before, after in ((plan.work, sweep.by_global_cost(plan, qc, extra).work),
                          (plan.remainder_work, sweep.by_global_cost(plan, qc, extra).remainder_work)):
        assert sorted(before.tolist()) == sorted(after.tolist())
        costs = [(end - start) * int(keys[g, c]) if end > start else -1 for g, c, start, end in after.tolist()]
        assert costs == sorted(costs, reverse=True)
        assert len({g for g, _, start, end in after.tolist()[:groups] if end > start}) > 1  # heads interleave


def test_sweep_attention_tiles_says_it_needs_a_gpu(monkeypatch):
    sweep = pytest.importorskip("sweep_attention_tiles")
    monkeypatch.setattr(sys, "argv", ["sweep_attention_tiles.py", "--tiles", "64x64x4x3"])
    monkeypatch.setattr(sweep.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="needs a CUDA device"):
        sweep.main()


def test_tile_spec_reads_four_or_five_sizes():
    from _timing import tile_spec

    assert tile_spec("128x64x8x3") == (128, 64, 8, 3)
    assert tile_spec("64X64x4x3x32") == (64, 64, 4, 3, 32)
    for bad in ("128x64x8", "128xax8x3"):
        with pytest.raises(argparse.ArgumentTypeError, match="BLOCK_MxBLOCK_N"):
            tile_spec(bad)


@pytest.mark.slow
def test_bench_quality_smoke_runs(tmp_path):
    pytest.importorskip("matplotlib")
    bench_quality = pytest.importorskip("bench_quality")
    plot = tmp_path / "pareto.png"
    results = bench_quality.main(["--smoke", "--modes", "ear", "svg2", "--top-ps", "--plot", str(plot)])
    assert plot.stat().st_size > 0
    rows = {row["mode"]: row for row in results["settings"]}
    assert set(rows) == {"ear", "svg2"}
    for row in rows.values():
        assert len(row["clips"]) == 2 and all(clip["op_calls"] == 4 for clip in row["clips"])  # 2 steps x 2 layers
        assert 0 < row["ssim"] <= 1 and row["psnr"] > 20
    assert rows["ear"]["psnr"] > rows["svg2"]["psnr"]  # compensation recovers what SVG2 drops


def _toy_profile(path, config_hash: str, layer_configs: dict, base_config: dict | None = None, **end_to_end):
    from svg_ear_compile.profiles import LayerResult, ModelSignature, Profile, write_profile

    signature = ModelSignature("WanTransformer3DModel", config_hash, num_layers=2, num_heads=2, head_dim=16, seq_len=48)
    layers = [LayerResult(layer, config) for layer, config in layer_configs.items()]
    profile = Profile(device="cpu", model=signature, base_config={"min_seq_len": 0, **(base_config or {})},
                      layers=layers, end_to_end={"target_psnr_db": 30.0, **end_to_end})
    return write_profile(profile, path)


def test_bench_tuned_times_the_profile_and_uniform_configs_side_by_side(tmp_path, capsys):
    bench_tuned = pytest.importorskip("bench_tuned")
    pytest.importorskip("optuna")
    from svg_ear_compile.tuner._model import load_model

    model = "tests.tuner._toy:tiny_wan_2_layers"
    exact_then_full = {0: {"min_seq_len": 2**31 - 1}, 1: {"budget": 1.0}}  # attention exact in both layers
    profile = _toy_profile(tmp_path / "toy.yaml", load_model(model).config_hash(), exact_then_full)
    searched = {"budget": 0.25, "num_q_clusters": 4, "refresh_every": 2}  # sparse.yaml's tuning run's best uniform
    sparse = _toy_profile(tmp_path / "sparse.yaml", load_model(model).config_hash(), {0: {"budget": 0.05}},
                          uniform_search={"params": searched, "psnr_db": 31.0})
    out = tmp_path / "tuned.json"
    results = bench_tuned.main(["--model", model, "--profile", str(profile), "--other-profile", str(sparse),
                                "--budgets", "0.05", "1.0",
                                "--variant", "kmeans_iters_init=3,num_q_clusters=4", "--steps", "2", "--seeds", "0,1",
                                "--rounds", "2", "--runs", "1", "--device", "cpu", "--json", str(out)])
    rows = {row["config"]: row for row in json.loads(out.read_text())["runs"]}
    variant = "kmeans_iters_init=3,num_q_clusters=4"
    assert list(rows) == ["dense", "tuned", "tuned2", "uniform@0.05", f"uniform@0.05+{variant}", "uniform@1",
                          f"uniform@1+{variant}", "uniform@0.25 (tuned2's search)"]
    assert {k: rows["uniform@0.25 (tuned2's search)"]["settings"][k] for k in searched} == searched
    assert rows["uniform@0.05"]["settings"]["num_q_clusters"] == 8  # the default 256, moved into the range at S=48
    assert (rows[f"uniform@0.05+{variant}"]["settings"]["kmeans_iters_init"],
            rows[f"uniform@0.05+{variant}"]["settings"]["num_q_clusters"]) == (3, 4)
    assert all(len(row["times_ms"]) == 2 for row in rows.values())  # 2 rounds x 1 run
    assert rows["dense"]["psnr_db"] == 100.0
    assert rows["tuned"]["psnr_db"] > 60 and rows["uniform@1"]["psnr_db"] > 60  # exact up to float32 rounding
    assert rows["uniform@0.05"]["psnr_db"] < rows["uniform@1"]["psnr_db"]
    meeting = [r for name, r in rows.items() if name.startswith("uniform@") and r["psnr_db"] >= 30.0]
    fastest = min(meeting, key=lambda r: r["median_ms"])
    assert results["summary"]["best_uniform"] == fastest["config"]
    speed_ratio = fastest["median_ms"] / rows["tuned"]["median_ms"]
    assert results["summary"]["tuned_vs_best_uniform"] == pytest.approx(speed_ratio)
    assert results["summary"]["others_vs_best_uniform"] == {
        "tuned2": pytest.approx(fastest["median_ms"] / rows["tuned2"]["median_ms"])}
    assert rows["tuned2"]["settings"]["layer_overrides"] == {"0": {"budget": 0.05}}  # as JSON keys it
    assert f"| uniform@0.05+{variant} |" in capsys.readouterr().out


def test_bench_tuned_guides_as_the_profile_was_tuned_and_uniform_configs_route_alike(tmp_path, capsys):
    bench_tuned = pytest.importorskip("bench_tuned")
    pytest.importorskip("optuna")
    from svg_ear_compile.tuner._model import load_model

    model = "tests.tuner._toy:tiny_wan_2_layers"
    exact = {0: {"budget": 1.0}, 1: {"budget": 1.0}}
    profile = _toy_profile(tmp_path / "toy.yaml", load_model(model).config_hash(), exact,
                           base_config={"batch_shares_routing": True}, guidance=5.0, guidance_batched=True)
    common = ["--model", model, "--profile", str(profile), "--budgets", "0.05", "--steps", "2", "--seeds", "0",
              "--rounds", "1", "--runs", "1", "--device", "cpu"]
    results = bench_tuned.main(common)
    assert (results["guidance"], results["guidance_batched"]) == (5.0, True)
    rows = {row["config"]: row for row in results["runs"]}
    assert rows["uniform@0.05"]["settings"]["batch_shares_routing"] is True
    assert rows["tuned"]["psnr_db"] > 60  # budget 1 in both layers: exact up to float32 rounding
    assert "2 steps, guidance 5 (one batch per step), seeds" in capsys.readouterr().out
    assert bench_tuned.main([*common, "--guidance", "1"])["guidance"] == 1.0
    assert "2 steps, seeds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench_tuned.main([*common, "--guidance", "-2"])
    assert "--guidance -2.0: expected a number > 0" in capsys.readouterr().err


def test_bench_tuned_rejects_another_models_profile_and_a_bad_variant(tmp_path, capsys):
    bench_tuned = pytest.importorskip("bench_tuned")
    pytest.importorskip("optuna")
    profile = _toy_profile(tmp_path / "toy.yaml", "0123456789abcdef", {0: {"budget": 0.5}})
    model = "tests.tuner._toy:tiny_wan_2_layers"
    with pytest.raises(SystemExit):
        bench_tuned.main(["--model", model, "--profile", str(profile), "--device", "cpu"])
    assert "tuned for another model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_tuned.main(["--profile", str(profile), "--variant", "kmeans_iters_init"])
    assert "expected field=value" in capsys.readouterr().err


def test_bench_tuned_tuned_variants_set_a_field_for_every_layer_and_refuse_a_per_layer_one():
    bench_tuned = pytest.importorskip("bench_tuned")
    from svg_ear_compile import SvgEarConfig

    profile_config = SvgEarConfig(layer_overrides={0: {"budget": 0.2}, 1: {"budget": 0.1}})
    configs = bench_tuned.configs_to_run(profile_config, 4096, [], [], [{"refresh_every": 2}])
    assert list(configs) == ["dense", "tuned", "tuned+refresh_every=2"]
    without_plain = bench_tuned.configs_to_run(profile_config, 4096, [0.1], [{"refresh_every": 2}], plain=False)
    assert list(without_plain) == ["dense", "tuned", "uniform@0.1+refresh_every=2"]
    variant = configs["tuned+refresh_every=2"]
    assert [variant.for_layer(layer).refresh_every for layer in (0, 1, 5)] == [2, 2, 2]
    assert [variant.for_layer(layer).budget for layer in (0, 1)] == [0.2, 0.1]
    with pytest.raises(ValueError, match=r"sets \['budget'\] per layer"):
        bench_tuned.configs_to_run(profile_config, 4096, [], [], [{"budget": 0.3}])


def test_kernel_families_name_each_svg_ear_kernel():
    """The profile breakdown files each of our Triton kernels under its stage (a renamed kernel would
    silently land in "other")."""
    from _timing import kernel_family

    from svg_ear_compile.kernels import cluster_stats, kmeans, probe, sparse_attention

    expected = {
        sparse_attention._sparse_attention_kernel: "SVG-EAR sparse attention",
        kmeans._assign_kernel: "SVG-EAR k-means assignment",
        probe._probe_kernel: "SVG-EAR error probe",
        cluster_stats._segment_mean_kernel: "SVG-EAR cluster means, permutation",
    }
    for kernel, family in expected.items():
        assert kernel_family(kernel.fn.__name__) == family
    assert kernel_family("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_TNT") == "GEMM (cuBLAS/CUTLASS)"
    assert kernel_family("triton_per_fused__to_copy_add_mul_3") == "Inductor fused (triton_*)"


def test_bench_quality_runs_each_refresh_every_as_its_own_rows(capsys):
    bench_quality = pytest.importorskip("bench_quality")
    results = bench_quality.main(["--smoke", "--modes", "ear", "--top-ps", "--refresh-every", "1", "2",
                                  "--clip", "2", "16", "24", "--set", "kmeans_iters=1", "--plot", ""])
    rows = {row["mode"]: row for row in results["settings"]}
    assert set(rows) == {"ear", "ear r2"}
    assert rows["ear"]["options"]["refresh_every"] == 1 and rows["ear r2"]["options"]["refresh_every"] == 2
    assert rows["ear"]["options"]["kmeans_iters"] == 1
    assert "clip ClipSpec(frames=2, height=16, width=24)" in capsys.readouterr().out
    for row in rows.values():
        assert all(clip["op_calls"] == 4 for clip in row["clips"])  # 2 steps x 2 layers: reuse still calls the op
    assert rows["ear r2"]["psnr"] != rows["ear"]["psnr"]  # the second step reused the first step's routing
    for bad in (["--refresh-every", "0"], ["--clip", "2", "15", "24"], ["--set", "budget"]):
        with pytest.raises(SystemExit):
            bench_quality.main(["--smoke", *bad, "--plot", ""])


def test_bench_quality_guidance_calls_run_two_op_calls_per_step_and_layer():
    bench_quality = pytest.importorskip("bench_quality")
    common = ["--smoke", "--modes", "ear", "--top-ps", "--guidance", "2", "--plot", ""]
    batched, separate = (bench_quality.main(common + extra)["settings"][0] for extra in ([], ["--guidance-calls"]))
    assert all(clip["op_calls"] == 4 for clip in batched["clips"])  # 2 steps x 2 layers, cond and uncond in one batch
    assert all(clip["op_calls"] == 8 for clip in separate["clips"])  # ... and as two calls


def test_bench_e2e_with_reuse_times_the_mean_of_whole_refresh_cycles(tmp_path, capsys):
    results = bench_e2e.main(["--tiny", "--regional", "--budgets", "0.25", "--repeats", "2", "--refresh-every", "2",
                              "--set", "kmeans_iters=1", "--variant", "stagger", "stagger_refresh=True",
                              "--json", str(tmp_path / "e2e.json")])
    runs = {row["run"]: row for row in results["models"][0]["runs"]}
    sparse, staggered = runs["svg_ear@0.25"], runs["svg_ear@0.25[stagger]"]
    assert sparse["options"]["kmeans_iters"] == 1 and sparse["options"]["refresh_every"] == 2
    assert sparse["forward_ms"] == pytest.approx(sum(sparse["times_ms"]) / 2)
    assert sparse["slowest_ms"] == max(sparse["times_ms"]) and {sparse["fresh_ms"], sparse["reusing_ms"]} == \
        set(sparse["times_ms"])
    assert staggered["slowest_ms"] == max(staggered["times_ms"]) and "fresh_ms" not in staggered
    assert "| svg_ear@0.25[stagger] |" in capsys.readouterr().out.split("Per step")[1]
    assert runs["dense"]["forward_stat"] == "median of 2"
    for bad in (["--repeats", "3"], ["--repeats", "2", "--set", "no_such_field=1"]):
        with pytest.raises(SystemExit):
            bench_e2e.main(["--tiny", "--budgets", "0.25", "--refresh-every", "2", *bad])


def _routed_head(seed: int = 0):
    """One head of the structured workload, routed by the reference op at budget 0.2: (q, k, v, stats)."""
    from svg_ear_compile import SvgEarConfig, svg_ear_attention
    from svg_ear_compile.workloads import video_qkv

    q, k, v = video_qkv(batch=1, heads=1, frames=2, height=8, width=8, head_dim=16, seed=seed)
    config = SvgEarConfig(num_q_clusters=8, num_k_clusters=24, budget=0.2, min_seq_len=0, impl="reference")
    _, stats = svg_ear_attention(q, k, v, config, return_stats=True)
    return q, k, v, stats


def test_the_op_reference_tail_equals_the_research_scripts_first_order_expansion():
    """Two implementations of the tail's first-order form, kept apart on purpose: the op's oracle
    (``sparse_attention_ref._tail_term``) and the accuracy study's (``compensation_accuracy._expanded``,
    kind ``linear``), on the same clusters and offsets."""
    compensation_accuracy = pytest.importorskip("compensation_accuracy")
    from svg_ear_compile.kernels.sparse_attention_ref import _tail_term

    gen = torch.Generator().manual_seed(3)
    log_weights = torch.randn(9, generator=gen, dtype=torch.float64) * 3
    centroids = torch.randn(9, 16, generator=gen, dtype=torch.float64)
    value_means = torch.randn(9, 12, generator=gen, dtype=torch.float64)
    point = torch.randn(16, generator=gen, dtype=torch.float64)
    offset = 0.3 * torch.randn(5, 16, generator=gen, dtype=torch.float64)
    logit, value = _tail_term(log_weights, centroids, value_means, point, 0.25)(point + offset)
    study_logit, study_value = compensation_accuracy._expanded(log_weights, centroids, value_means, offset, 0.25,
                                                               "linear")
    torch.testing.assert_close(logit, study_logit[:, 0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(value, study_value[:, 0], rtol=1e-12, atol=1e-12)


def test_compensation_variants_against_the_replaced_key_oracle():
    compensation_accuracy = pytest.importorskip("compensation_accuracy")
    from ._oracles import rel_error, replaced_key_oracle

    q, k, v, stats = _routed_head()
    routing = (stats["query_labels"][0, 0], stats["key_labels"][0, 0], stats["selected"][0, 0])
    outs = compensation_accuracy.compensated_outputs(q[0, 0], k[0, 0], v[0, 0], *routing, 0.25, hybrid=(1, 24))
    assert rel_error(outs["centroid"], replaced_key_oracle(q, k, v, stats)[0, 0]) < 1e-10
    assert rel_error(outs["none"], replaced_key_oracle(q, k, v, stats, compensation=False)[0, 0]) < 1e-10
    assert rel_error(outs["hybrid24"], outs["centroid"]) < 1e-10  # every skipped cluster kept exact
    assert 1e-6 < rel_error(outs["linear"], outs["centroid"]) < rel_error(outs["none"], outs["centroid"])
    assert rel_error(outs["hybrid1"], outs["centroid"]) < rel_error(outs["linear"], outs["centroid"])


def test_expansions_are_exact_where_every_query_sits_on_its_cluster_mean():
    compensation_accuracy = pytest.importorskip("compensation_accuracy")
    q, k, v, stats = _routed_head(seed=1)
    labels = stats["query_labels"][0, 0]
    means = torch.zeros(8, q.shape[-1]).index_add_(0, labels, q[0, 0]) / torch.bincount(labels, minlength=8)[:, None]
    on_means = means[labels]  # u = 0 for every query: the expansion has nothing to approximate
    outs = compensation_accuracy.compensated_outputs(on_means, k[0, 0], v[0, 0], labels, stats["key_labels"][0, 0],
                                                     stats["selected"][0, 0], 0.25)
    for name in ("zeroth", "linear", "second"):
        torch.testing.assert_close(outs[name], outs["centroid"], rtol=1e-9, atol=1e-9)


def test_bench_compensation_runs_every_form_on_one_routing(tmp_path):
    bench_compensation = pytest.importorskip("bench_compensation")
    shape = "--frames 2 --height 8 --width 16 --heads 2 --head-dim 32 --dtype float32".split()
    runs = bench_compensation.main([*shape, "--k-clusters", "24", "--q-clusters", "8", "--exact", "4", "40",
                                    "--budgets", "0.2", "--repeats", "1", "--json", str(tmp_path / "c.json")])
    by_form = {run["form"]: run for run in runs}
    assert list(by_form) == ["none", "every centroid", "exact_centroids=4", "exact_centroids=40"]
    assert len({run["density"] for run in runs}) == 1  # one routing for every form
    # a list longer than the 24 clusters leaves no tail: the same output as every centroid
    assert by_form["exact_centroids=40"]["rel_error"] == by_form["every centroid"]["rel_error"]
    assert by_form["exact_centroids=4"]["rel_error"] != by_form["every centroid"]["rel_error"]
    assert json.loads((tmp_path / "c.json").read_text())["runs"] == runs


def test_probe_step_sensitivity_scales_the_budgets_of_one_period_only(tmp_path, capsys):
    probe = pytest.importorskip("probe_step_sensitivity")
    pytest.importorskip("optuna")
    from svg_ear_compile.ops import reset_centroid_caches
    from svg_ear_compile.profiles import read_profile
    from svg_ear_compile.tuner._end_to_end import compiled, final_psnr
    from svg_ear_compile.tuner._model import denoise, load_model

    model = "tests.tuner._toy:tiny_wan_2_layers"
    tune_model = load_model(model)
    few_clusters = {"num_q_clusters": 8, "num_k_clusters": 16}  # 48 tokens: more would make every token a cluster
    profile = _toy_profile(tmp_path / "toy.yaml", tune_model.config_hash(), {0: {"budget": 0.4}, 1: {"budget": 0.3}},
                           base_config=few_clusters)
    common = ["--model", model, "--profile", str(profile), "--steps", "3", "--seeds", "0", "--device", "cpu"]
    unchanged = probe.main([*common, "--periods", "3", "--ratio", "1"])
    assert [row["steps"] for row in unchanged["periods"]] == [[0, 0], [1, 1], [2, 2]]
    assert all(row["sensitivity"] == 0.0 and row["share"] is None for row in unchanged["periods"])

    # One period over every step: the scaled profile alone, run here directly.
    whole = probe.main([*common, "--periods", "1", "--ratio", "0.25"])["periods"][0]
    scaled = probe.scaled_budgets(read_profile(profile).config(), 0.25)
    assert (scaled.layer_overrides[0]["budget"], scaled.layer_overrides[1]["budget"]) == (0.1, 0.075)
    inputs = tune_model.inputs_for(0)
    dense = [denoise(compiled(tune_model, None), inputs, 3).float()]
    reset_centroid_caches()
    direct = [denoise(compiled(tune_model, scaled), inputs, 3).float()]
    assert whole["psnr_db"] == pytest.approx(final_psnr(direct, dense), abs=1e-9)
    assert whole["psnr_db"] < unchanged["profile_psnr_db"]
    assert "| 0 | 0-2 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        probe.main([*common, "--periods", "4"])
    assert "--periods 4: must be between 1 and --steps (3)" in capsys.readouterr().err
