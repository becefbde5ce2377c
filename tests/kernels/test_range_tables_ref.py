# The torch reference's key ranges cover exactly the selected tokens, coalesced.
import torch

from svg_ear_compile.kernels.range_tables_ref import key_ranges


def test_key_ranges_cover_exactly_the_selected_tokens():
    gen = torch.Generator().manual_seed(2)
    sizes = torch.tensor([[3, 0, 1, 2, 0, 0, 5, 1, 0]])
    offsets = torch.nn.functional.pad(sizes.cumsum(1), (1, 0))
    selected = torch.rand(1, 40, 9, generator=gen) < 0.5
    begin, length = key_ranges(selected, offsets)
    assert begin.shape == (1, 40, 5)
    for row in range(40):
        pairs = zip(begin[0, row].tolist(), length[0, row].tolist(), strict=True)
        tokens = [t for b, n in pairs for t in range(b, b + n)]
        chosen = [t for c in range(9) if selected[0, row, c] for t in range(offsets[0, c], offsets[0, c + 1])]
        assert tokens == chosen
        count = int((length[0, row] > 0).sum())
        assert bool((length[0, row, :count] > 0).all()) and bool((length[0, row, count:] == 0).all())
        ends = (begin[0, row] + length[0, row])[: max(count - 1, 0)]
        assert bool((ends < begin[0, row, 1:count]).all())  # adjacent runs were coalesced
