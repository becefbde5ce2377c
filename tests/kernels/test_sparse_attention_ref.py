# Block-sparse attention + compensation equals dense attention with each skipped cluster's keys replaced by its means.
import pytest
import torch

from svg_ear_compile.kernels.block_map import BlockMap
from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import cluster_layout, permute, unpermute
from svg_ear_compile.kernels.sparse_attention_ref import sparse_attention_ref


def _oracle(q, k, v, q_labels, k_labels, selected, k_means, v_means, scale, compensation, shared=None):
    """Per query: dense softmax over selected keys (+ for each skipped cluster, |K_j| copies of its means,
    + the valid shared keys)."""
    out = torch.zeros(q.shape[:2] + v.shape[-1:], dtype=torch.float64)
    for g in range(q.shape[0]):
        for n in range(q.shape[1]):
            row = selected[g, q_labels[g, n]]
            keep = row[k_labels[g]]
            keys, values = k[g, keep], v[g, keep]
            if compensation:
                replaced = (~keep) & (k_labels[g] >= 0)
                keys = torch.cat([keys, k_means[g, k_labels[g, replaced]]])
                values = torch.cat([values, v_means[g, k_labels[g, replaced]]])
            if shared is not None:
                shared_k, shared_v, shared_valid = shared
                keys = torch.cat([keys, shared_k[g, shared_valid[g]]])
                values = torch.cat([values, shared_v[g, shared_valid[g]]])
            out[g, n] = torch.softmax(scale * keys.double() @ q[g, n].double(), 0) @ values.double()
    return out


@pytest.mark.parametrize("case", ["random", "single_huge_cluster", "singletons", "full"])
@pytest.mark.parametrize("compensation", [True, False])
def test_matches_replaced_key_oracle(case, compensation):
    gen = torch.Generator().manual_seed(hash(case) % 1000)
    g, n, d, qc, kc = 2, 97, 8, 7, 11
    q, k, v = (torch.randn(g, n, d, generator=gen) for _ in range(3))
    q_labels = torch.randint(0, qc, (g, n), generator=gen)
    k_labels = torch.randint(0, kc, (g, n), generator=gen)
    if case == "single_huge_cluster":
        k_labels[:, :90] = 2
        q_labels[:, :90] = 0
    if case == "singletons":
        k_labels = torch.arange(n).repeat(g, 1) % kc
        k_labels[:, kc:] = torch.randint(0, 3, (g, n - kc), generator=gen)
    q_layout, k_layout = cluster_layout(q_labels, qc), cluster_layout(k_labels, kc)
    selected = torch.rand(g, qc, kc, generator=gen) < 0.35
    selected[:, :, 0] = True  # every row has at least one block so dropping stays defined
    if case == "full":
        selected[:] = True
    if case == "random":
        selected[0, 1, :] = False
        selected[0, 1, 0] = True
    block_map = BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes)
    k_means = cluster_means(k, k_labels, k_layout.sizes)
    v_means = cluster_means(v, k_labels, k_layout.sizes)
    out_sorted = sparse_attention_ref(
        permute(q, q_layout.perm), permute(k, k_layout.perm), permute(v, k_layout.perm),
        q_layout, k_layout, block_map, k_means, v_means, 0.4, compensation,
    )
    out = unpermute(out_sorted, q_layout.perm)
    expected = _oracle(q, k, v, q_labels, k_labels, block_map.selected, k_means, v_means, 0.4, compensation)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)


def test_block_map_rejects_bad_shapes_and_reports_density():
    q_sizes, k_sizes = torch.tensor([[3, 1]]), torch.tensor([[2, 0, 2]])
    with pytest.raises(ValueError, match="bool"):
        BlockMap.from_selection(torch.ones(1, 2, 3), q_sizes, k_sizes)
    with pytest.raises(ValueError, match="do not match"):
        BlockMap.from_selection(torch.ones(1, 3, 3, dtype=torch.bool), q_sizes, k_sizes)
    bm = BlockMap.from_selection(torch.tensor([[[True, True, False], [False, False, True]]]), q_sizes, k_sizes)
    assert not bool(bm.selected[0, 0, 1])
    assert float(bm.density()[0]) == pytest.approx((3 * 2 + 1 * 2) / 16)


@pytest.mark.parametrize("compensation", [True, False])
def test_shared_keys_join_the_softmax_and_padding_never_counts(compensation):
    gen = torch.Generator().manual_seed(5)
    g, n, t, d, qc, kc = 2, 53, 6, 8, 5, 9
    q, k, v = (torch.randn(g, n, d, generator=gen) for _ in range(3))
    shared_k, shared_v = torch.randn(g, t, d, generator=gen), torch.randn(g, t, d, generator=gen)
    shared_valid = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    shared_k[0, 4:] = 1e4  # padded keys with huge logits: any leak would dominate the softmax
    q_labels, k_labels = torch.randint(0, qc, (g, n), generator=gen), torch.randint(0, kc, (g, n), generator=gen)
    q_layout, k_layout = cluster_layout(q_labels, qc), cluster_layout(k_labels, kc)
    selected = torch.rand(g, qc, kc, generator=gen) < 0.3
    block_map = BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes)
    k_means, v_means = cluster_means(k, k_labels, k_layout.sizes), cluster_means(v, k_labels, k_layout.sizes)
    out_sorted = sparse_attention_ref(
        permute(q, q_layout.perm), permute(k, k_layout.perm), permute(v, k_layout.perm),
        q_layout, k_layout, block_map, k_means, v_means, 0.4, compensation, shared_k, shared_v, shared_valid,
    )
    expected = _oracle(q, k, v, q_labels, k_labels, block_map.selected, k_means, v_means, 0.4, compensation,
                       (shared_k, shared_v, shared_valid))
    torch.testing.assert_close(unpermute(out_sorted, q_layout.perm).double(), expected, rtol=1e-5, atol=1e-5)


def _tail_error(offset: float, exact_centroids: int = 2) -> float:
    """Largest |output − full compensation| with ``exact_centroids``, for queries at ``offset`` times a fixed
    direction from their cluster's mean (float64; the means stay put as the offset changes)."""
    gen = torch.Generator().manual_seed(3)
    g, n, d, qc, kc = 1, 120, 8, 4, 13
    k, v = torch.randn(g, n, d, generator=gen, dtype=torch.float64), torch.randn(g, n, d, generator=gen,
                                                                                 dtype=torch.float64)
    k_labels = torch.randint(0, kc, (g, n), generator=gen)
    q_labels = (torch.arange(n) % qc)[None]
    centres = torch.randn(g, qc, d, generator=gen, dtype=torch.float64)
    direction = torch.randn(g, n, d, generator=gen, dtype=torch.float64)
    direction -= cluster_means(direction, q_labels, torch.bincount(q_labels[0], minlength=qc)[None])[0][q_labels[0]]
    q = centres[0][q_labels[0]][None] + offset * direction
    q_layout, k_layout = cluster_layout(q_labels, qc), cluster_layout(k_labels, kc)
    selected = torch.rand(g, qc, kc, generator=gen) < 0.3
    block_map = BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes)
    k_means, v_means = cluster_means(k, k_labels, k_layout.sizes), cluster_means(v, k_labels, k_layout.sizes)
    args = (permute(q, q_layout.perm), permute(k, k_layout.perm), permute(v, k_layout.perm), q_layout, k_layout,
            block_map, k_means, v_means, 0.4, True)
    tailed = sparse_attention_ref(*args, exact_centroids=exact_centroids, query_means=centres)
    return float((tailed - sparse_attention_ref(*args)).abs().max())


def test_expanded_tail_is_exact_at_the_query_means():
    assert _tail_error(0.0) < 1e-12
    assert _tail_error(0.0, exact_centroids=1) < 1e-12


def test_expanded_tail_error_is_second_order_in_the_query_offset():
    """First order in ``u = q − q̄`` means the error falls 4× when ``u`` halves (a missing or wrong slope
    term leaves a first-order error, which falls only 2×)."""
    coarse, fine = _tail_error(0.02), _tail_error(0.01)
    assert 1e-9 < fine and 3.6 < coarse / fine < 4.4
