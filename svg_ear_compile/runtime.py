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
_prefetched: dict[str, Any] = {}  # a CUDA timestep's max on its way to the host (see prefetch_timestep)


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
    tensors keep no version counter: the one a :func:`track_timestep` hook published for the forward in
    progress is read once per forward (the hook forgets the read when the next forward starts), any
    other is read every time. A tensor :func:`prefetch_timestep` sent ahead is read from that copy.
    """
    if not isinstance(timestep, torch.Tensor):
        return float(timestep)
    cached = _last_timestep_read.get("tensor")
    version = _read_version(timestep)
    if cached is not None and cached() is timestep and _last_timestep_read["version"] == version:
        return _last_timestep_read["value"]
    prefetched = _prefetched.get("tensor")
    if prefetched is not None and prefetched() is timestep:
        _prefetched["ready"].synchronize()
        value = float(_prefetched["host"])
    else:
        value = _read_now(timestep)
    _last_timestep_read.update(tensor=weakref.ref(timestep), version=version, value=value)
    return value


def _read_now(timestep: torch.Tensor) -> float:
    """``max(timestep)``, waiting for everything queued before it on the device."""
    return float(timestep.max())


def prefetch_timestep(timestep: torch.Tensor | None) -> None:
    """Start copying a CUDA timestep's max to the host, without waiting, for :func:`timestep_value`.

    Called where a forward starts (the :func:`track_timestep` hook, the ``svg_ear`` backend's whole-model
    graph): the op's first read then waits for that copy only, which sits at the start of the forward in
    the stream, not for the layer's work queued after it, so the GPU keeps running meanwhile.
    """
    _prefetched.clear()
    if timestep is None or timestep.device.type != "cuda":
        return
    host = torch.empty((), dtype=timestep.dtype, pin_memory=True)
    host.copy_(timestep.max(), non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    _prefetched.update(tensor=weakref.ref(timestep), host=host, ready=ready)


def _read_version(timestep: torch.Tensor) -> object:
    """What a cached read of ``timestep`` must still match: its in-place version; for an inference tensor
    (no version counter) the forward that published it, else a fresh object that matches nothing."""
    if not timestep.is_inference():
        return timestep._version
    return "published this forward" if timestep is _timestep.get() else object()


def track_timestep(model: torch.nn.Module) -> torch.utils.hooks.RemovableHandle:
    """Publish ``model``'s ``timestep`` argument before each forward (for warm-up inside compiled blocks).

    ``model`` itself must run eagerly (its blocks may be compiled): a hook inside a compiled graph
    would be traced, not run. A CUDA timestep's value starts on its way to the host here, so that the
    op's read of it (warm-up, a new video) does not wait for the work queued after it.
    """
    signature = inspect.signature(model.forward)
    if "timestep" not in signature.parameters:
        raise ValueError(f"track_timestep: {type(model).__name__}.forward has no 'timestep' argument")

    def publish(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        timestep = signature.bind_partial(*args, **kwargs).arguments.get("timestep")
        published = torch.as_tensor(timestep) if timestep is not None else None
        _timestep.set(published)
        if published is not None and published.is_inference():
            _last_timestep_read.clear()  # no version counter to tell: a new forward reads it afresh
        prefetch_timestep(published)

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
