"""Independent oracles shared by the tests: dense attention and relative error, in float64."""

import torch


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact softmax(q kᵀ/√d) v in float64, written out (no SDPA)."""
    q, k, v = q.double(), k.double(), v.double()
    logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(logits, dim=-1) @ v


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).norm() / expected.double().norm())
