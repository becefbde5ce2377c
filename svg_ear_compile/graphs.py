"""CUDA-graph replay of the warm sparse pipeline: one capture per layer and input signature.

A warm call of the Triton path issues ~400 kernels, most of them tiny. On an H100 at the
Wan2.1-1.3B shape the host needs ~13 ms to issue them while the GPU runs the ones before the
attention kernel in ~5 ms, so the GPU waits for the host (``benchmarks/profile_op.py``). A graph
replays all of them with one launch.

The first warm call of a (layer, signature) runs eagerly, then captures the same step. The large
inputs (the queries, keys and values: ``in_place``) are read where they lie: a later call whose
inputs lie at the same addresses, with the same shapes and strides (a compiled model's allocator
hands every step the same buffers), replays that graph as it is. A call whose inputs moved replays a
second graph, captured on its first such call, that reads copies of them in static buffers. Small
inputs (a kept routing) are always copied in; outputs are cloned out.

Memory: every graph of a device allocates its intermediates from one shared pool. The inputs and
outputs live outside it, in buffers shared by every graph of the same signature, and each graph
keeps its layer's centroids in buffers of its own that the replay reads and updates in place. No
tensor from the pool outlives a replay, so graphs sharing the pool may replay in any order.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

Tensors = dict[str, torch.Tensor]
Centroids = tuple[torch.Tensor, torch.Tensor]
# step(inputs, centroids, out) -> (outputs, new centroids); out, when given, receives outputs["out"].
Step = Callable[[Tensors, Centroids, torch.Tensor | None], tuple[Tensors, Centroids]]


class _Buffers:
    """Tensors shared by every graph whose inputs (or outputs) have one signature; held while a graph uses them.

    A buffer keeps the strides of the tensor it is made for when that tensor is dense (``empty_like``
    preserves them): the attention call's ``(B·H, S, D)`` inputs are head-major views of token-major
    tensors, and copying one into a buffer of the same layout is one memcpy instead of a strided
    transpose (1.2 ms per tensor at Wan2.1-14B 720p; a whole forward went from 4,349 to 4,247 ms,
    ``benchmarks/RESULTS.md``). The kernels read any row stride.
    """

    def __init__(self, like: Tensors) -> None:
        with torch.inference_mode(False):  # normal tensors: later calls may copy into them outside inference mode
            self.tensors = {name: torch.empty_like(t) for name, t in like.items()}


Where = tuple  # (address, shape, strides, dtype, device) of a tensor


def _where(tensor: torch.Tensor) -> Where:
    return tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype, tensor.device


@dataclass(eq=False)
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: _Buffers  # static buffers of the inputs copied in
    outputs: _Buffers
    centroids: Centroids
    device: torch.device
    read_in_place: dict[str, Where]  # the inputs the graph reads where they lay at capture

    def reads(self, inputs: Tensors) -> bool:
        """Whether replaying reads ``inputs``: each input read in place lies where it lay at capture."""
        return all(_where(inputs[name]) == where for name, where in self.read_in_place.items())


@dataclass(eq=False)
class _Replays:
    """The graphs of one layer, config and input signature, and how often each replayed.

    ``in_place`` (captured first) reads the large inputs where they lay at its capture; ``copied``
    (captured when they first lie elsewhere) reads copies of every input.
    """

    in_place: _Captured | None = None
    copied: _Captured | None = None
    in_place_replays: int = 0
    copied_replays: int = 0


_buffers: weakref.WeakValueDictionary[tuple, _Buffers] = weakref.WeakValueDictionary()
_live_graphs: weakref.WeakSet[_Captured] = weakref.WeakSet()


def _shared_pool(device: torch.device) -> tuple[int, int] | None:
    """The memory pool of a live graph on ``device`` (None: the new graph starts a pool).

    A pool lives as long as a graph uses it, so it is taken from a live graph, never kept as a bare
    handle (a handle outliving its graphs names a freed pool).
    """
    for captured in _live_graphs:
        if captured.device == device:
            return captured.graph.pool()
    return None


def signature(inputs: Tensors) -> tuple:
    """What a graph's buffers depend on: names, shapes, dtypes and device of the inputs."""
    return tuple((name, tuple(t.shape), t.dtype, t.device) for name, t in sorted(inputs.items()))


# Query rows (B·H·S) from which a call runs eagerly under ``cuda_graph="auto"``. Measured on an H100
# (benchmarks/RESULTS.md): graphs pay at Wan2.1-1.3B 480p (393,120 rows; before them the host took 13.0 ms
# to issue a call the GPU ran in 12.5 ms) and on the fixture's long clip (294,912); at Wan2.1-14B 720p
# (3,024,000) a forward ran 4,029 ms eagerly against 4,247 ms graphed, the input copies saved.
GRAPH_MAX_ROWS = 1 << 20


def wanted(setting: bool | str, rows: int) -> bool:
    """Whether a call of ``rows`` query rows replays a graph under ``SvgEarConfig.cuda_graph=setting``."""
    return rows < GRAPH_MAX_ROWS if setting == "auto" else bool(setting)


def can_capture(device: torch.device) -> bool:
    """CUDA, and not already inside someone else's capture (then the kernels join that graph instead)."""
    return device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


def run_graphed(graphs: dict, key: tuple, step: Step, inputs: Tensors, centroids: Centroids,
                in_place: frozenset[str] = frozenset()) -> tuple[Tensors, Centroids]:
    """``step(inputs, centroids)`` through the graphs ``graphs[key]``, capturing one on a first call.

    The inputs named in ``in_place`` are read where they lie while they stay there (no copy); the
    others are copied into static buffers. Returns fresh output tensors and the new centroids (the
    graph's own buffers: pass them back as ``centroids`` next time and no copy is needed). A step
    that waits on the host (it reads a value back, say) cannot be captured: it runs eagerly from then
    on, with one warning.
    """
    replays = graphs.get(key)
    if replays is None and key in graphs:
        return step(inputs, centroids, None)
    if replays is None:
        replays = graphs[key] = _Replays()
        return _capture(graphs, key, step, inputs, centroids, in_place)
    if replays.in_place is not None and replays.in_place.reads(inputs):
        captured = replays.in_place
        replays.in_place_replays += 1
    elif replays.copied is not None:
        captured = replays.copied
        replays.copied_replays += 1
    else:
        return _capture(graphs, key, step, inputs, centroids, frozenset())
    for name, tensor in inputs.items():
        if name not in captured.read_in_place:
            captured.inputs.tensors[name].copy_(tensor)
    for buffer, current in zip(captured.centroids, centroids, strict=True):
        if current is not buffer:
            buffer.copy_(current)
    captured.graph.replay()
    return {name: buffer.clone() for name, buffer in captured.outputs.tensors.items()}, captured.centroids


def replay_counts(graph_tables: Iterable[dict]) -> dict[str, int]:
    """Replays of the graphs in ``graph_tables`` (each a layer's ``SvgEarState.graphs``): ``in_place``
    (inputs read where they lay at capture) and ``copied`` (inputs copied in)."""
    counts = {"in_place": 0, "copied": 0}
    for table in graph_tables:
        for replays in table.values():
            if replays is not None:
                counts["in_place"] += replays.in_place_replays
                counts["copied"] += replays.copied_replays
    return counts


def _shared_buffers(like: Tensors) -> _Buffers:
    """The buffers of ``like``'s signature, created on first use."""
    sig = signature(like)
    buffers = _buffers.get(sig)
    if buffers is None:
        buffers = _buffers[sig] = _Buffers(like)
    return buffers


def _capture(graphs: dict, key: tuple, step: Step, inputs: Tensors, centroids: Centroids,
             in_place: frozenset[str]) -> tuple[Tensors, Centroids]:
    """Capture ``graphs[key]``'s graph reading ``in_place`` where those inputs lie (its ``in_place``
    graph; with none, its ``copied`` one) and return this call's answer."""
    static_inputs = _shared_buffers({name: t for name, t in inputs.items() if name not in in_place})
    for name, buffer in static_inputs.tensors.items():
        buffer.copy_(inputs[name])
    graph_inputs = {name: static_inputs.tensors.get(name, tensor) for name, tensor in inputs.items()}
    # The eager run on the graph's inputs is this call's answer and compiles every kernel before capture.
    # It runs with host syncs as errors: a step that waits on the host cannot be captured, and a capture
    # that fails part-way leaves PyTorch's CUDA random generator unusable, so such a step is found here.
    try:
        outputs, new_centroids = _without_host_syncs(step, graph_inputs, centroids)
    except RuntimeError as error:
        warnings.warn(f"svg_ear: the sparse pipeline waits on the host, so it runs without a CUDA graph: {error}",
                      RuntimeWarning, stacklevel=3)
        graphs[key] = None
        return step(inputs, centroids, None)
    static_outputs = _shared_buffers(outputs)  # their shapes depend on the config (cluster counts) too
    with torch.inference_mode(False):
        centroid_buffers = tuple(c.clone() for c in new_centroids)
    device = outputs["out"].device
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph, pool=_shared_pool(device)):
            captured_outputs, captured_centroids = step(graph_inputs, centroid_buffers, static_outputs.tensors["out"])
            for name, tensor in captured_outputs.items():
                if tensor is not static_outputs.tensors[name]:
                    static_outputs.tensors[name].copy_(tensor)
            for buffer, tensor in zip(centroid_buffers, captured_centroids, strict=True):
                buffer.copy_(tensor)
    except RuntimeError as error:
        raise RuntimeError("svg_ear: CUDA graph capture of the sparse pipeline failed; run with "
                           "SvgEarConfig(cuda_graph=False) (a failed capture can leave this process's CUDA "
                           f"random generator unusable): {error}") from error
    captured = _Captured(graph, static_inputs, static_outputs, centroid_buffers, device,
                         {name: _where(inputs[name]) for name in in_place if name in inputs})
    replays = graphs[key]
    if captured.read_in_place:
        replays.in_place = captured
    else:
        replays.copied = captured
    _live_graphs.add(captured)
    return outputs, centroid_buffers


def _without_host_syncs(step: Step, inputs: Tensors, centroids: Centroids) -> tuple[Tensors, Centroids]:
    previous = torch.cuda.get_sync_debug_mode()
    _set_sync_debug_mode("error")
    try:
        return step(inputs, centroids, None)
    finally:
        _set_sync_debug_mode(previous)


def _set_sync_debug_mode(mode: str | int) -> None:
    with warnings.catch_warnings():  # torch warns that the debug mode is a prototype, on every switch
        warnings.filterwarnings("ignore", message="Synchronization debug mode")
        torch.cuda.set_sync_debug_mode(mode)
