"""How accurate are cheaper forms of the centroid compensation, on the trained fixture's own Q/K/V? (CPU)

The kernel's compensation gives every query one extra logit per skipped key cluster ``j``
(``s·q·k̄_j + log|K_j|``, value ``v̄_j``): ``KC·(D + Dv)`` multiply-adds per query, 21–35% of the
kernel at 3% density (``RESULTS.md``, ninth session). A per-query-cluster expansion costs ``D·Dv`` per
query whatever ``KC`` is. For query ``q = q̄_i + u`` of cluster ``i`` and its skipped clusters ``j``, with
``w_j = |K_j| e^{s·q̄_i·k̄_j − M}``, ``W = Σw``, ``μ = Σ w·k̄_j / W``, ``A = Σ w·v̄_j`` and
``C = Σ w·(k̄_j − μ) v̄_jᵀ``::

    Σ_j |K_j| e^{s·q·k̄_j} v̄_j ≈ e^{M + s·u·μ} (A + s·uᵀC)        ("linear": first order in s·u·(k̄_j − μ))
    Σ_j |K_j| e^{s·q·k̄_j}     ≈ e^{M + s·u·μ} W                  (its first-order term is zero by μ's choice)

``zeroth`` drops ``C``; ``second`` adds the second-order terms; ``hybridT`` keeps the ``T`` heaviest
skipped clusters (by ``w``) as exact centroid logits and expands the rest. Each is scored as the
attention-output PSNR against exact attention (float64), over every captured layer, step and head,
with one routing (the reference op's) shared by all variants, so only the compensation differs.

    python benchmarks/compensation_accuracy.py --settings 64,256,0.05 64,1024,0.05 64,512,0.03

The capture (a dense fixture run with guidance 2 at its native 9,216 tokens, three steps of ten, four
heads per layer) is cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch

from svg_ear_compile import SvgEarConfig, SvgEarState, svg_ear_attention
from svg_ear_compile.tuner._calibration import capture
from svg_ear_compile.tuner._model import Guidance, load_model
from svg_ear_compile.tuner._objective import exact_attention, output_psnr

BASE_VARIANTS = ("none", "centroid", "zeroth", "linear", "second")


def _softmax_blocks(parts: list[tuple[torch.Tensor, torch.Tensor]], rows: int, value_dim: int) -> torch.Tensor:
    """One softmax over blocks of (logits ``(r, n)``, values ``(n, Dv)`` or per query ``(r, n, Dv)``);
    zeros where no block has a column (nothing to attend, as the op gives)."""
    num = torch.zeros(rows, value_dim, dtype=torch.float64)
    parts = [(logits, values) for logits, values in parts if logits.shape[1]]
    if not parts:
        return num
    peak = torch.stack([logits.max(1).values for logits, _ in parts]).max(0).values
    den = torch.zeros(rows, dtype=torch.float64)
    for logits, values in parts:
        weight = (logits - peak[:, None]).exp()
        num += torch.einsum("rn,rnv->rv", weight, values) if values.dim() == 3 else weight @ values
        den += weight.sum(1)
    return num / den[:, None]


def _expanded(log_weights: torch.Tensor, centroids: torch.Tensor, value_means: torch.Tensor, offset: torch.Tensor,
              scale: float, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Skipped clusters (``log w`` at the query centroid, ``k̄``, ``v̄``) as one logit ``(r, 1)`` and value
    ``(r, 1, Dv)`` per query at offset ``u`` from the centroid, expanded to ``kind``'s order."""
    top = log_weights.max()
    weights = (log_weights - top).exp()
    total = weights.sum()
    mean_key = weights @ centroids / total
    spread = centroids - mean_key
    numerator, denominator = (weights @ value_means).expand(len(offset), -1), total.expand(len(offset))
    if kind in ("linear", "second"):
        numerator = numerator + scale * offset @ ((weights[:, None] * spread).T @ value_means)
    if kind == "second":
        projected = offset @ spread.T  # u·(k̄_j − μ), (r, n)
        numerator = numerator + 0.5 * scale**2 * (projected**2 * weights) @ value_means
        denominator = denominator + 0.5 * scale**2 * (projected**2) @ weights
    logit = top + scale * offset @ mean_key + denominator.log()
    return logit[:, None], (numerator / denominator[:, None])[:, None, :]


def compensated_outputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, query_labels: torch.Tensor,
                        key_labels: torch.Tensor, selected: torch.Tensor, scale: float,
                        hybrid: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
    """One head's attention output ``(S, Dv)`` under each compensation variant (float64).

    ``q, k, v`` are ``(S, D)``; labels and ``selected`` ``(QC, KC)`` are a routing (as the op's stats
    give them). Selected clusters are attended exactly in every variant; ``none`` drops the rest.
    """
    q, k, v = q.double(), k.double(), v.double()
    num_k, value_dim = selected.shape[1], v.shape[1]
    sizes = torch.bincount(key_labels, minlength=num_k).double()
    centroids = torch.zeros(num_k, k.shape[1], dtype=torch.float64).index_add_(0, key_labels, k)
    value_means = torch.zeros(num_k, value_dim, dtype=torch.float64).index_add_(0, key_labels, v)
    centroids, value_means = centroids / sizes.clamp_min(1)[:, None], value_means / sizes.clamp_min(1)[:, None]
    names = (*BASE_VARIANTS, *(f"hybrid{t}" for t in hybrid))
    outs = {name: torch.zeros(q.shape[0], value_dim, dtype=torch.float64) for name in names}
    for cluster in query_labels.unique().tolist():
        rows = (query_labels == cluster).nonzero().squeeze(1)
        queries = q[rows]
        query_mean = queries.mean(0)
        offset = queries - query_mean
        keep = selected[cluster][key_labels]
        exact_part = (scale * queries @ k[keep].T, v[keep])
        skipped = (~selected[cluster]) & (sizes > 0)
        skip_keys, skip_values, log_sizes = centroids[skipped], value_means[skipped], sizes[skipped].log()
        outs["none"][rows] = _softmax_blocks([exact_part], len(rows), value_dim)
        if not skipped.any():
            for name in names[1:]:
                outs[name][rows] = outs["none"][rows]
            continue
        centroid_logits = scale * queries @ skip_keys.T + log_sizes  # what the kernel computes per query
        outs["centroid"][rows] = _softmax_blocks([exact_part, (centroid_logits, skip_values)], len(rows), value_dim)
        cluster_logits = scale * skip_keys @ query_mean + log_sizes  # the same at the query centroid
        for kind in ("zeroth", "linear", "second"):
            expanded = _expanded(cluster_logits, skip_keys, skip_values, offset, scale, kind)
            outs[kind][rows] = _softmax_blocks([exact_part, expanded], len(rows), value_dim)
        ranked = torch.argsort(cluster_logits, descending=True)
        for t in hybrid:
            head, tail = ranked[:t], ranked[t:]
            parts = [exact_part, (centroid_logits[:, head], skip_values[head])]
            if len(tail):
                parts.append(_expanded(cluster_logits[tail], skip_keys[tail], skip_values[tail], offset, scale,
                                       "linear"))
            outs[f"hybrid{t}"][rows] = _softmax_blocks(parts, len(rows), value_dim)
    return outs


def _setting(text: str) -> tuple[int, int, float]:
    qc, kc, budget = text.split(",")
    return int(qc), int(kc), float(budget)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", type=_setting, nargs="+", default=[(64, 256, 0.05)],
                        metavar="QC,KC,BUDGET")
    parser.add_argument("--hybrid", type=int, nargs="*", default=[16, 64], help="exact centroid logits kept")
    parser.add_argument("--cache", default=".cache/compensation_accuracy", help="where the capture is kept")
    args = parser.parse_args(argv)
    tune_model = load_model("svg_ear_compile.fixture:tuning_target")
    calibration = capture(tune_model, args.cache, seeds=[0], steps=10, capture_steps=3, max_heads=4,
                          guidance=Guidance(2.0), settings={"purpose": "compensation_accuracy", "version": 1})
    rows = []
    for num_q, num_k, budget in args.settings:
        config = SvgEarConfig(num_q_clusters=num_q, num_k_clusters=num_k, budget=budget, min_seq_len=0,
                              impl="reference", kmeans_iters_init=10)
        pairs: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        densities = []
        for layer in calibration.layers:
            for sample in calibration.samples(layer):
                q, k, v = (sample[name].float() for name in ("q", "k", "v"))
                _, stats = svg_ear_attention(q, k, v, config, state=SvgEarState(), return_stats=True)
                densities.append(float(stats["density"]))
                exact = exact_attention(q, k, v)
                for head in range(q.shape[1]):
                    outs = compensated_outputs(q[0, head], k[0, head], v[0, head], stats["query_labels"][0, head],
                                               stats["key_labels"][0, head], stats["selected"][0, head],
                                               1 / math.sqrt(q.shape[-1]), tuple(args.hybrid))
                    for name, out in outs.items():
                        pairs.setdefault(name, []).append((exact[0, head], out))
        psnr = {name: output_psnr(torch.cat([e.reshape(-1) for e, _ in p]), torch.cat([o.reshape(-1) for _, o in p]))
                for name, p in pairs.items()}
        row = {"num_q_clusters": num_q, "num_k_clusters": num_k, "budget": budget,
               "density": sum(densities) / len(densities), "psnr_db": psnr}
        rows.append(row)
        print(f"QC {num_q} KC {num_k} budget {budget:g}: density {row['density']:.3f} | "
              + " | ".join(f"{name} {value:.2f}" for name, value in psnr.items()), flush=True)
    return rows


if __name__ == "__main__":
    main()
