"""CUDA-graph replay of the warm sparse pipeline: one capture per layer and input signature.

A warm call of the Triton path issues ~400 kernels, most of them tiny. On an H100 at the
Wan2.1-1.3B shape the host needs ~13 ms to issue them while the GPU runs the ones before the
attention kernel in ~5 ms, so the GPU waits for the host (``benchmarks/profile_op.py``). A graph
replays all of them with one launch.

The first warm call of a (layer, signature) runs eagerly on static input buffers, then captures
the same step; later calls copy their inputs in, replay, and clone the outputs out.

Memory: every graph of a device allocates its intermediates from one shared pool. The inputs and
outputs live outside it, in buffers shared by every graph of the same signature, and each graph
keeps its layer's centroids in buffers of its own that the replay reads and updates in place. No
tensor from the pool outlives a replay, so graphs sharing the pool may replay in any order.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
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


@dataclass(eq=False)
class _Captured:
    graph: torch.cuda.CUDAGraph
    inputs: _Buffers
    outputs: _Buffers
    centroids: Centroids
    device: torch.device


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


def wanted(setting: bool | str, rows: int, reusing: bool = False) -> bool:
    """Whether a call of ``rows`` query rows replays a graph under ``SvgEarConfig.cuda_graph=setting``.

    Under ``"auto"`` a call that reuses a kept routing (``reusing``) runs eagerly at any size: it issues
    ~70 kernels, not ~400, and eagerly it reads its inputs where they lie instead of copying them into the
    graph's buffers and its output back out.
    """
    return rows < GRAPH_MAX_ROWS and not reusing if setting == "auto" else bool(setting)


def can_capture(device: torch.device) -> bool:
    """CUDA, and not already inside someone else's capture (then the kernels join that graph instead)."""
    return device.type == "cuda" and not torch.cuda.is_current_stream_capturing()


def run_graphed(graphs: dict, key: tuple, step: Step, inputs: Tensors, centroids: Centroids) -> tuple[Tensors,
                                                                                                     Centroids]:
    """``step(inputs, centroids)`` through the graph ``graphs[key]``, capturing it on the first call.

    Returns fresh output tensors and the new centroids (the graph's own buffers: pass them back as
    ``centroids`` next time and no copy is needed). A step that waits on the host (it reads a value
    back, say) cannot be captured: it runs eagerly from then on, with one warning.
    """
    captured = graphs.get(key)
    if captured is None and key in graphs:
        return step(inputs, centroids, None)
    if captured is None:
        return _capture(graphs, key, step, inputs, centroids)
    for name, tensor in inputs.items():
        captured.inputs.tensors[name].copy_(tensor)
    for buffer, current in zip(captured.centroids, centroids, strict=True):
        if current is not buffer:
            buffer.copy_(current)
    captured.graph.replay()
    return {name: buffer.clone() for name, buffer in captured.outputs.tensors.items()}, captured.centroids


def _shared_buffers(like: Tensors) -> _Buffers:
    """The buffers of ``like``'s signature, created on first use."""
    sig = signature(like)
    buffers = _buffers.get(sig)
    if buffers is None:
        buffers = _buffers[sig] = _Buffers(like)
    return buffers


def _capture(graphs: dict, key: tuple, step: Step, inputs: Tensors, centroids: Centroids) -> tuple[Tensors,
                                                                                                  Centroids]:
    static_inputs = _shared_buffers(inputs)
    for name, tensor in inputs.items():
        static_inputs.tensors[name].copy_(tensor)
    # The eager run on the static buffers is this call's answer and compiles every kernel before capture.
    # It runs with host syncs as errors: a step that waits on the host cannot be captured, and a capture
    # that fails part-way leaves PyTorch's CUDA random generator unusable, so such a step is found here.
    try:
        outputs, new_centroids = _without_host_syncs(step, static_inputs.tensors, centroids)
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
            captured_outputs, captured_centroids = step(static_inputs.tensors, centroid_buffers,
                                                        static_outputs.tensors["out"])
            for name, tensor in captured_outputs.items():
                if tensor is not static_outputs.tensors[name]:
                    static_outputs.tensors[name].copy_(tensor)
            for buffer, tensor in zip(centroid_buffers, captured_centroids, strict=True):
                buffer.copy_(tensor)
    except RuntimeError as error:
        raise RuntimeError("svg_ear: CUDA graph capture of the sparse pipeline failed; run with "
                           "SvgEarConfig(cuda_graph=False) (a failed capture can leave this process's CUDA "
                           f"random generator unusable): {error}") from error
    graphs[key] = captured = _Captured(graph, static_inputs, static_outputs, centroid_buffers, device)
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
