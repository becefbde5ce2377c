# Calibration capture: one sample per layer and captured step, taken from the step's conditional call when guidance
# adds an unconditional one as a second call, and from the whole batch of two with batched guidance (what the op
# sees); the dense finals are the guided run's.
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
            assert samples[0][name].shape[0] == (2 if batched else 1)
            torch.testing.assert_close(samples[0][name][:1], plain[0][name], rtol=1e-5, atol=1e-5)
        assert (samples[1]["q"] - plain[1]["q"]).abs().max() > 1e-4  # later steps follow the guided latents
    expected = denoise(tune_model.model, tune_model.inputs_for(3), 3, guidance=guidance)
    torch.testing.assert_close(guided.dense_final(3), expected, rtol=1e-4, atol=1e-4)


def test_batched_guidance_captures_the_unconditional_row_too(tmp_path):
    tune_model = _tune_model()
    kwargs = {"seeds": [3], "steps": 2, "capture_steps": 1, "max_heads": 2}
    guided = capture(tune_model, tmp_path / "guided", guidance=Guidance(5.0, batched=True), **kwargs)
    zero_prompt = {"encoder_hidden_states": torch.zeros_like(tune_model.example_inputs["encoder_hidden_states"])}
    unconditional = capture(tune_model, tmp_path / "uncond", conditions=[zero_prompt], **kwargs)
    for layer in guided.layers:
        both, alone = guided.samples(layer)[0], unconditional.samples(layer)[0]  # step 0: the same noise
        for name in ("q", "k", "v"):
            torch.testing.assert_close(both[name][1:], alone[name], rtol=1e-5, atol=1e-5)
    last = guided.samples(guided.layers[-1])[0]  # the prompt enters through layer 0's cross-attention
    assert (last["v"][0] - last["v"][1]).abs().max() > 1e-3
