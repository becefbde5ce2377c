"""Test-wide settings (tests and doctests): Triton's interpreter where there is no GPU, caches in the work tree.

The interpreter must be chosen before any ``@triton.jit`` runs, so before the package's kernels import.
On a GPU machine the kernels run compiled (set ``TRITON_INTERPRET=1`` yourself to force the interpreter).
"""

import os
import pathlib

import torch

_ROOT = pathlib.Path(__file__).resolve().parent
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_ROOT / ".cache" / "inductor"))
os.environ.setdefault("TRITON_CACHE_DIR", str(_ROOT / ".cache" / "triton"))
