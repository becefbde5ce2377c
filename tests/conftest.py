"""Test-wide settings: Triton in interpreter mode on CPU, compile caches inside the work tree."""

import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(_ROOT / ".cache" / "inductor"))
os.environ.setdefault("TRITON_CACHE_DIR", str(_ROOT / ".cache" / "triton"))
