"""What the op learns at run time that a graph shared by many blocks cannot carry: layer index and timestep.

diffusers' ``compile_repeated_blocks()`` compiles one graph that every transformer block runs, so the
layer index cannot be a constant in it, and the block never sees the model's ``timestep`` (only its
embedding). The rewrite passes the op one of the attention's own parameters (``layer_key``); its
storage address names the layer:

    layer_of(key) = registered block index of the module owning ``key``
                    (or, for a key never registered, the order of first appearance)

:func:`compile_repeated_blocks` registers every block of the model's layer stacks in model order and
installs a forward pre-hook that publishes the model's timestep for the dense warm-up.

    >>> import torch
    >>> blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    >>> register_blocks(blocks)
    >>> layer_of(blocks[2].weight)
    2
    >>> forget_layers()
"""

from __future__ import annotations

import contextvars
import inspect
import weakref
from collections.abc import Iterable
from typing import Any

import torch

_layer_by_storage: dict[int, int] = {}
_timestep: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("svg_ear_timestep", default=None)
_last_timestep_read: dict[str, Any] = {}  # "tensor": weak reference, "version": its _version, "value": the float


def _storage_key(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def register_blocks(blocks: Iterable[torch.nn.Module], first_index: int = 0) -> None:
    """Every parameter of ``blocks[i]`` names layer ``first_index + i``."""
    for index, block in enumerate(blocks, start=first_index):
        for parameter in block.parameters():
            _layer_by_storage[_storage_key(parameter)] = index


def layer_of(key: torch.Tensor) -> int:
    """The layer a parameter belongs to: registered, else the next index in order of first appearance."""
    storage = _storage_key(key)
    if storage not in _layer_by_storage:
        _layer_by_storage[storage] = 1 + max(_layer_by_storage.values(), default=-1)
    return _layer_by_storage[storage]


def forget_layers() -> None:
    """Drop every layer registration (after moving a model to another device, or loading another one)."""
    _layer_by_storage.clear()


def current_timestep() -> torch.Tensor | None:
    """The timestep of the model forward in progress, when a hook from :func:`track_timestep` publishes it."""
    return _timestep.get()


def timestep_value(timestep: torch.Tensor | float) -> float:
    """``max(timestep)`` as a float, read from the device once per timestep tensor instead of once per layer.

    Every attention call of one forward receives the same timestep tensor: the first read waits for the
    device, the next ones reuse it. Reuse needs the very same tensor object (a live weak reference) at
    the same in-place version, so a new or modified timestep is always read again. Inference-mode
    tensors keep no version counter: they are read every time.
    """
    if not isinstance(timestep, torch.Tensor):
        return float(timestep)
    if timestep.is_inference():
        return float(timestep.max())
    cached = _last_timestep_read.get("tensor")
    if cached is not None and cached() is timestep and _last_timestep_read["version"] == timestep._version:
        return _last_timestep_read["value"]
    value = float(timestep.max())
    _last_timestep_read.update(tensor=weakref.ref(timestep), version=timestep._version, value=value)
    return value


def track_timestep(model: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
    """Publish ``model``'s ``timestep`` argument before each forward (for warm-up inside compiled blocks).

    ``model`` itself must run eagerly (its blocks may be compiled): a hook inside a compiled graph
    would be traced, not run.
    """
    signature = inspect.signature(model.forward)
    if "timestep" not in signature.parameters:
        raise ValueError(f"track_timestep: {type(model).__name__}.forward has no 'timestep' argument")

    def publish(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        timestep = signature.bind_partial(*args, **kwargs).arguments.get("timestep")
        _timestep.set(torch.as_tensor(timestep) if timestep is not None else None)

    return model.register_forward_pre_hook(publish, with_kwargs=True)


def layer_stacks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated transformer blocks that sit in layer stacks (``nn.ModuleList``), in model order.

    ``model._repeated_blocks`` (diffusers) names the block classes; stand-alone repeated modules
    (a patch embedding, a text refiner) are not layers.
    """
    names = set(getattr(model, "_repeated_blocks", None) or ())
    return [block for module in model.modules() if isinstance(module, torch.nn.ModuleList)
            for block in module if type(block).__name__ in names]


def compile_repeated_blocks(model: torch.nn.Module, options: dict[str, Any] | None = None) -> torch.nn.Module:
    """Regional compilation (diffusers' ``compile_repeated_blocks``) with ``backend="svg_ear"`` on the layers.

    Blocks of the layer stacks compile with ``svg_ear`` and are registered as their layer index;
    other repeated modules (a patch embedding, a text refiner) compile with Inductor alone. The
    model's timestep is published for the dense warm-up. Per-layer settings, centroid caches and
    warm-up then behave as with a whole-model compile. Returns ``model`` (compiled in place).

    Example::

        pipe.transformer = svg_ear_compile.compile_repeated_blocks(pipe.transformer, {"budget": 0.2})
    """
    blocks = layer_stacks(model)
    if not blocks:
        raise ValueError(f"compile_repeated_blocks: {type(model).__name__} has no repeated blocks in a layer stack "
                         "(diffusers' _repeated_blocks)")
    register_blocks(blocks)
    if "timestep" in inspect.signature(model.forward).parameters:
        track_timestep(model)
    layers = {id(block) for block in blocks}
    names = set(model._repeated_blocks)
    for module in model.modules():
        if id(module) in layers:
            module.compile(backend="svg_ear", options=dict(options or {}))
        elif type(module).__name__ in names:
            module.compile()
    return model
