# The per-layer objective's oracle: exact attention by query chunks equals one float64 SDPA call.
import math

import pytest
import torch
import torch.nn.functional as F

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.tuner._objective import LayerEvaluator, exact_attention, output_psnr


@pytest.mark.parametrize("chunk_rows", [7, 64, 1024])
def test_chunked_exact_attention_equals_sdpa(chunk_rows):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 100, 16, generator=gen) for _ in range(3))
    out = exact_attention(q, k, v, chunk_rows=chunk_rows)
    assert out.dtype == torch.float64 and out.shape == (1, 2, 100, 16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q.double(), k.double(), v.double()),
                               rtol=1e-12, atol=1e-12)


def test_output_psnr_is_the_direct_formula():
    reference = torch.linspace(-1.0, 3.0, 50, dtype=torch.float64)
    approx = reference + 0.01
    assert output_psnr(reference, approx) == pytest.approx(10 * math.log10(4.0**2 / 1e-4), abs=1e-6)
    assert output_psnr(reference, reference) == 100.0


def test_a_run_needs_at_least_one_step():
    sample = {"seed": 0, "step": 0, **{name: torch.randn(1, 1, 32, 8) for name in ("q", "k", "v")}}
    with pytest.raises(ValueError, match="run_calls=0"):
        LayerEvaluator([sample], SvgEarConfig(), full_heads=1, run_calls=0)


def test_a_batch_of_two_counts_both_videos_under_shared_routing():
    # Batched guidance captures the op's whole batch: the PSNR is over both videos, routed alike.
    from svg_ear_compile import SvgEarState, svg_ear_attention
    from svg_ear_compile.workloads import video_qkv

    q, k, v = video_qkv(batch=2, heads=2, frames=2, height=8, width=8, head_dim=16, seed=5)
    sample = {"seed": 0, "step": 0, "q": q, "k": k, "v": v}
    base = SvgEarConfig(num_q_clusters=8, num_k_clusters=16, min_seq_len=0, batch_shares_routing=True)
    measured = LayerEvaluator([sample], base, full_heads=2, run_calls=1).evaluate({"budget": 0.3})
    out = svg_ear_attention(q, k, v, base.replace(budget=0.3), state=SvgEarState())
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double())
    assert measured.psnr_db == pytest.approx(output_psnr(exact, out), abs=1e-6)
    assert measured.psnr_db != pytest.approx(output_psnr(exact[:1], out[:1]), abs=1e-3)
