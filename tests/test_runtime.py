# Under compile_repeated_blocks (one graph for all blocks) layers, caches and warm-up match a whole-model compile.
import pytest
import torch

from svg_ear_compile import compile_repeated_blocks, ops, record, runtime

from ._models import hunyuan_inputs, tiny_hunyuan, tiny_wan, wan_inputs

pytest.importorskip("diffusers")

OPTIONS = {"min_seq_len": 0, "budget": 0.25, "num_q_clusters": 8, "num_k_clusters": 16,
           "dense_above_timestep": 600.0, "dense_layers": 1}
STEPS = (999.0, 750.0, 500.0, 250.0)


def test_layer_stacks_are_the_transformer_blocks_in_model_order():
    wan = tiny_wan(num_layers=3)
    assert runtime.layer_stacks(wan) == list(wan.blocks)
    hunyuan = tiny_hunyuan()
    assert runtime.layer_stacks(hunyuan) == [*hunyuan.transformer_blocks, *hunyuan.single_transformer_blocks]
    with pytest.raises(ValueError, match="no repeated blocks"):
        compile_repeated_blocks(torch.nn.Linear(2, 2))


def test_track_timestep_publishes_the_forward_argument():
    class Model(torch.nn.Module):
        def forward(self, x, timestep):
            return x * runtime.current_timestep()

    model = Model()
    handle = runtime.track_timestep(model)
    assert float(model(torch.ones(1), torch.tensor([3.0]))) == 3.0
    assert float(model(torch.ones(1), timestep=torch.tensor([5.0]))) == 5.0
    handle.remove()
    with pytest.raises(ValueError, match="no 'timestep'"):
        runtime.track_timestep(torch.nn.Linear(2, 2))


def _run(compiled, make_inputs):
    """Four timesteps × two CFG branches as separate forwards; returns the outputs and the recording."""
    outputs = []
    with torch.no_grad(), record() as rec:
        for step, timestep in enumerate(STEPS):
            for branch in range(2):
                outputs.append(compiled(**make_inputs(timestep=timestep, seed=100 * branch + step))[0])
    return outputs, rec


@pytest.mark.parametrize("family", ["wan", "hunyuan"])
def test_repeated_blocks_match_whole_model_compile_without_recompiles(family):
    from torch._dynamo.utils import counters

    make_model, make_inputs, num_layers = {
        "wan": (lambda: tiny_wan(num_layers=3), wan_inputs, 3),
        "hunyuan": (tiny_hunyuan, lambda **kw: hunyuan_inputs(batch=2, text_valid=(5, 7), **kw), 2),
    }[family]

    ops.reset_centroid_caches()
    torch._dynamo.reset()
    whole, whole_rec = _run(torch.compile(make_model(), backend="svg_ear", options=OPTIONS), make_inputs)

    ops.reset_centroid_caches()
    torch._dynamo.reset()
    counters.clear()
    regional, regional_rec = _run(compile_repeated_blocks(make_model(), OPTIONS), make_inputs)

    graphs = {"wan": 1, "hunyuan": 4}[family]  # hunyuan: dual block, single block, refiner, patch embedding
    assert counters["stats"]["unique_graphs"] == graphs and not counters["graph_break"]
    table = lambda rec: [(r.layer, r.step, r.dense) for r in rec.records]  # noqa: E731
    assert table(regional_rec) == table(whole_rec)
    assert sorted({r.layer for r in regional_rec.records}) == list(range(num_layers))
    for r in regional_rec.records:
        assert r.dense == (r.layer == 0 or r.step < 4), r  # layer 0 and the two steps above the cut run exact
    for got, expected in zip(regional, whole, strict=True):
        assert float((got - expected).norm() / expected.norm()) < 1e-4
    ops.reset_centroid_caches()


def test_timestep_value_is_the_max_and_follows_new_and_modified_tensors():
    from svg_ear_compile.runtime import timestep_value

    t = torch.tensor([950.0, 940.0])
    assert timestep_value(t) == 950.0
    assert timestep_value(t) == 950.0  # same tensor, same version: the cached read
    t.fill_(300.0)  # in place: a new version, read again
    assert timestep_value(t) == 300.0
    del t
    assert timestep_value(torch.tensor([500.0])) == 500.0  # a new tensor is never confused with a dead one
    assert timestep_value(torch.tensor([501.0])) == 501.0
    assert timestep_value(42) == 42.0
    with torch.inference_mode():  # no version counter to trust: read every time
        t = torch.tensor([800.0])
        assert timestep_value(t) == 800.0
        t.fill_(100.0)
        assert timestep_value(t) == 100.0


def test_an_inference_tensor_published_by_the_hook_is_read_once_per_forward():
    """Under ``inference_mode`` the timestep a ``track_timestep`` hook publishes is read once per forward
    (one device sync, not one per layer): a change inside the forward is not seen, the next forward
    reads it again."""
    from svg_ear_compile.runtime import timestep_value

    class Model(torch.nn.Module):
        def forward(self, x, timestep):
            first = timestep_value(runtime.current_timestep())
            timestep.fill_(first - 1.0)  # the forward's layers all see the value read first
            return torch.tensor([first, timestep_value(runtime.current_timestep())])

    model = Model()
    handle = runtime.track_timestep(model)
    with torch.inference_mode():
        buffer = torch.tensor([900.0])  # one buffer for every step, filled in place between forwards
        assert model(None, buffer).tolist() == [900.0, 900.0]
        buffer.fill_(400.0)
        assert model(None, buffer).tolist() == [400.0, 400.0]
    handle.remove()


@pytest.mark.parametrize("regional", [False, True])
def test_a_second_video_without_reset_matches_one_after_reset(regional):
    """Two denoising loops in a row through one compiled model, with no ``reset_centroid_caches()``
    between them: the second video's first calls start cold (the timestep rose) instead of reusing the
    first video's kept routing, so its outputs equal those it gives after a reset (the oracle)."""
    options = {"min_seq_len": 0, "budget": 0.25, "num_q_clusters": 8, "num_k_clusters": 16, "refresh_every": 4}
    ops.reset_centroid_caches()
    torch._dynamo.reset()
    model = tiny_wan(num_layers=2)
    compiled = compile_repeated_blocks(model, options) if regional else torch.compile(
        model, backend="svg_ear", options=options)

    def video(seed: int, steps: tuple[float, ...]) -> tuple[list[torch.Tensor], list]:
        with torch.no_grad(), record() as rec:
            outputs = [compiled(**wan_inputs(timestep=t, seed=seed + index))[0] for index, t in enumerate(steps)]
        return outputs, rec.records

    video(0, STEPS[:3])  # ends mid-way through its kept routings (3 of 4 calls served)
    second, records = video(10, STEPS)
    ops.reset_centroid_caches()
    expected, _ = video(10, STEPS)
    for got, want in zip(second, expected, strict=True):
        assert torch.equal(got, want)
    assert [(r.step, r.cold, r.reused) for r in records if r.layer == 1] == [(0, True, False), (1, False, True),
                                                                             (2, False, True), (3, False, True)]
    ops.reset_centroid_caches()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="only a CUDA timestep is copied ahead")
def test_a_published_cuda_timestep_is_read_without_a_device_sync():
    """The hook starts the published timestep's copy to the host; the op's read then waits on that copy's
    event alone, never on a synchronising ``.item()`` (which the sync debug mode turns into an error)."""
    from svg_ear_compile.runtime import timestep_value

    class Model(torch.nn.Module):
        def forward(self, x, timestep):
            return timestep_value(runtime.current_timestep())

    model = Model()
    handle = runtime.track_timestep(model)
    try:
        for value in (900.0, 400.0):
            timestep = torch.tensor([value - 1.0, value], device="cuda")
            torch.cuda.set_sync_debug_mode("error")
            try:
                read = model(None, timestep)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            assert read == value
    finally:
        handle.remove()
