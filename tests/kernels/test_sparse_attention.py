# The fused Triton kernel writes every output row, in the original query order, equal to the reference EAR output.
import dataclasses
import os

import pytest
import torch

from svg_ear_compile.kernels.block_map import BlockMap
from svg_ear_compile.kernels.cluster_stats_ref import cluster_means
from svg_ear_compile.kernels.permute_ref import ClusterLayout, cluster_layout, permute, unpermute
from svg_ear_compile.kernels.sparse_attention import sparse_attention, sparse_attention_plan
from svg_ear_compile.kernels.sparse_attention_ref import sparse_attention_ref

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"
# bf16 is wrong in the interpreter: test it on the GPU only.
DTYPES = [torch.float32, torch.float16] + ([torch.bfloat16] if DEVICE == "cuda" else [])
_TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1.5e-2}  # max |error| / max |reference|


def _case(name: str, seed: int = 0, g: int = 2, n: int = 131, d: int = 16, dv: int = 16, qc: int = 7, kc: int = 11,
          dtype: torch.dtype = torch.float32, shared_tokens: int = 0):
    """Random sorted inputs, layouts, a block map with empty rows, cluster means and optional shared keys."""
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(g, n, d, generator=gen).to(dtype) for _ in range(2))
    v = torch.randn(g, n, dv, generator=gen).to(dtype)
    q_labels = torch.randint(0, qc, (g, n), generator=gen)
    k_labels = torch.randint(0, kc - 2, (g, n), generator=gen)  # the last two key clusters are empty
    if name == "single_huge_cluster":
        q_labels[:, : n - 10] = 1
        k_labels[:, : n - 10] = 3
    if name == "singletons":  # key clusters of size 1 next to large ones, query clusters of size 1
        kc = 41
        k_labels = torch.arange(n).repeat(g, 1) % kc
        k_labels[:, kc:] = torch.randint(0, 3, (g, n - kc), generator=gen)
        k_labels[k_labels == kc - 1] = 0
        q_labels[:, :qc] = torch.arange(qc)
    selected = torch.rand(g, qc, kc, generator=gen) < 0.4
    selected[:, 3] = torch.arange(kc) % 2 == 1  # every other cluster: with singletons a key tile spans block_n ranges
    selected[0, 2] = False  # an empty row: only compensation (or nothing) for its queries
    selected[-1, 0] = True  # a full row
    if name == "full":
        selected[:] = True
    q_layout, k_layout = cluster_layout(q_labels, qc), cluster_layout(k_labels, kc)
    block_map = BlockMap.from_selection(selected, q_layout.sizes, k_layout.sizes)
    k_means = cluster_means(k.float(), k_labels, k_layout.sizes).to(dtype)
    v_means = cluster_means(v.float(), k_labels, k_layout.sizes).to(dtype)
    args = [permute(q, q_layout.perm), permute(k, k_layout.perm), permute(v, k_layout.perm), q_layout, k_layout,
            block_map, k_means, v_means, d**-0.5]
    shared = ()
    if shared_tokens:
        shared_k = torch.randn(g, shared_tokens, d, generator=gen).to(dtype)
        shared_v = torch.randn(g, shared_tokens, dv, generator=gen).to(dtype)
        valid = torch.rand(g, shared_tokens, generator=gen) < 0.7
        valid[0, -2:] = False
        shared_k[~valid] = 100.0  # padded keys with huge logits and values: any leak dominates the output
        shared_v[~valid] = 1e4
        shared = (shared_k, shared_v, valid)
    return [_to_device(a) for a in args], tuple(_to_device(t) for t in shared)


def _to_device(x):
    if isinstance(x, torch.Tensor):
        return x.to(DEVICE)
    if isinstance(x, (ClusterLayout, BlockMap)):
        return type(x)(*(getattr(x, field.name).to(DEVICE) for field in dataclasses.fields(x)))
    return x


def _run_both(args, shared, compensation, exact_centroids=None, **tiles):
    out = torch.full(args[0].shape[:2] + args[2].shape[-1:], float("nan"), dtype=args[2].dtype, device=DEVICE)
    points = _query_means(args) if exact_centroids is not None else None
    result = sparse_attention(*args, compensation, *shared, out=out, exact_centroids=exact_centroids,
                              query_means=points, **tiles)
    assert result is out
    ref_args = [a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    ref_shared = [s.double() if s is not None and s.is_floating_point() else s for s in shared]
    expected = unpermute(sparse_attention_ref(*ref_args, compensation, *ref_shared, exact_centroids=exact_centroids,
                                              query_means=None if points is None else points.double()), args[3].perm)
    return out, expected


def _query_means(args):
    """The query clusters' means ``(G, QC, D)`` (float32), the expansion points of the compensation's tail."""
    layout = args[3]
    return cluster_means(args[0].float(), layout.labels_sorted, layout.sizes)


def _assert_close(out, expected, tol):
    assert not out.isnan().any(), "some output elements were never written"
    rel = float((out.double() - expected).abs().max() / expected.abs().max())
    assert rel < tol, rel


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["random", "single_huge_cluster", "singletons", "full"])
@pytest.mark.parametrize("compensation", [True, False])
def test_matches_reference(name, compensation, dtype):
    args, _ = _case(name, seed=len(name), dtype=dtype)
    out, expected = _run_both(args, (), compensation, block_m=16, block_n=16)
    _assert_close(out, expected, _TOLERANCE[dtype])


@pytest.mark.parametrize("name", ["random", "single_huge_cluster", "singletons"])
@pytest.mark.parametrize("compensation", [True, False])
def test_remainder_tiles_match_reference(name, compensation):
    args, shared = _case(name, seed=7, n=203, shared_tokens=5)
    for extra in ((), shared):
        out, expected = _run_both(args, extra, compensation, block_m=32, block_n=16, remainder_m=16)
        _assert_close(out, expected, _TOLERANCE[torch.float32])


def test_empty_rows_without_compensation_are_zero():
    args, _ = _case("random", seed=3)
    out, expected = _run_both(args, (), False, block_m=16, block_n=16)
    rows = args[3].perm[0, args[3].offsets[0, 2]: args[3].offsets[0, 3]]
    assert rows.numel() > 0 and bool((out[0, rows] == 0).all()) and bool((expected[0, rows] == 0).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compensation", [True, False])
def test_head_dim_40_other_value_dim_and_odd_tiles(compensation, dtype):
    args, _ = _case("random", seed=7, g=3, n=227, d=40, dv=24, qc=5, kc=19, dtype=dtype)
    out, expected = _run_both(args, (), compensation, block_m=32, block_n=16)
    _assert_close(out, expected, _TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compensation", [True, False])
def test_shared_keys_join_and_padding_never_leaks(compensation, dtype):
    args, shared = _case("random", seed=11, shared_tokens=21, dtype=dtype)
    out, expected = _run_both(args, shared, compensation, block_m=16, block_n=16)
    _assert_close(out, expected, _TOLERANCE[dtype])
    out, expected = _run_both(args, (*shared[:2], None), compensation, block_m=16, block_n=16)
    _assert_close(out, expected, _TOLERANCE[dtype])


@pytest.mark.parametrize("kc", [32, 19])  # whole 16-wide centroid tiles (unmasked loads), and a partial last tile
def test_compensation_ignores_centroids_of_selected_and_empty_clusters(kc):
    args, _ = _case("random", seed=13, kc=kc)  # key clusters kc-2 and kc-1 are empty
    selected = args[5].selected.clone()
    selected[:, :, 0] = True  # cluster 0 is never compensated
    args[5] = BlockMap.from_selection(selected, args[3].sizes, args[4].sizes)
    _, expected = _run_both(args, (), True, block_m=16, block_n=16)
    ignored = torch.zeros(kc, dtype=torch.bool, device=DEVICE)
    ignored[0] = ignored[kc - 2:] = True
    poisoned = list(args)
    poisoned[6] = args[6].masked_fill(ignored[None, :, None], float("nan"))
    poisoned[7] = args[7].masked_fill(ignored[None, :, None], float("inf"))
    _assert_close(sparse_attention(*poisoned, True, block_m=16, block_n=16), expected, _TOLERANCE[torch.float32])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["random", "single_huge_cluster", "singletons"])
@pytest.mark.parametrize("exact", [1, 3, 40])  # 40: more than any row skips (no tail; padded cluster list)
def test_exact_centroids_and_expanded_tail_match_reference(name, exact, dtype):
    args, shared = _case(name, seed=3 + exact, dtype=dtype, shared_tokens=5)
    out, expected = _run_both(args, shared, True, exact, block_m=16, block_n=16)
    _assert_close(out, expected, _TOLERANCE[dtype])


@pytest.mark.parametrize("block_n", [64, 128])
def test_key_tiles_whose_range_starts_span_several_words(block_n):
    """A key tile of 64 or 128 positions keeps its range starts in 2 or 4 words; with clusters of one
    token, selected every other one, ranges start in every word and on its first and last bits."""
    args, _ = _case("singletons", seed=7, n=300)
    out, expected = _run_both(args, (), True, block_m=16, block_n=block_n)
    _assert_close(out, expected, _TOLERANCE[torch.float32])


@pytest.mark.parametrize("exact, block_n", [(3, 64), (20, 64), (40, 32)])
def test_listed_centroids_in_tiles_narrower_than_the_key_tiles(exact, block_n):
    """The listed clusters are walked in tiles of ``T`` rounded up to a power of two (at most ``block_n``):
    one partial tile, and two tiles, each narrower than or equal to the key tile."""
    args, shared = _case("singletons", seed=31 + exact, shared_tokens=5)
    out, expected = _run_both(args, shared, True, exact, block_m=16, block_n=block_n)
    _assert_close(out, expected, _TOLERANCE[torch.float32])


@pytest.mark.parametrize("dtype", DTYPES)
def test_expanded_tail_with_head_dim_40_and_remainder_tiles(dtype):
    args, _ = _case("random", seed=17, g=3, n=227, d=40, dv=24, qc=5, kc=19, dtype=dtype)
    out, expected = _run_both(args, (), True, 2, block_m=32, block_n=16, remainder_m=16)
    _assert_close(out, expected, _TOLERANCE[dtype])


def test_expanded_tail_differs_from_full_compensation_and_vanishes_without_tail():
    """The tail term is used (a kernel that dropped it, or kept every centroid, would fail here); with a
    list longer than any row's skipped clusters the result is today's full compensation."""
    args, _ = _case("random", seed=19)
    points = _query_means(args)
    full = sparse_attention(*args, True, block_m=16, block_n=16)
    tailed = sparse_attention(*args, True, block_m=16, block_n=16, exact_centroids=2, query_means=points)
    listed = sparse_attention(*args, True, block_m=16, block_n=16, exact_centroids=11, query_means=points)
    assert float((tailed - full).abs().max()) > 1e-3
    _assert_close(listed, full.double(), _TOLERANCE[torch.float32])


def test_expanded_tail_ignores_means_of_empty_clusters():
    args, _ = _case("random", seed=23, kc=19)  # key clusters 17 and 18 are empty
    _, expected = _run_both(args, (), True, 3, block_m=16, block_n=16)
    ignored = torch.zeros(19, dtype=torch.bool, device=DEVICE)
    ignored[17:] = True
    poisoned = list(args)
    poisoned[6] = args[6].masked_fill(ignored[None, :, None], float("nan"))
    poisoned[7] = args[7].masked_fill(ignored[None, :, None], float("inf"))
    out = sparse_attention(*poisoned, True, block_m=16, block_n=16, exact_centroids=3, query_means=_query_means(args))
    _assert_close(out, expected, _TOLERANCE[torch.float32])


@pytest.mark.parametrize("n", [70, 128])  # 128 keys: every row is full key tiles only, no masked last tile
def test_full_selection_is_exact_attention(n):
    args, _ = _case("full", seed=5, g=1, n=n, qc=4, kc=6)
    q = unpermute(args[0], args[3].perm)
    k, v = unpermute(args[1], args[4].perm), unpermute(args[2], args[4].perm)
    out = sparse_attention(*args, True, block_m=16, block_n=16)
    torch.testing.assert_close(out, torch.softmax(args[8] * q @ k.mT, -1) @ v, rtol=1e-5, atol=1e-5)


def test_a_given_plan_gives_the_same_output_and_one_for_other_tiles_is_refused():
    """A reusing call passes the plan its routing was made with: the output is the plan-building call's,
    bit for bit; a plan for other tiles (or without the remainder list) is an error, not wrong rows."""
    args, shared = _case("singletons", seed=29, shared_tokens=5)
    launch = dict(block_m=32, block_n=16, remainder_m=16)
    built = sparse_attention(*args, True, *shared, **launch)
    plan = sparse_attention_plan(args[3], args[4], args[5], True, num_shared=5, **launch)
    assert torch.equal(sparse_attention(*args, True, *shared, plan=plan, **launch), built)
    with pytest.raises(ValueError, match="plan.tile_range is .* made for other layouts or tiles"):
        sparse_attention(*args, True, *shared, plan=sparse_attention_plan(args[3], args[4], args[5], True,
                                                                          block_m=32, block_n=32), block_m=32,
                         block_n=16)
    with pytest.raises(ValueError, match="plan.remainder_work is absent but remainder_m=16"):
        sparse_attention(*args, True, *shared, plan=sparse_attention_plan(args[3], args[4], args[5], True,
                                                                          block_m=32, block_n=16), **launch)


@pytest.mark.parametrize("exact", [None, 3])
def test_queries_read_in_place_through_the_permutation(exact):
    """Queries in their original order, as a token-major tensor seen head-major (strided rows), give the
    sorted path's output bit for bit: the kernel reads row ``perm[r]`` where the sorted path reads ``r``."""
    args, shared = _case("singletons", seed=37, g=3, shared_tokens=5)
    tail = {} if exact is None else {"exact_centroids": exact, "query_means": _query_means(args)}
    launch = dict(block_m=32, block_n=16, remainder_m=16, **tail)
    original = unpermute(args[0], args[3].perm)
    token_major = original.transpose(0, 1).contiguous().transpose(0, 1)  # (G, N, D) view, row stride G·D
    assert token_major.stride(1) == original.shape[0] * original.shape[2]
    sorted_out = sparse_attention(*args, True, *shared, **launch)
    in_place = sparse_attention(token_major, *args[1:], True, *shared, queries_in_place=True, **launch)
    assert torch.equal(in_place, sorted_out)


def test_rejects_bad_inputs():
    args, _ = _case("random", g=1, n=40)
    with pytest.raises(ValueError, match="keys_sorted has shape"):
        sparse_attention(args[0], args[1][:, :-1], *args[2:], True)
    with pytest.raises(ValueError, match="dtypes differ"):
        sparse_attention(args[0].half(), *args[1:], True)
    with pytest.raises(ValueError, match="float64"):
        sparse_attention(*(a.double() for a in args[:3]), *args[3:], True)
    with pytest.raises(ValueError, match="key_centroids has shape"):
        sparse_attention(*args[:6], args[6][:, :-1], *args[7:], True)
    with pytest.raises(ValueError, match="key_centroids is on meta"):
        sparse_attention(*args[:6], args[6].to("meta"), *args[7:], True)
    with pytest.raises(ValueError, match="block_n=24"):
        sparse_attention(*args, True, block_n=24)
    with pytest.raises(ValueError, match="remainder_m=32 must be .* below block_m=32"):
        sparse_attention(*args, True, block_m=32, remainder_m=32)
    with pytest.raises(ValueError, match="together"):
        sparse_attention(*args, True, torch.randn(1, 3, 16, device=DEVICE))
    with pytest.raises(ValueError, match="shared_valid must be bool"):
        sparse_attention(*args, True, torch.randn(1, 3, 16, device=DEVICE), torch.randn(1, 3, 16, device=DEVICE),
                         torch.ones(1, 3, device=DEVICE))
    with pytest.raises(ValueError, match="out must be"):
        sparse_attention(*args, True, out=torch.empty(1, 40, 15, device=DEVICE))
    with pytest.raises(ValueError, match="exact_centroids needs compensation"):
        sparse_attention(*args, False, exact_centroids=4, query_means=_query_means(args))
    with pytest.raises(ValueError, match="exact_centroids needs query_means"):
        sparse_attention(*args, True, exact_centroids=4)
    with pytest.raises(ValueError, match="exact_centroids needs query_means"):
        sparse_attention(*args, True, exact_centroids=4, query_means=_query_means(args)[:, :-1])
    with pytest.raises(ValueError, match="exact_centroids=0"):
        sparse_attention(*args, True, exact_centroids=0, query_means=_query_means(args))
    for scale in (0.0, -0.25, float("nan")):
        with pytest.raises(ValueError, match="must be positive"):
            sparse_attention(*args[:8], scale, True)
