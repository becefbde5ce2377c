# The tuner's denoising loop with classifier-free guidance: against the closed form of a model whose velocity
# ignores the latents, batched against two calls on a real (tiny) Wan, and bad guidance input as clear errors.
import pytest
import torch

from svg_ear_compile.tuner._model import Guidance, TunerError, denoise

from .._models import tiny_wan, wan_inputs


class PromptVelocity(torch.nn.Module):
    """``v`` = the mean of each batch row's prompt, everywhere: the Euler steps sum to ``x_final = x_0 − v``
    (the step sizes add up to −1), so a guided run ends at ``x_0 − (c_u + w·(c_c − c_u))``. It logs its
    calls' batch sizes and prompt means."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, hidden_states, timestep, encoder_hidden_states, return_dict=False):
        prompt = encoder_hidden_states.mean(dim=(1, 2))
        self.calls.append(prompt.tolist())
        assert timestep.shape == (hidden_states.shape[0],)
        return (prompt.view(-1, 1, 1, 1, 1).expand_as(hidden_states).clone(),)


def _inputs(**extra):
    gen = torch.Generator().manual_seed(0)
    return {"hidden_states": torch.randn(1, 2, 2, 3, 3, generator=gen), "timestep": torch.tensor([999.0]),
            "encoder_hidden_states": torch.full((1, 4, 8), 0.75), "return_dict": False, **extra}


@pytest.mark.parametrize("batched", [False, True])
def test_guided_run_ends_at_the_closed_form(batched):
    model, inputs, scale, steps = PromptVelocity(), _inputs(), 5.0, 4
    final = denoise(model, inputs, steps, guidance=Guidance(scale, batched=batched))
    # the default unconditional prompt is zero: v = 0 + w·(0.75 − 0)
    torch.testing.assert_close(final, inputs["hidden_states"] - scale * 0.75, rtol=0, atol=1e-5)
    expected_calls = [[0.75, 0.0]] * steps if batched else [[0.75], [0.0]] * steps  # conditional first
    assert model.calls == expected_calls


def test_negative_inputs_are_the_unconditional_ones_and_never_reach_the_model():
    model = PromptVelocity()
    inputs = _inputs(negative_encoder_hidden_states=torch.full((1, 4, 8), -0.5))
    final = denoise(model, inputs, 3, guidance=Guidance(2.0))
    torch.testing.assert_close(final, inputs["hidden_states"] - (-0.5 + 2.0 * (0.75 + 0.5)), rtol=0, atol=1e-5)
    unguided = PromptVelocity()
    torch.testing.assert_close(denoise(unguided, inputs, 3), inputs["hidden_states"] - 0.75, rtol=0, atol=1e-5)
    assert unguided.calls == [[0.75]] * 3  # scale 1: no guidance, and the negative input is dropped


@torch.no_grad()
def test_batched_guidance_equals_two_calls_on_a_wan_transformer():
    model, inputs = tiny_wan(num_layers=2), wan_inputs(timestep=999.0)
    two = denoise(model, inputs, 3, guidance=Guidance(4.0))
    one = denoise(model, inputs, 3, guidance=Guidance(4.0, batched=True))
    torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-5)
    assert (two - denoise(model, inputs, 3)).abs().max() > 1e-2  # guidance changed the result


@pytest.mark.parametrize("scale", [0.0, -1.0, float("nan"), float("inf")])
def test_a_guidance_scale_must_be_a_positive_number(scale):
    with pytest.raises(TunerError, match="expected a number > 0"):
        Guidance(scale)


def test_unconditional_inputs_that_cannot_be_formed_are_clear_errors():
    no_prompt = {k: v for k, v in _inputs().items() if k != "encoder_hidden_states"}
    with pytest.raises(TunerError, match="no 'encoder_hidden_states' to zero"):
        Guidance(5.0).split(no_prompt)
    with pytest.raises(TunerError, match=r"negative input\(s\) \['negative_prompt_embeds'\] replace no model input"):
        Guidance(5.0).split(_inputs(negative_prompt_embeds=torch.zeros(1, 4, 8)))
