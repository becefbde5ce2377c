# Calibration capture: one sample per layer and captured step, taken from the step's conditional call when guidance
# adds an unconditional one (two calls, or one batch of two), and the dense finals of the guided run.
import pytest
import torch

pytest.importorskip("diffusers")

from svg_ear_compile.tuner._calibration import capture  # noqa: E402
from svg_ear_compile.tuner._model import Guidance, TuneModel, denoise  # noqa: E402

from .._models import tiny_wan, wan_inputs  # noqa: E402


def _tune_model() -> TuneModel:
    return TuneModel(tiny_wan(num_layers=2), wan_inputs(timestep=999.0), "tiny")


@pytest.mark.parametrize("batched", [False, True])
def test_guided_capture_keeps_the_conditional_call_of_each_step(tmp_path, batched):
    tune_model, guidance = _tune_model(), Guidance(5.0, batched=batched)
    kwargs = {"seeds": [3], "steps": 3, "capture_steps": 2, "max_heads": 2}
    unguided = capture(tune_model, tmp_path / "plain", **kwargs)
    guided = capture(tune_model, tmp_path / "guided", guidance=guidance, **kwargs)
    assert guided.layers == unguided.layers == [0, 1]
    for layer in guided.layers:
        samples, plain = guided.samples(layer), unguided.samples(layer)
        assert [s["step"] for s in samples] == [s["step"] for s in plain] == [0, 2]
        # step 0 sees the same latents either way: its conditional call's Q/K/V are the unguided run's
        for name in ("q", "k", "v"):
            assert samples[0][name].shape[0] == 1
            torch.testing.assert_close(samples[0][name], plain[0][name], rtol=1e-5, atol=1e-5)
        assert (samples[1]["q"] - plain[1]["q"]).abs().max() > 1e-4  # later steps follow the guided latents
    expected = denoise(tune_model.model, tune_model.inputs_for(3), 3, guidance=guidance)
    torch.testing.assert_close(guided.dense_final(3), expected, rtol=1e-4, atol=1e-4)
