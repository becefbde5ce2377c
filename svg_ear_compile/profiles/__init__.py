"""Per-GPU profiles: schema, loading by device and model signature, atomic writing.

    load_profile("auto" | path, device_name=..., signature=...)   the fitting Profile, or None + one warning
    Profile.config()        the SvgEarConfig it describes (per-layer ``layer_overrides``)
    graph_signature(gm)     what a compiled graph shows of its model (layers, heads, head dim, S bucket)
    graph_device_name(gm)   the device its attention runs on ("cpu" or that GPU's CUDA name)
    graph_attention_batch(gm)  the batch its self-attention runs (2: guidance as one batch)
    write_profile(p, path)  YAML, through a temporary file and a rename

Shipped profiles are the ``*.yaml`` files in this directory (made by ``svg-ear-tune`` on the GPU they name).
"""

from ._schema import PROFILE_VERSION, LayerResult, ModelSignature, Profile, ProfileError, seq_len_bucket
from ._signature import graph_attention_batch, graph_device_name, graph_signature
from ._store import (
    ProfileWarning,
    current_device_name,
    is_profile_text,
    load_profile,
    profile_dirs,
    read_profile,
    write_atomic,
    write_profile,
)

__all__ = [
    "PROFILE_VERSION", "LayerResult", "ModelSignature", "Profile", "ProfileError", "ProfileWarning",
    "current_device_name", "graph_attention_batch", "graph_device_name", "graph_signature", "is_profile_text",
    "load_profile", "profile_dirs", "read_profile", "seq_len_bucket", "write_atomic", "write_profile",
]
