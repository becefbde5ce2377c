"""Independent oracles shared by the tests: dense attention and relative error, in float64."""

import math

import torch


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact softmax(q kᵀ/√d) v in float64, written out (no SDPA)."""
    q, k, v = q.double(), k.double(), v.double()
    logits = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(logits, dim=-1) @ v


def rel_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.double() - expected.double()).norm() / expected.double().norm())


def replaced_key_oracle(q, k, v, stats, compensation=True, shared=None):
    """Exact attention per query where each skipped key cluster's keys/values become their means (float64).

    ``stats`` is what svg_ear_attention returned (labels and block map); ``shared`` = (keys (B, H, T, D),
    values, valid (B, T)) are extra keys every query attends exactly.
    """
    q, k, v = q.double(), k.double(), v.double()
    out = torch.empty(q.shape[:3] + v.shape[-1:], dtype=torch.float64)
    scale = 1 / math.sqrt(q.shape[-1])
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            q_labels, k_labels = stats["query_labels"][b, h], stats["key_labels"][b, h]
            selected = stats["selected"][b, h]
            kc = selected.shape[1]
            sizes = torch.bincount(k_labels, minlength=kc).double()
            k_means = torch.zeros(kc, k.shape[-1], dtype=torch.float64).index_add_(0, k_labels, k[b, h])
            v_means = torch.zeros(kc, v.shape[-1], dtype=torch.float64).index_add_(0, k_labels, v[b, h])
            k_means, v_means = k_means / sizes.clamp_min(1)[:, None], v_means / sizes.clamp_min(1)[:, None]
            for i in q_labels.unique().tolist():
                rows = (q_labels == i).nonzero().squeeze(1)
                keep = selected[i][k_labels]
                keys, values = k[b, h][keep], v[b, h][keep]
                if compensation:
                    keys = torch.cat([keys, k_means[k_labels[~keep]]])
                    values = torch.cat([values, v_means[k_labels[~keep]]])
                if shared is not None:
                    shared_keys, shared_values, valid = shared
                    keys = torch.cat([keys, shared_keys[b, h][valid[b]].double()])
                    values = torch.cat([values, shared_values[b, h][valid[b]].double()])
                out[b, h, rows] = torch.softmax(scale * q[b, h, rows] @ keys.T, -1) @ values
    return out
