"""Calibration capture: one dense denoising run records each rewritten layer's Q/K/V at a few steps.

The model runs under Dynamo with a backend that finds the attention calls exactly as ``svg_ear`` does
(:func:`svg_ear_compile.backend.plan`, so layer indices agree with the compiled model) and, in front of
each one it would rewrite, inserts a call that hands Q/K/V to the capture. Memory stays bounded: only
``max_heads`` evenly spaced heads of batch element 0 of a step's first call (with guidance: the
conditional prompt; with batched guidance both elements, the batch the op sees), only at
``capture_steps`` evenly spaced steps, each sample written to its own file as soon as it is seen. The
dense final latents of each seed are kept too (the end-to-end check compares against them). A manifest
written last marks a complete capture; a rerun with the same settings reuses it.
"""

from __future__ import annotations

import contextvars
import io
import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..backend import plan
from ..config import SvgEarConfig
from ..profiles import ModelSignature, graph_signature, write_atomic
from ._model import Guidance, TuneModel, TunerError, denoise

MANIFEST = "calibration.json"
_sink: contextvars.ContextVar[Callable[..., None] | None] = contextvars.ContextVar("svg_ear_capture", default=None)


def _capture_qkv(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Inserted before each rewritable attention call; passes its inputs to the active capture."""
    sink = _sink.get()
    if sink is not None:
        sink(layer, q, k, v)


def evenly_spaced(count: int, total: int) -> list[int]:
    """``count`` indices spread over ``range(total)``, first and last included: ``evenly_spaced(3, 10)`` → [0, 4, 9]."""
    count = max(1, min(count, total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def capturing_forward(tune_model: TuneModel, min_seq_len: int) -> tuple[Callable[..., Any], list[ModelSignature]]:
    """The model under Dynamo with capture calls before every attention ``svg_ear`` would rewrite, and the
    signatures of its graphs (filled on the first call)."""
    signatures: list[ModelSignature] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: list) -> Callable[..., Any]:
        targets, _ = plan(gm, SvgEarConfig(min_seq_len=min_seq_len))
        if any(t.video_tokens is not None for t in targets):
            raise TunerError("the tuner handles video self-attention; this model has joint video+text attention")
        signature = graph_signature(gm, min_seq_len)
        if signature is not None:
            signatures.append(signature)
        for target in targets:
            args = target.call.arguments
            with gm.graph.inserting_before(target.call.node):
                gm.graph.call_function(_capture_qkv, (target.layer, args["query"], args["key"], args["value"]))
        gm.recompile()
        return gm.forward

    torch._dynamo.reset()
    return torch.compile(tune_model.model, backend=backend, fullgraph=False), signatures


@dataclass
class CalibrationSet:
    """A capture on disk: per layer, samples ``{"q", "k", "v"}`` ``(B, h, S, D)`` in (seed, step) order
    (``B`` = 2 with batched guidance, else 1)."""

    directory: pathlib.Path
    manifest: dict[str, Any]

    @property
    def layers(self) -> list[int]:
        return sorted(int(layer) for layer in self.manifest["samples"])

    @property
    def signature(self) -> ModelSignature:
        return ModelSignature(**self.manifest["signature"])

    @property
    def full_heads(self) -> int:
        return int(self.manifest["signature"]["num_heads"])

    def samples(self, layer: int) -> list[dict[str, Any]]:
        """Layer ``layer``'s samples, loaded: ``q``, ``k``, ``v``, ``seed``, ``step``, ``timestep``."""
        out = []
        for entry in self.manifest["samples"][str(layer)]:
            tensors = torch.load(self.directory / entry["file"], weights_only=True)
            out.append({**entry, **tensors})
        return out

    def dense_final(self, seed: int) -> torch.Tensor:
        return torch.load(self.directory / f"dense_seed{seed}.pt", weights_only=True)

    @classmethod
    def load(cls, directory: str | pathlib.Path, settings: dict[str, Any] | None = None) -> CalibrationSet | None:
        """The complete capture in ``directory`` (made with ``settings``, when given), else None."""
        directory = pathlib.Path(directory)
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if settings is not None and manifest.get("settings") != settings:
            return None
        return cls(directory, manifest)


def _save_tensors(path: pathlib.Path, tensors: dict[str, torch.Tensor] | torch.Tensor) -> None:
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    write_atomic(path, buffer.getvalue())


def capture(
    tune_model: TuneModel,
    directory: str | pathlib.Path,
    *,
    seeds: list[int],
    steps: int,
    capture_steps: int = 2,
    max_heads: int = 2,
    min_seq_len: int = 0,
    conditions: list[dict[str, Any]] | None = None,
    guidance: Guidance | None = None,
    settings: dict[str, Any] | None = None,
) -> CalibrationSet:
    """One dense run per seed over ``steps`` (with ``guidance``, as the checks run); returns the
    :class:`CalibrationSet` written to ``directory``.

    Reuses a complete capture there made with the same ``settings`` (a dict the caller builds from
    everything that changes the capture).
    """
    directory = pathlib.Path(directory)
    settings = settings if settings is not None else {}
    found = CalibrationSet.load(directory, settings)
    if found is not None:
        return found
    forward, signatures = capturing_forward(tune_model, min_seq_len)
    chosen_steps = evenly_spaced(capture_steps, steps)
    rows = guidance.batch if guidance is not None else 1
    samples: dict[str, list[dict[str, Any]]] = {}
    current: dict[str, Any] = {}

    def sink(layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        if current["step"] not in chosen_steps or current["call"] != 0:
            return
        heads = evenly_spaced(max_heads, q.shape[1])
        name = f"L{layer:03d}_seed{current['seed']}_step{current['step']:03d}.pt"
        _save_tensors(directory / name, {t: x[:rows, heads].detach().to("cpu").clone()
                                         for t, x in (("q", q), ("k", k), ("v", v))})
        entries = samples.setdefault(str(layer), [])
        if any(e["file"] == name for e in entries):
            raise TunerError(f"layer {layer} was seen twice in one step: the model compiled to several graphs "
                             "(graph breaks); the tuner needs one whole-model graph")
        entries.append({"file": name, "seed": current["seed"], "step": current["step"],
                        "timestep": current["timestep"], "heads": heads})

    def on_step(step: int, timestep: float) -> None:
        current.update(step=step, timestep=timestep, call=-1)

    def counted(**inputs: Any) -> Any:  # numbers a step's calls: two per step with unbatched guidance
        current["call"] += 1
        return forward(**inputs)

    token = _sink.set(sink)
    try:
        for index, seed in enumerate(seeds):
            current["seed"] = seed
            condition = conditions[index % len(conditions)] if conditions else None
            final = denoise(counted, tune_model.inputs_for(seed, condition), steps, on_step, guidance)
            _save_tensors(directory / f"dense_seed{seed}.pt", final.detach().to("cpu"))
    finally:
        _sink.reset(token)
    if not samples or not signatures:
        raise TunerError(f"{tune_model.name}: no attention call that svg_ear would rewrite was found "
                         f"(min_seq_len={min_seq_len}); nothing to tune")
    signature = signatures[0]
    signature = ModelSignature(class_name=tune_model.class_name, config_hash=tune_model.config_hash(),
                               num_layers=len(samples), num_heads=signature.num_heads, head_dim=signature.head_dim,
                               seq_len=signature.seq_len)
    manifest = {"settings": settings, "seeds": list(seeds), "steps": steps, "captured_steps": chosen_steps,
                "signature": {k: getattr(signature, k) for k in signature.__dataclass_fields__},
                "samples": samples}
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1))
    return CalibrationSet(directory, manifest)
