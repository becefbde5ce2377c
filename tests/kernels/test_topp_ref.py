# Top-p keeps, per row, the fewest heaviest clusters whose mass reaches p (and never an empty cluster).
import torch

from svg_ear_compile.kernels.topp_ref import select_top_p


def test_top_p_matches_sorted_prefix_rule():
    gen = torch.Generator().manual_seed(3)
    sizes = torch.randint(0, 4, (2, 12), generator=gen)
    sizes[:, 0] = 5
    logits = torch.randn(2, 6, 12, generator=gen, dtype=torch.float64) * 3
    mass = torch.softmax(logits.masked_fill((sizes == 0).unsqueeze(1), float("-inf")), -1)
    for p in (0.3, 0.9, 0.999):
        keep = select_top_p(mass, sizes, p)
        for g in range(2):
            for i in range(6):
                order = mass[g, i].argsort(descending=True)
                total, expected = 0.0, set()
                for j in order.tolist():
                    if total >= p:
                        break
                    expected.add(j)
                    total += float(mass[g, i, j])
                expected = {j for j in expected if sizes[g, j] > 0}
                assert set(keep[g, i].nonzero().squeeze(1).tolist()) == expected
                assert float(mass[g, i][keep[g, i]].sum()) >= p - 1e-12


def test_top_p_one_keeps_every_nonempty_cluster_despite_underflow():
    mass = torch.tensor([[[1.0, 0.0, 0.0]]])
    sizes = torch.tensor([[4, 2, 0]])
    assert select_top_p(mass, sizes, 1.0).tolist() == [[[True, True, False]]]
