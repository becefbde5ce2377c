# The row-permutation kernel copies exactly the rows torch.gather picks (bitwise), for one tensor or two.
import os

import pytest
import torch

from svg_ear_compile.kernels.permute import permute_rows
from svg_ear_compile.kernels.permute_ref import permute

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if DEVICE == "cuda" else [])


def _perm(groups: int, rows: int, gen: torch.Generator, dtype=torch.int64) -> torch.Tensor:
    return torch.stack([torch.randperm(rows, generator=gen) for _ in range(groups)]).to(dtype).to(DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,dx,dy", [(77, 16, None), (130, 40, 24), (33, 64, 64)])
def test_equals_torch_gather_bitwise(dtype, rows, dx, dy):
    gen = torch.Generator().manual_seed(rows)
    x = torch.randn(3, rows, dx, generator=gen).to(dtype).to(DEVICE)
    y = torch.randn(3, rows, dy, generator=gen).to(dtype).to(DEVICE) if dy else None
    perm = _perm(3, rows, gen)
    x_out, y_out = permute_rows(x, perm, y, block_rows=16)
    assert torch.equal(x_out, permute(x, perm))
    assert (y_out is None) if y is None else torch.equal(y_out, permute(y, perm))


def test_int32_perm_and_non_contiguous_input():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(50, 2, 32, generator=gen).to(DEVICE).transpose(0, 1)  # (2, 50, 32), not contiguous
    perm = _perm(2, 50, gen, torch.int32)
    assert torch.equal(permute_rows(x, perm)[0], permute(x, perm.long()))


def test_head_major_view_of_token_major_tensors_read_in_place():
    """The attention call's (B, H, S, D) inputs are views of (B, S, H, D) tensors; as (B·H, S, D) they have
    group stride D and row stride H·D. Keys and values of different layouts in one call; features with a
    stride other than 1 are copied first."""
    gen = torch.Generator().manual_seed(2)
    heads, rows = 3, 45
    k = torch.randn(rows, heads, 32, generator=gen).to(DEVICE).transpose(0, 1)  # (3, 45, 32), strides (32, 96, 1)
    v = torch.randn(heads, rows, 24, generator=gen).to(DEVICE)
    features_strided = torch.randn(heads, 16, rows, generator=gen).to(DEVICE).transpose(1, 2)
    perm = _perm(heads, rows, gen)
    k_out, v_out = permute_rows(k, perm, v, block_rows=16)
    assert k.stride() == (32, 96, 1) and k_out.is_contiguous()
    assert torch.equal(k_out, permute(k, perm)) and torch.equal(v_out, permute(v, perm))
    assert torch.equal(permute_rows(features_strided, perm)[0], permute(features_strided, perm))


@pytest.mark.parametrize("bad,match", [
    (lambda x, p: (x[0], p), "must be a \\(G, N, D\\)"),
    (lambda x, p: (x.long(), p), "float16/bfloat16/float32"),
    (lambda x, p: (x, p[:, :-1]), "does not match perm"),
    (lambda x, p: (x, p.float()), "int32 or int64"),
])
def test_bad_input_is_named(bad, match):
    x, perm = torch.randn(2, 8, 16, device=DEVICE), _perm(2, 8, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=match):
        permute_rows(*bad(x, perm))
