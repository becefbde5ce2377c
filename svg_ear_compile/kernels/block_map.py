"""The block map produced by routing: which (query cluster, key cluster) blocks run exactly.

One validating constructor; the attention stages trust what it built (FlexAttention's BlockMask
habit). Density is the share of the ``N × N`` score area computed exactly::

    density_g = Σ_{(i,j) selected} |Q_i|·|K_j| / N²
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlockMap:
    selected: torch.Tensor
    query_sizes: torch.Tensor
    key_sizes: torch.Tensor

    @classmethod
    def from_selection(
        cls, selected: torch.Tensor, query_sizes: torch.Tensor, key_sizes: torch.Tensor, *, check_sizes: bool = True
    ) -> BlockMap:
        """Check shapes and dtypes; empty key clusters are never selected.

        ``check_sizes`` also checks that no size is negative, which reads the sizes back from the device
        (a host sync); the pipeline skips it, since its sizes are counts of labels.
        """
        if selected.dtype != torch.bool or selected.dim() != 3:
            raise ValueError(f"BlockMap: selected must be a bool (G, QC, KC) tensor, got {selected.dtype} "
                             f"of shape {tuple(selected.shape)}")
        g, qc, kc = selected.shape
        if tuple(query_sizes.shape) != (g, qc) or tuple(key_sizes.shape) != (g, kc):
            raise ValueError(f"BlockMap: sizes {tuple(query_sizes.shape)} / {tuple(key_sizes.shape)} do not "
                             f"match selected {tuple(selected.shape)}")
        if check_sizes and (bool((query_sizes < 0).any()) or bool((key_sizes < 0).any())):
            raise ValueError("BlockMap: cluster sizes must be >= 0")
        return cls(selected & (key_sizes > 0).unsqueeze(1), query_sizes, key_sizes)

    def density(self) -> torch.Tensor:
        """Exactly computed share of the score area, one value per group ``(G,)``."""
        q = self.query_sizes.to(torch.float64)
        k = self.key_sizes.to(torch.float64)
        area = torch.einsum("gi,gij,gj->g", q, self.selected.to(torch.float64), k)
        return area / (q.sum(-1) * k.sum(-1))
