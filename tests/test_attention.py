# svg_ear_attention: exact at full budget, equal to attention over centroid-replaced keys, better than SVG2.
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
from svg_ear_compile.kernels import kmeans_ref
from svg_ear_compile.workloads import video_qkv

from ._oracles import rel_error, replaced_key_oracle

SMALL = dict(num_q_clusters=32, num_k_clusters=96, min_seq_len=0, kmeans_iters_init=10)


@pytest.mark.parametrize("routing", ["error_aware", "attention"])
@pytest.mark.parametrize("compensation", [True, False])
def test_full_budget_equals_sdpa(routing, compensation):
    q, k, v = video_qkv(batch=2, heads=2, frames=4, height=8, width=12, head_dim=64)
    cfg = SvgEarConfig(**SMALL, budget=1.0, routing=routing, compensation=compensation)
    out, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert stats["density"] == pytest.approx(1.0) and not stats["dense"]
    assert rel_error(out, F.scaled_dot_product_attention(q, k, v)) < 1e-5


@pytest.mark.parametrize("routing", ["error_aware", "attention"])
def test_compensation_identity(routing):
    q, k, v = video_qkv(batch=1, heads=2, frames=4, height=8, width=8, head_dim=32, seed=3)
    cfg = SvgEarConfig(**SMALL, budget=0.2, routing=routing)
    out, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert 0.15 < stats["density"] < 0.4
    assert rel_error(out, replaced_key_oracle(q, k, v, stats)) < 1e-5


def test_without_compensation_skipped_blocks_are_dropped():
    q, k, v = video_qkv(batch=1, heads=1, frames=4, height=8, width=8, head_dim=32, seed=4)
    cfg = SvgEarConfig(**SMALL, budget=0.2, compensation=False)
    out, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert rel_error(out, replaced_key_oracle(q, k, v, stats, compensation=False)) < 1e-5


@pytest.mark.parametrize("density", [0.1, 0.2, 0.3])
def test_ear_beats_svg2_and_compensation_beats_dropping(density):
    q, k, v = video_qkv(batch=1, heads=2, frames=8, height=16, width=16, head_dim=64, seed=1)
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    base = SvgEarConfig(num_q_clusters=64, num_k_clusters=256, min_seq_len=0, kmeans_iters_init=20, budget=density)
    errors, densities = {}, {}
    for name, routing, compensation in [
        ("ear", "error_aware", True), ("svg2", "attention", False), ("compensation_only", "attention", True),
    ]:
        out, stats = svg_ear_attention(q, k, v, base.replace(routing=routing, compensation=compensation),
                                       return_stats=True)
        errors[name], densities[name] = rel_error(out, exact), stats["density"]
    assert densities["ear"] <= densities["svg2"] + 0.01
    assert abs(densities["compensation_only"] - densities["svg2"]) < 1e-9
    assert errors["ear"] < errors["svg2"], errors
    assert errors["compensation_only"] < errors["svg2"], errors


def test_error_stays_under_the_probe_bound():
    """DESIGN.md §2's bound with the query as its own proxy (δ_q = 0), derived per query q:

    õ − o = [(Ñ − N) − o(Z̃ − Z)] / Z̃, Ñ − N = −Σ_{j skipped} Σ_{t∈K_j} (e^{a_t} v_t − e^{c_j} v̄_j),
    so by Cauchy–Schwarz ‖õ − o‖ ≤ [√(n_skip · Σ_j ε_j(q)) + ‖o‖ · Σ_j F_j(q)] / Z̃ with
    ε_j(q) the probe at q and F_j(q) = Σ_t e^{a_t} − |K_j| e^{c_j} ≥ 0 (Jensen).
    """
    from svg_ear_compile.kernels.probe_ref import log_error_probe

    q, k, v = video_qkv(batch=1, heads=1, frames=4, height=8, width=16, head_dim=32, seed=2)
    out, stats = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=0.15), return_stats=True)
    qd, kd, vd = (x[0, 0].double() for x in (q, k, v))
    q_labels, k_labels, selected = stats["query_labels"][0, 0], stats["key_labels"][0, 0], stats["selected"][0, 0]
    kc = selected.shape[1]
    sizes = torch.bincount(k_labels, minlength=kc)
    k_means = torch.zeros(kc, 32, dtype=torch.float64).index_add_(0, k_labels, kd) / sizes.clamp_min(1)[:, None]
    v_means = torch.zeros(kc, 32, dtype=torch.float64).index_add_(0, k_labels, vd) / sizes.clamp_min(1)[:, None]
    scale = 1 / math.sqrt(32)

    logits = scale * qd @ kd.T
    exact = torch.softmax(logits, -1) @ vd
    shift = logits.amax(-1, keepdim=True)
    centroid_logits = scale * qd @ k_means.T - shift
    token_weights = torch.exp(logits - shift)
    skipped = ~selected[q_labels] & (sizes > 0)
    z_tilde = (token_weights * selected[q_labels][:, k_labels]).sum(-1) + (
        skipped * sizes * torch.exp(centroid_logits)).sum(-1)
    gap = torch.zeros(len(qd), kc, dtype=torch.float64).index_add_(1, k_labels, token_weights) - sizes * torch.exp(
        centroid_logits)
    probe = torch.exp(log_error_probe(qd[None], kd[None], vd[None], k_labels[None], k_means[None], v_means[None],
                                      sizes[None], scale)[0] - 2 * shift)
    n_skip = (skipped * sizes).sum(-1)
    bound = (torch.sqrt(n_skip * (probe * skipped).sum(-1)) + exact.norm(dim=-1) * (gap * skipped).sum(-1)) / z_tilde
    measured = (out[0, 0].double() - exact).norm(dim=-1)
    assert bool((gap * skipped >= -1e-9).all())  # Jensen: a cluster's mean key never adds mass
    assert bool((measured <= bound * (1 + 1e-6) + 1e-9).all())
    assert float(measured.max()) > 0  # the bound is not vacuous: something was skipped


@pytest.mark.parametrize(
    "shape",
    [(1, 1, 1, 64), (1, 2, 97, 40), (2, 1, 61, 96), (1, 3, 5, 128)],
    ids=["S=1", "S=97 prime D=40", "B=2 H=1 D=96", "clusters>S"],
)
def test_edge_shapes_are_correct(shape):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(shape, generator=gen) for _ in range(3))
    cfg = SvgEarConfig(num_q_clusters=8, num_k_clusters=16, min_seq_len=0, budget=0.3)
    out, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert out.shape == shape and stats["num_k_clusters"] == min(16, shape[2])
    assert rel_error(out, replaced_key_oracle(q, k, v, stats)) < 1e-5
    full = svg_ear_attention(q, k, v, cfg.replace(budget=1.0))
    assert rel_error(full, F.scaled_dot_product_attention(q, k, v)) < 1e-5


@pytest.mark.parametrize("dtype, tol", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2), (torch.float64, 1e-12)])
def test_low_and_high_precision_inputs(dtype, tol):
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=8, width=8, head_dim=64, dtype=dtype)
    out = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=1.0))
    assert out.dtype == dtype
    assert rel_error(out, F.scaled_dot_product_attention(q.double(), k.double(), v.double())) < tol


def test_short_sequences_run_exact_and_say_so():
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=4, width=4, head_dim=32)
    out, stats = svg_ear_attention(q, k, v, SvgEarConfig(min_seq_len=64, budget=0.1), return_stats=True)
    assert stats["dense"] and "min_seq_len" in stats["reason"] and stats["density"] == 1.0
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))


def test_layer_override_changes_the_run():
    q, k, v = video_qkv(batch=1, heads=1, frames=2, height=8, width=8, head_dim=32)
    cfg = SvgEarConfig(**SMALL, budget=0.2, layer_overrides={4: {"budget": 1.0}})
    _, sparse = svg_ear_attention(q, k, v, cfg, layer=3, return_stats=True)
    _, full = svg_ear_attention(q, k, v, cfg, layer=4, return_stats=True)
    assert sparse["density"] < 0.5 and full["density"] == pytest.approx(1.0)


def test_state_warm_starts_and_resets_on_new_shape():
    state = SvgEarState()
    cfg = SvgEarConfig(**SMALL, budget=0.3)
    q, k, v = video_qkv(batch=1, heads=2, frames=2, height=8, width=8, head_dim=32)
    _, first = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    _, second = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    assert first["cold_start"] and not second["cold_start"] and state.cold_starts == 1
    q2, k2, v2 = video_qkv(batch=1, heads=3, frames=2, height=8, width=6, head_dim=32)
    out, third = svg_ear_attention(q2, k2, v2, cfg, state=state, return_stats=True)
    assert third["cold_start"] and state.cold_starts == 2
    assert rel_error(out, replaced_key_oracle(q2, k2, v2, third)) < 1e-5
    state.query_centroids = torch.zeros(7, 7, 7)  # a corrupted cache is replaced, not trusted
    _, fourth = svg_ear_attention(q2, k2, v2, cfg, state=state, return_stats=True)
    assert fourth["cold_start"]


def test_warm_start_with_zero_iterations_reuses_the_clustering():
    state = SvgEarState()
    cfg = SvgEarConfig(**SMALL, budget=0.3, kmeans_iters=0)
    q, k, v = video_qkv(batch=1, heads=1, frames=2, height=8, width=8, head_dim=32)
    _, first = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    _, second = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    assert torch.equal(first["key_labels"], second["key_labels"])


@pytest.mark.parametrize("iters", [1, 2, 3])
def test_warm_call_runs_iters_lloyd_steps_and_caches_the_means_of_its_clusters(iters):
    cfg = SvgEarConfig(**SMALL, budget=0.3, kmeans_iters=iters)
    state = SvgEarState()
    svg_ear_attention(*video_qkv(1, 2, 2, 8, 8, 32, seed=1), cfg, state=state)  # the cold call fills the cache
    q, k, v = video_qkv(1, 2, 2, 8, 8, 32, seed=2)  # the next step's tokens: far from converged
    previous = {"query": state.query_centroids, "key": state.key_centroids}
    _, stats = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    for kind, x in (("query", q), ("key", k)):
        points, labels = x.reshape(2, -1, 32), stats[f"{kind}_labels"].reshape(2, -1)
        # oracle: the reference k-means from the cached centroids, iters - 1 steps, then an assignment;
        # the cache then holds the last update: each cluster's mean (an empty one keeps its centroid)
        before_update, expected_labels = kmeans_ref.kmeans(points, previous[kind], iters - 1)
        assert torch.equal(labels, expected_labels)
        centroids = getattr(state, f"{kind}_centroids")
        for group in range(2):
            for cluster in range(centroids.shape[1]):
                members = points[group][labels[group] == cluster]
                mean = members.mean(0) if len(members) else before_update[group, cluster]
                torch.testing.assert_close(centroids[group, cluster], mean)


@pytest.mark.parametrize("refresh_every", [2, 3])
def test_refresh_every_reuses_the_routing_on_the_calls_between(refresh_every):
    cfg = SvgEarConfig(**SMALL, budget=0.25, kmeans_iters=1, refresh_every=refresh_every)
    state = SvgEarState()
    calls = [video_qkv(1, 2, 2, 8, 8, 32, seed=seed) for seed in range(2 * refresh_every + 1)]
    fresh = None
    for index, (q, k, v) in enumerate(calls):
        out, stats = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
        assert stats["reused_routing"] == (index % refresh_every != 0)
        if not stats["reused_routing"]:
            fresh = stats
            continue
        # oracle: this call's tokens under the last fresh call's clusters and blocks, with this call's means
        assert rel_error(out, replaced_key_oracle(q, k, v, fresh)) < 1e-5
        for name in ("query_labels", "key_labels", "selected"):
            assert torch.equal(stats[name], fresh[name])
    assert state.cold_starts == 1


@pytest.mark.parametrize("stagger", [False, True])
def test_stagger_refresh_spreads_the_layers_refreshes_over_the_calls(stagger):
    """Layer ``ℓ`` routes afresh on call ``c`` (from the cold one) when ``(c + ℓ) mod r = 0`` staggered,
    ``c mod r = 0`` not; every layer still refreshes every ``r`` calls, and a call without a layer index
    is not staggered. Reusing calls equal their kept routing's oracle."""
    refresh_every, calls = 3, 8
    cfg = SvgEarConfig(**SMALL, budget=0.25, kmeans_iters=1, refresh_every=refresh_every, stagger_refresh=stagger)
    inputs = [video_qkv(1, 2, 2, 8, 8, 32, seed=seed) for seed in range(calls)]
    for layer in (0, 1, 2, 4, None):
        state, fresh = SvgEarState(), None
        for call, (q, k, v) in enumerate(inputs):
            out, stats = svg_ear_attention(q, k, v, cfg, state=state, layer=layer, return_stats=True)
            phase = layer if stagger and layer is not None else 0
            assert stats["reused_routing"] == (call > 0 and (call + phase) % refresh_every != 0), (layer, call)
            if stats["reused_routing"]:
                assert rel_error(out, replaced_key_oracle(q, k, v, fresh)) < 1e-5
            else:
                fresh = stats


def test_refresh_every_routes_afresh_when_the_shape_or_config_changes():
    cfg = SvgEarConfig(**SMALL, budget=0.25, refresh_every=4)
    state = SvgEarState()
    q, k, v = video_qkv(1, 2, 2, 8, 8, 32, seed=1)
    svg_ear_attention(q, k, v, cfg, state=state)
    _, other_budget = svg_ear_attention(q, k, v, cfg.replace(budget=0.5), state=state, return_stats=True)
    assert not other_budget["reused_routing"]
    q2, k2, v2 = video_qkv(1, 2, 2, 8, 6, 32, seed=2)
    _, other_shape = svg_ear_attention(q2, k2, v2, cfg, state=state, return_stats=True)
    assert not other_shape["reused_routing"]
    state.reset()
    _, after_reset = svg_ear_attention(q2, k2, v2, cfg, state=state, return_stats=True)
    assert not after_reset["reused_routing"]


def test_large_sequence_runs_on_cpu():
    q, k, v = video_qkv(batch=1, heads=1, frames=16, height=32, width=32, head_dim=64)
    cfg = SvgEarConfig(num_q_clusters=128, num_k_clusters=512, min_seq_len=0, budget=0.2, kmeans_iters_init=10)
    out, stats = svg_ear_attention(q, k, v, cfg, return_stats=True)
    assert q.shape[2] == 16384 and 0.19 < stats["density"] < 0.25
    assert rel_error(out, F.scaled_dot_product_attention(q, k, v)) < 0.1


@pytest.mark.parametrize(
    "args, match",
    [
        ((torch.randn(2, 4, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 8)), "rank 4"),
        ((torch.randn(1, 1, 8, 4), torch.randn(1, 1, 9, 4), torch.randn(1, 1, 9, 4)), "same shape"),
        ((torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4), torch.randn(1, 2, 8, 4)), "must match k"),
        ((torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4).half(), torch.randn(1, 1, 8, 4)), "dtypes differ"),
        ((torch.ones(1, 1, 8, 4, dtype=torch.int64),) * 3, "floating point"),
        ((torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4, device="meta")), "devices"),
        ((torch.randn(1, 1, 0, 4),) * 3, "empty"),
        (([1.0], torch.randn(1, 1, 8, 4), torch.randn(1, 1, 8, 4)), "torch.Tensor"),
    ],
)
def test_bad_inputs_name_the_problem(args, match):
    with pytest.raises(ValueError, match=match):
        svg_ear_attention(*args, SvgEarConfig(min_seq_len=0))


def test_auto_impl_is_the_reference_off_cuda_and_triton_rejects_float64():
    q = torch.randn(1, 1, 64, 8)
    _, stats = svg_ear_attention(q, q, q, SvgEarConfig(**SMALL, budget=0.5), return_stats=True)
    assert stats["impl"] == "reference"
    with pytest.raises(ValueError, match="impl='triton' runs float16, bfloat16 or float32"):
        svg_ear_attention(q.double(), q.double(), q.double(), SvgEarConfig(**SMALL, impl="triton"))


def test_triton_impl_without_gpu_or_interpreter_names_the_fix():
    code = (
        "import os, torch\n"
        "os.environ.pop('TRITON_INTERPRET', None)\n"
        "from svg_ear_compile import SvgEarConfig, svg_ear_attention\n"
        "q = torch.randn(1, 1, 64, 8)\n"
        "try:\n"
        "    svg_ear_attention(q, q, q, SvgEarConfig(min_seq_len=0, impl='triton'))\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "needs a CUDA device" in result.stdout and "TRITON_INTERPRET=1" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("where", ["query", "key"])
def test_nan_propagates_like_sdpa(where):
    q, k, v = video_qkv(batch=1, heads=1, frames=2, height=8, width=8, head_dim=32)
    (q if where == "query" else k)[0, 0, 5, 3] = float("nan")
    out = svg_ear_attention(q, k, v, SvgEarConfig(**SMALL, budget=0.3))
    expected_nan = torch.isnan(F.scaled_dot_product_attention(q, k, v)).any(-1)
    assert torch.equal(torch.isnan(out).any(-1), expected_nan)


def test_batch_shares_routing_attends_every_video_through_the_first_ones_routing():
    q, k, v = video_qkv(batch=2, heads=2, frames=2, height=8, width=8, head_dim=16, seed=3)
    cfg = SvgEarConfig(**SMALL, budget=0.3, kmeans_iters=1, refresh_every=2, batch_shares_routing=True)
    state = SvgEarState()
    out, stats = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)
    for name in ("query_labels", "key_labels", "selected"):
        assert torch.equal(stats[name][1], stats[name][0]), name
    assert rel_error(out, replaced_key_oracle(q, k, v, stats)) < 1e-5  # video 1 with its own cluster means
    alone, alone_stats = svg_ear_attention(q[:1], k[:1], v[:1], cfg.replace(batch_shares_routing=False),
                                           return_stats=True)
    assert torch.equal(alone_stats["selected"][0], stats["selected"][0]) and rel_error(out[:1], alone) < 1e-6
    _, own = svg_ear_attention(q, k, v, cfg.replace(batch_shares_routing=False), return_stats=True)
    assert not torch.equal(own["selected"][1], own["selected"][0])  # unshared, video 1 routes differently

    q2, k2, v2 = (x + 0.1 * torch.randn_like(x) for x in (q, k, v))  # the next step: the kept routing serves it
    out2, again = svg_ear_attention(q2, k2, v2, cfg, state=state, return_stats=True)
    assert again["reused_routing"] and torch.equal(again["selected"], stats["selected"])
    assert rel_error(out2, replaced_key_oracle(q2, k2, v2, stats)) < 1e-5
    _, third = svg_ear_attention(q, k, v, cfg, state=state, return_stats=True)  # routes afresh, warm-started
    assert not third["reused_routing"] and not third["cold_start"] and state.cold_starts == 1
    assert torch.equal(third["selected"][1], third["selected"][0])


@pytest.mark.parametrize("loop", ["down", "up"])
def test_a_timestep_moving_back_starts_a_new_video_cold(loop):
    """A denoising loop moves its timestep one way (down in Wan; up in other models), so a call that moves
    it back is a new video: it equals the same call on a fresh state (the oracle) instead of reusing the
    last video's routing. Equal timesteps (the two calls of guidance) and ones moving on keep the state;
    without timesteps nothing tells the videos apart."""
    cfg = SvgEarConfig(**SMALL, budget=0.25, kmeans_iters=1, refresh_every=4)
    first_video = [video_qkv(1, 2, 2, 8, 8, 32, seed=seed) for seed in range(3)]
    q, k, v = video_qkv(1, 2, 2, 8, 8, 32, seed=7)
    expected = svg_ear_attention(q, k, v, cfg, state=SvgEarState())
    start, on, later = (900.0, 500.0, 800.0) if loop == "down" else (100.0, 500.0, 200.0)
    for timesteps, new_video in (((start, start, on), torch.tensor([start])), ((None, None, None), None)):
        state = SvgEarState()
        reused = [svg_ear_attention(*qkv, cfg, state=state, timestep=t, return_stats=True)[1]["reused_routing"]
                  for qkv, t in zip(first_video, timesteps, strict=True)]
        assert reused == [False, True, True] and state.warm
        out, stats = svg_ear_attention(q, k, v, cfg, state=state, timestep=new_video, return_stats=True)
        if new_video is None:
            assert stats["reused_routing"] and not stats["cold_start"]
            continue
        assert stats["cold_start"] and not stats["reused_routing"] and state.cold_starts == 1
        assert torch.equal(out, expected)
        _, next_step = svg_ear_attention(q, k, v, cfg, state=state, timestep=later, return_stats=True)
        assert next_step["reused_routing"]


def test_early_budget_routes_the_steps_above_its_timestep_with_it():
    """Above ``early_above_timestep`` a call equals the same call at ``budget=early_budget`` (fresh
    states, the oracle); at or below it, the call at ``budget``. A kept routing is not carried over
    the cut: the first late call routes afresh, then reuses its own routing."""
    scheduled = SvgEarConfig(**SMALL, budget=0.1, early_budget=0.4, early_above_timestep=500.0, refresh_every=3)
    q, k, v = video_qkv(1, 2, 2, 8, 8, 32, seed=5)
    for timestep, budget in ((900.0, 0.4), (torch.tensor([501.0, 501.0]), 0.4), (500.0, 0.1), (20.0, 0.1)):
        out, stats = svg_ear_attention(q, k, v, scheduled, state=SvgEarState(), timestep=timestep, return_stats=True)
        expected, expected_stats = svg_ear_attention(q, k, v, scheduled.replace(budget=budget), state=SvgEarState(),
                                                     return_stats=True)
        assert torch.equal(out, expected) and stats["density"] == expected_stats["density"], timestep
    state = SvgEarState()
    reused = [svg_ear_attention(q, k, v, scheduled, state=state, timestep=t, return_stats=True)[1]["reused_routing"]
              for t in (900.0, 800.0, 400.0, 300.0, 200.0, 100.0)]
    assert reused == [False, True, False, True, True, False]
    without_timestep = svg_ear_attention(q, k, v, scheduled, state=SvgEarState())
    assert torch.equal(without_timestep, svg_ear_attention(q, k, v, scheduled.replace(early_budget=None,
                                                                                       early_above_timestep=None),
                                                           state=SvgEarState()))
