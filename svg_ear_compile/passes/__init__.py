"""FX passes over the Dynamo graph: find attention calls, classify them, rewrite the targets.

Data flows one way: :func:`find_attention` → :func:`classify` → :func:`rewrite_attention`.
"""

from .classify import Classification, classify
from .find import AttentionCall, find_attention
from .rewrite import RewriteTarget, rewrite_attention, timestep_input

__all__ = [
    "AttentionCall", "Classification", "RewriteTarget", "classify", "find_attention", "rewrite_attention",
    "timestep_input",
]
