# CUDA-graph replay of the warm pipeline equals the eager pipeline, call for call and layer for layer.
import warnings

import pytest
import torch

from svg_ear_compile import SvgEarConfig, SvgEarState, graphs, svg_ear_attention
from svg_ear_compile.workloads import video_qkv

CONFIG = SvgEarConfig(num_q_clusters=16, num_k_clusters=48, min_seq_len=0, budget=0.25, kmeans_iters_init=8)


def test_config_flag_is_validated_and_round_trips():
    assert CONFIG.cuda_graph == "auto"
    for setting in (False, True, "auto"):
        assert SvgEarConfig.from_yaml(CONFIG.replace(cuda_graph=setting).to_yaml()).cuda_graph == setting
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="cuda_graph"):
            CONFIG.replace(cuda_graph=bad)


def test_auto_graphs_calls_below_the_row_threshold_only():
    """Wan2.1-1.3B 480p (12 heads × 32,760 tokens) replays graphs; 14B 720p (40 × 75,600) runs eagerly."""
    assert graphs.wanted("auto", 12 * 32_760) and not graphs.wanted("auto", 40 * 75_600)
    assert graphs.wanted("auto", graphs.GRAPH_MAX_ROWS - 1) and not graphs.wanted("auto", graphs.GRAPH_MAX_ROWS)
    assert graphs.wanted(True, 40 * 75_600) and not graphs.wanted(False, 1)


def test_auto_runs_calls_reusing_a_routing_eagerly_and_true_graphs_them():
    assert not graphs.wanted("auto", 12 * 32_760, reusing=True)
    assert graphs.wanted(True, 12 * 32_760, reusing=True) and not graphs.wanted(False, 1, reusing=True)


def test_graphs_only_where_cuda_can_capture():
    assert not graphs.can_capture(torch.device("cpu"))


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def _steps(layers: int, calls: int, seed: int = 0):
    """``calls`` denoising steps of ``layers`` layers: new inputs each call, one shape."""
    return [[video_qkv(1, 3, 4, 12, 20, 64, seed=seed + 100 * call + layer, dtype=torch.bfloat16, device="cuda")
             for layer in range(layers)] for call in range(calls)]


def _run(steps, config, order=None):
    states = [SvgEarState() for _ in steps[0]]
    results = []
    for layer_inputs in steps:
        for layer in order or range(len(layer_inputs)):
            results.append(svg_ear_attention(*layer_inputs[layer], config, state=states[layer], return_stats=True))
    return states, results


@gpu
@pytest.mark.parametrize("cuda_graph", [True, "auto"])
@pytest.mark.parametrize("refresh_every", [1, 2, 3])
def test_graphed_calls_equal_eager_calls_bitwise(refresh_every, cuda_graph):
    config = CONFIG.replace(refresh_every=refresh_every)
    steps = _steps(layers=2, calls=6)
    eager_states, eager = _run(steps, config.replace(cuda_graph=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a step that falls back to eager warns: fail on it
        graph_states, graphed = _run(steps, config.replace(cuda_graph=cuda_graph))
    assert all(not s.graphs for s in eager_states)
    assert all(isinstance(g, graphs._Captured) for s in graph_states for g in s.graphs.values())
    # "auto" graphs the calls that route afresh only; True also those that reuse a routing
    kinds = {key[0] == "reuse" for s in graph_states for key in s.graphs}
    assert kinds == ({False, True} if cuda_graph is True and refresh_every > 1 else {False})
    reusing = sum(stats["reused_routing"] for _, stats in graphed)
    assert reusing == 2 * sum(call % refresh_every != 0 for call in range(6))
    for (out, stats), (ref, ref_stats) in zip(graphed, eager, strict=True):
        assert torch.equal(out, ref) and stats["reused_routing"] == ref_stats["reused_routing"]
        for name in ("query_labels", "key_labels", "selected", "density_per_head"):
            assert torch.equal(stats[name], ref_stats[name]), name


@gpu
def test_layers_sharing_the_pool_replay_in_any_order_and_outputs_are_not_aliased():
    steps = _steps(layers=3, calls=4, seed=7)
    _, eager = _run(steps, CONFIG.replace(cuda_graph=False), order=[2, 0, 1])
    _, graphed = _run(steps, CONFIG, order=[2, 0, 1])
    # every output of every call is still intact after all later replays: nothing aliases a static buffer
    for (out, _), (ref, _) in zip(graphed, eager, strict=True):
        assert torch.equal(out, ref)


@gpu
def test_a_new_shape_captures_its_own_graph_and_the_old_one_still_replays():
    state, config = SvgEarState(), CONFIG.replace(num_q_clusters=8, num_k_clusters=16)
    small = video_qkv(1, 2, 2, 8, 8, 64, dtype=torch.bfloat16, device="cuda")
    large = video_qkv(1, 2, 4, 8, 8, 64, dtype=torch.bfloat16, device="cuda")
    reference = SvgEarState()
    for inputs in (small, small, small, large, large, large, small):
        # a new shape resets the centroids: cold start, then a warm eager call that captures, then replays
        out = svg_ear_attention(*inputs, config, state=state)
        ref = svg_ear_attention(*inputs, config.replace(cuda_graph=False), state=reference)
        assert torch.equal(out, ref)
    assert len(state.graphs) == 2


@gpu
def test_layers_with_other_cluster_counts_on_one_shape_each_get_their_graph():
    # layer 1's block map has another shape: its graph needs output buffers of its own while layer 0's live
    config = CONFIG.replace(layer_overrides={1: {"num_q_clusters": 8, "num_k_clusters": 32, "block_m": 64}})
    steps = _steps(layers=2, calls=4, seed=3)
    results = {}
    for cuda_graph in (True, False):
        states = [SvgEarState(), SvgEarState()]
        results[cuda_graph] = [svg_ear_attention(*inputs, config.replace(cuda_graph=cuda_graph), state=states[layer],
                                                 layer=layer)
                               for layer_inputs in steps for layer, inputs in enumerate(layer_inputs)]
    assert all(torch.equal(out, ref) for out, ref in zip(results[True], results[False], strict=True))


@gpu
def test_graphs_captured_in_inference_mode_replay_outside_it():
    steps = _steps(layers=1, calls=4, seed=11)
    states = {True: SvgEarState(), False: SvgEarState()}
    for call, layer_inputs in enumerate(steps):
        with torch.inference_mode(call < 2):  # cold call and capture in inference mode, replays outside
            out = svg_ear_attention(*layer_inputs[0], CONFIG, state=states[True])
        ref = svg_ear_attention(*layer_inputs[0], CONFIG.replace(cuda_graph=False), state=states[False])
        assert torch.equal(out, ref)


@gpu
def test_a_step_that_waits_on_the_host_runs_eagerly_with_one_warning():
    def step(inputs, centroids, out):
        scale = inputs["x"].abs().max().item()  # a host read: not capturable
        return {"out": inputs["x"] / scale}, centroids

    x = torch.randn(4, 8, device="cuda")
    centroids = (torch.zeros(1, device="cuda"), torch.zeros(1, device="cuda"))
    table: dict = {}
    with pytest.warns(RuntimeWarning, match="waits on the host"):
        first, _ = graphs.run_graphed(table, "k", step, {"x": x}, centroids)
    second, _ = graphs.run_graphed(table, "k", step, {"x": 2 * x}, centroids)
    assert table == {"k": None}
    torch.testing.assert_close(first, {"out": x / x.abs().max()})
    torch.testing.assert_close(second, {"out": x / x.abs().max()})
    torch.randn(1, device="cuda")  # no capture was tried: the random generator still works


@gpu
def test_graphs_of_released_layers_do_not_break_later_captures():
    # every layer's state (and graph) dies between the two runs: the second run's captures need a live pool
    for seed in (0, 1):
        steps = _steps(layers=2, calls=3, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            _, graphed = _run(steps, CONFIG)
        _, eager = _run(steps, CONFIG.replace(cuda_graph=False))
        assert all(torch.equal(out, ref) for (out, _), (ref, _) in zip(graphed, eager, strict=True))


@gpu
def test_a_reset_keeps_the_graphs_and_the_next_video_replays_them_with_the_same_results():
    from svg_ear_compile import ops

    config = CONFIG.replace(refresh_every=2, cuda_graph=True).to_yaml(one_line=True)
    steps = _steps(layers=1, calls=4, seed=11)

    def video():
        ops.reset_centroid_caches()
        return [torch.ops.svg_ear.attention(*layer_inputs[0], config, 0) for layer_inputs in steps]

    first = video()
    captured = dict(ops.layer_state(config, 0).graphs)
    assert len(captured) == 2 and all(isinstance(g, graphs._Captured) for g in captured.values())  # fresh, reusing
    second = video()
    assert ops.layer_state(config, 0).graphs == captured  # the same graph objects, none captured again
    for out, ref in zip(second, first, strict=True):
        assert torch.equal(out, ref)
    ops.reset_centroid_caches(keep_graphs=False)


@gpu
def test_head_major_views_replay_like_contiguous_inputs():
    """Inputs as a traced diffusers model passes them, (B, H, S, D) views of token-major tensors: the graph's
    input buffers keep that layout (one memcpy per input, no transpose) and replay gives the contiguous
    inputs' answer bitwise."""
    steps = [[video_qkv(1, 2, 4, 12, 20, 64, seed=7 + 10 * call + layer, dtype=torch.bfloat16, device="cuda")
              for layer in range(2)] for call in range(3)]
    views = [[tuple(x.transpose(1, 2).contiguous().transpose(1, 2) for x in qkv) for qkv in layer_inputs]
             for layer_inputs in steps]
    _, contiguous = _run(steps, CONFIG.replace(cuda_graph=False))
    states, graphed = _run(views, CONFIG)
    captured = [g for s in states for g in s.graphs.values()]
    assert captured and all(isinstance(g, graphs._Captured) for g in captured)
    assert captured[0].inputs.tensors["queries"].stride() == views[0][0][0].reshape(2, -1, 64).stride()
    for (out, _), (ref, _) in zip(graphed, contiguous, strict=True):
        assert torch.equal(out, ref)


@gpu
@pytest.mark.parametrize("refresh_every", [1, 2])
def test_graphed_batch_shared_routing_equals_eager(refresh_every):
    config = CONFIG.replace(refresh_every=refresh_every, batch_shares_routing=True, cuda_graph=True)
    steps = [[video_qkv(2, 3, 4, 12, 20, 64, seed=7 + call, dtype=torch.bfloat16, device="cuda")] for call in range(4)]
    _, eager = _run(steps, config.replace(cuda_graph=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        states, graphed = _run(steps, config)
    assert states[0].graphs and all(isinstance(g, graphs._Captured) for g in states[0].graphs.values())
    for (out, stats), (ref, ref_stats) in zip(graphed, eager, strict=True):
        assert torch.equal(out, ref) and torch.equal(stats["selected"], ref_stats["selected"])
        assert torch.equal(stats["selected"][1], stats["selected"][0])
