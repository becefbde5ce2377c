"""svg_ear_compile: SVG-EAR sparse attention for video diffusion transformers.

Public surface::

    SvgEarConfig        versioned, validated settings with per-layer overrides
    SvgEarState         a layer's centroid cache (k-means warm start)
    svg_ear_attention   the algorithm on (B, H, S, D) tensors
    explain             which attention calls ``backend="svg_ear"`` rewrites, and why not the others
    record              per-layer, per-step density and time of the op at run time
    compile_repeated_blocks   regional compilation with the layer index and warm-up resolved at run time

``torch.ops.svg_ear.attention`` (the op the compiler inserts) is registered by
``svg_ear_compile.ops``, which this package imports; importing touches neither CUDA, diffusers
nor optuna.
"""

from . import ops as _ops  # noqa: F401  (registers torch.ops.svg_ear.attention)
from .attention import svg_ear_attention
from .config import SvgEarConfig
from .explain import explain
from .record import record
from .runtime import compile_repeated_blocks
from .state import SvgEarState

__all__ = ["SvgEarConfig", "SvgEarState", "compile_repeated_blocks", "explain", "record", "svg_ear_attention"]
__version__ = "0.1.0"
