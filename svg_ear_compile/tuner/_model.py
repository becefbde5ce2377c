"""The model being tuned: loading it, its calibration inputs, and the denoising loop the checks run.

``--model`` is a diffusers model id or local directory (a Wan transformer, inputs built from
``--resolution``), or ``module:function`` returning ``(model, example_inputs)`` (tests, fixtures, any
other DiT). The loop is flow-matching Euler over ``steps`` (x ← x + (σ_next − σ)·v, timestep = 1000σ):
enough to compare a sparse run with a dense one from the same noise. With classifier-free guidance
(:class:`Guidance`) each step also runs the unconditional inputs and takes
``v = v_uncond + w·(v_cond − v_uncond)``, as a serving pipeline does; the sparse op then sees what it
sees in production (two calls per step, or one batch of two).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

ALIASES = {
    "wan2.1-t2v-1.3b": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
    "wan2.1-t2v-14b": "Wan-AI/Wan2.1-T2V-14B-Diffusers",
}


class TunerError(Exception):
    """A problem with what the user asked for; the CLI prints it as one line and exits 2."""


NEGATIVE = "negative_"


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance of the denoising loop: ``v = v_uncond + scale·(v_cond − v_uncond)``.

    ``scale == 1`` is no guidance (one call per step). The unconditional inputs are the conditional
    ones with every ``negative_<name>`` input in place of ``<name>`` (a condition may carry, say,
    ``negative_encoder_hidden_states``); without any, ``encoder_hidden_states`` is zeroed (the
    fixture's unconditional prompt). ``batched``: both in one call of batch 2 (as the fixture's
    sampler does by default), else two calls per step, conditional first (as diffusers' ``WanPipeline``
    does); ``SvgEarConfig.refresh_every`` counts calls, so it matters which.

        >>> Guidance(5.0).calls_per_step, Guidance(5.0, batched=True).calls_per_step, Guidance().calls_per_step
        (2, 1, 1)
        >>> Guidance(5.0).batch, Guidance(5.0, batched=True).batch, Guidance(batched=True).batch
        (1, 2, 1)
    """

    scale: float = 1.0
    batched: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise TunerError(f"--guidance {self.scale!r}: expected a number > 0 (1: no guidance)")

    @property
    def active(self) -> bool:
        return self.scale != 1.0

    @property
    def calls_per_step(self) -> int:
        return 2 if self.active and not self.batched else 1

    @property
    def batch(self) -> int:
        """Videos per model call: the prompt and the unconditional inputs with batched guidance, else one."""
        return 2 if self.active and self.batched else 1

    def split(self, inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The conditional inputs and the unconditional ones (None without guidance)."""
        conditional = {k: v for k, v in inputs.items() if not k.startswith(NEGATIVE)}
        if not self.active:
            return conditional, None
        negatives = {k[len(NEGATIVE):]: v for k, v in inputs.items() if k.startswith(NEGATIVE)}
        unknown = sorted(set(negatives) - set(conditional))
        if unknown:
            raise TunerError(f"--guidance: negative input(s) {[NEGATIVE + k for k in unknown]} replace no model "
                             f"input (the inputs are {sorted(conditional)})")
        if not negatives:
            prompt = conditional.get("encoder_hidden_states")
            if not isinstance(prompt, torch.Tensor):
                raise TunerError("--guidance needs the unconditional inputs: the model's inputs have no "
                                 "'encoder_hidden_states' to zero; give 'negative_<input>' entries in --conditions")
            negatives = {"encoder_hidden_states": torch.zeros_like(prompt)}
        return conditional, {**conditional, **negatives}


@dataclass
class TuneModel:
    """A model and the inputs of one forward call (``hidden_states`` are the latents; ``timestep`` is set
    by the loop)."""

    model: torch.nn.Module
    example_inputs: dict[str, Any]
    name: str

    @property
    def class_name(self) -> str:
        return type(self.model).__name__

    def config_hash(self) -> str:
        """Hash of the diffusers config, public keys (or, without one, of the parameter names and shapes)."""
        config = getattr(self.model, "config", None)
        if config is not None:
            # private keys ("_use_default_values", "_name_or_path") vary between runs and checkouts
            text = json.dumps({k: v for k, v in dict(config).items() if not k.startswith("_")}, sort_keys=True,
                              default=str)
        else:
            text = json.dumps([(n, list(p.shape)) for n, p in self.model.named_parameters()])
        return hashlib.sha256(f"{self.class_name}:{text}".encode()).hexdigest()[:16]

    def inputs_for(self, seed: int, condition: dict[str, Any] | None = None) -> dict[str, Any]:
        """The example inputs with fresh latent noise from ``seed`` and ``condition``'s entries replacing theirs."""
        inputs = dict(self.example_inputs)
        latents = inputs["hidden_states"]
        generator = torch.Generator().manual_seed(seed)
        inputs["hidden_states"] = torch.randn(latents.shape, generator=generator).to(latents)
        for key, value in (condition or {}).items():
            inputs[key] = value.to(latents.device) if isinstance(value, torch.Tensor) else value
        return inputs


def load_model(spec: str, *, resolution: str | None = None, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> TuneModel:
    """Load ``spec`` (see the module docstring) onto ``device``; every failure is one :class:`TunerError`."""
    if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", spec) and not os.path.exists(spec):
        model, inputs = _from_function(spec)
    else:
        model, inputs = _from_diffusers(ALIASES.get(spec.lower(), spec), resolution, dtype)
    if any(p.dtype != dtype for p in model.parameters() if p.is_floating_point()):
        model = model.to(dtype=dtype)
    model = model.to(device=device).eval()
    inputs = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
              if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    inputs = timestep_dtype_fix(inputs)
    if "hidden_states" not in inputs or "timestep" not in inputs:
        raise TunerError(f"--model {spec!r}: its example inputs need 'hidden_states' and 'timestep' "
                         f"(got {sorted(inputs)})")
    return TuneModel(model, inputs, spec)


def _from_function(spec: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    module_name, function_name = spec.split(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise TunerError(f"--model {spec!r}: cannot import {function_name} from {module_name} ({error})") from None
    result = function()
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module)
            and isinstance(result[1], dict)):
        raise TunerError(f"--model {spec!r}: {function_name}() must return (model, example_inputs dict)")
    return result


def _from_diffusers(spec: str, resolution: str | None, dtype: torch.dtype) -> tuple[torch.nn.Module, dict]:
    looks_local = spec.startswith((".", "/", "~")) or spec.count("/") > 1
    if looks_local and not os.path.isdir(os.path.expanduser(spec)):
        raise TunerError(f"--model {spec!r}: no such directory (expected a diffusers model id, a local model "
                         "directory, or module:function)")
    if resolution is None:
        raise TunerError(f"--model {spec!r}: --resolution HxWxFRAMES is needed to build its inputs")
    try:
        from diffusers import AutoModel
    except ImportError as error:
        raise TunerError(f"--model {spec!r}: loading diffusers models needs diffusers ({error})") from None
    errors = []
    for subfolder in ("transformer", None):
        try:
            model = AutoModel.from_pretrained(os.path.expanduser(spec), subfolder=subfolder, torch_dtype=dtype)
            return model, _wan_inputs(model, spec, resolution)
        except TunerError:
            raise
        except Exception as error:  # noqa: BLE001 (diffusers/hub raise many kinds; report the first line)
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    raise TunerError(f"--model {spec!r}: cannot be loaded with diffusers ({errors[-1]})")


def _wan_inputs(model: torch.nn.Module, spec: str, resolution: str) -> dict[str, Any]:
    """Inputs for a Wan transformer at ``HxWxFRAMES`` (VAE: 4x temporal, 8x spatial compression)."""
    match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", resolution)
    if match is None:
        raise TunerError(f"--resolution {resolution!r}: expected HEIGHTxWIDTHxFRAMES, e.g. 480x832x81")
    config = model.config
    if "text_dim" not in config or "in_channels" not in config:
        raise TunerError(f"--model {spec!r}: {type(model).__name__} is not a Wan transformer; pass "
                         "module:function returning (model, example_inputs) for other models")
    height, width, frames = (int(g) for g in match.groups())
    latents = torch.randn(1, config.in_channels, (frames - 1) // 4 + 1, height // 8, width // 8)
    return {"hidden_states": latents, "timestep": torch.tensor([999.0]),
            "encoder_hidden_states": torch.randn(1, 512, config.text_dim), "return_dict": False}


def denoise(forward: Callable[..., Any], inputs: dict[str, Any], steps: int,
            on_step: Callable[[int, float], None] | None = None, guidance: Guidance | None = None) -> torch.Tensor:
    """Flow-matching Euler from ``inputs["hidden_states"]`` (the noise) over ``steps``; the final latents.

    ``on_step(step, timestep)`` runs before each step's model calls (calibration capture listens to it);
    ``guidance`` adds the unconditional calls (see :class:`Guidance`).
    """
    guidance = guidance or Guidance()
    conditional, unconditional = guidance.split(inputs)
    batched = guidance.batch > 1
    if batched:
        conditional, unconditional = _batched(conditional, unconditional), None
    latents = inputs["hidden_states"]
    sigmas = torch.linspace(1.0, 0.0, steps + 1).tolist()
    for step in range(steps):
        timestep = 1000.0 * sigmas[step]
        if on_step is not None:
            on_step(step, timestep)
        if batched:
            both = _velocity(forward, conditional, torch.cat([latents, latents]), timestep)
            velocity, uncond_velocity = both.chunk(2)
        else:
            velocity = _velocity(forward, conditional, latents, timestep)
            if unconditional is not None:
                uncond_velocity = _velocity(forward, unconditional, latents, timestep)
        if guidance.active:
            velocity = uncond_velocity.float() + guidance.scale * (velocity.float() - uncond_velocity.float())
        latents = latents + (sigmas[step + 1] - sigmas[step]) * velocity.to(latents.dtype)
    return latents


def _velocity(forward: Callable[..., Any], inputs: dict[str, Any], latents: torch.Tensor,
              timestep: float) -> torch.Tensor:
    """The model's output at ``latents`` and ``timestep`` (one value for the whole batch)."""
    call = {**inputs, "hidden_states": latents,
            "timestep": torch.full((latents.shape[0],), timestep, device=latents.device,
                                   dtype=inputs["timestep"].dtype)}
    with torch.no_grad():
        out = forward(**call)
    return out[0] if isinstance(out, (tuple, list)) else getattr(out, "sample", out)


def _batched(conditional: dict[str, Any], unconditional: dict[str, Any]) -> dict[str, Any]:
    """One batch of both: every tensor input with the latents' batch size, conditional rows first."""
    batch = conditional["hidden_states"].shape[0]
    return {k: torch.cat([v, unconditional[k]]) if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == batch
            else v for k, v in conditional.items()}


def timestep_dtype_fix(inputs: dict[str, Any]) -> dict[str, Any]:
    """Timesteps stay float32 even in a bf16 run (diffusers embeds them in float32)."""
    timestep = inputs.get("timestep")
    if isinstance(timestep, torch.Tensor) and timestep.is_floating_point():
        inputs = {**inputs, "timestep": timestep.float()}
    return inputs
