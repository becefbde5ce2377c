"""SVG2's top-p block selection, torch reference.

Per query-cluster row, keep the fewest key clusters whose centroid mass reaches ``top_p``:
sort ``p_ij`` in decreasing order and keep cluster ``j`` while the mass before it is below ``top_p``.
``top_p >= 1`` keeps every non-empty cluster (rounding must not drop the tail).
"""

from __future__ import annotations

import torch


def select_top_p(mass: torch.Tensor, key_sizes: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean ``(G, QC, KC)``: the top-p set of each row (at least its heaviest cluster)."""
    nonempty = (key_sizes > 0).unsqueeze(1).expand_as(mass)
    if top_p >= 1.0:
        return nonempty.clone()
    sorted_mass, order = mass.sort(dim=-1, descending=True)
    mass_before = sorted_mass.cumsum(-1) - sorted_mass
    keep_sorted = mass_before < top_p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return keep & nonempty
