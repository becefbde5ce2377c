"""Experiment (kept out of the tree): what the key loop can reach in Triton 3.6 on this GPU.

Dense attention, keys contiguous or gathered through a row table, with
  MODE 0: pointer loads of contiguous rows
  MODE 1: TMA tensor-descriptor loads (host descriptors)
  MODE 2: pointer loads of rows read from a table (the table is the identity: same data, gathered addresses)
and warp specialisation on or off; tiles (BM, BN, warps, stages). Against cuDNN and flash SDPA.
"""
import argparse
import itertools
import json
import time

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor

_LOG2_E = 1.4426950408889634


@triton.jit
def _dense(q_ptr, k_ptr, v_ptr, o_ptr, desc_k, desc_v, rows_ptr, N, qk_scale,
           D: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, MODE: tl.constexpr, WS: tl.constexpr,
           STAGES: tl.constexpr):
    pid_m = tl.program_id(0)
    g = tl.program_id(1)
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_d = tl.arange(0, D)
    base = g.to(tl.int64) * N * D
    q = tl.load(q_ptr + base + offs_m[:, None] * D + offs_d[None, :])
    m_i = tl.full([BM], float("-inf"), tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc = tl.zeros([BM, D], tl.float32)
    lane = tl.arange(0, BN)
    for start in tl.range(0, N, BN, num_stages=STAGES, warp_specialize=WS):
        if MODE == 1:
            k = desc_k.load([g * N + start, 0])
        elif MODE == 0:
            k = tl.load(k_ptr + base + (start + lane)[:, None] * D + offs_d[None, :])
        else:
            rows = tl.load(rows_ptr + g * N + start + lane)
            k = tl.load(k_ptr + base + rows[:, None] * D + offs_d[None, :])
        s = tl.dot(q, tl.trans(k))
        m_new = tl.maximum(m_i, tl.max(s, 1) * qk_scale)
        p = tl.math.exp2(s * qk_scale - m_new[:, None])
        alpha = tl.math.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        if MODE == 1:
            v = desc_v.load([g * N + start, 0])
        elif MODE == 0:
            v = tl.load(v_ptr + base + (start + lane)[:, None] * D + offs_d[None, :])
        else:
            v = tl.load(v_ptr + base + rows[:, None] * D + offs_d[None, :])
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None])
        m_i = m_new
    out = acc / l_i[:, None]
    tl.store(o_ptr + base + offs_m[:, None] * D + offs_d[None, :], out.to(o_ptr.dtype.element_ty))


def bench(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    G, N, D = args.groups, args.tokens, 128
    torch.manual_seed(0)
    q, k, v = (torch.randn(G, N, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    scale = D ** -0.5
    flops = 4 * G * N * N * D
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None]).squeeze(0)
    rows_table = torch.arange(N, device="cuda", dtype=torch.int32).repeat(G)
    results = []
    from torch.nn.attention import SDPBackend, sdpa_kernel
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("flash", SDPBackend.FLASH_ATTENTION)):
        with sdpa_kernel(backend):
            ms = bench(lambda: F.scaled_dot_product_attention(q[None], k[None], v[None]), args.reps)
        results.append(dict(variant=name, ms=ms, tflops=flops / ms / 1e9))
        print(f"{name:40s} {ms:8.2f} ms {flops / ms / 1e9:7.1f} TFLOP/s", flush=True)
    out = torch.empty_like(q)
    tiles = [(128, 128, 8, 3), (128, 128, 8, 2), (128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 4, 2), (64, 128, 4, 3)]
    for (bm, bn, warps, stages), mode, ws in itertools.product(tiles, (0, 1, 2), (False, True)):
        label = f"mode{mode} ws{int(ws)} {bm}x{bn} w{warps} s{stages}"
        desc_k = TensorDescriptor.from_tensor(k.view(G * N, D), [bn, D])
        desc_v = TensorDescriptor.from_tensor(v.view(G * N, D), [bn, D])
        t0 = time.time()
        try:
            def call():
                _dense[(N // bm, G)](q, k, v, out, desc_k, desc_v, rows_table, N, scale * _LOG2_E,
                                     D=D, BM=bm, BN=bn, MODE=mode, WS=ws, STAGES=stages,
                                     num_warps=warps, num_stages=stages)
            call()
            torch.cuda.synchronize()
            err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
            ms = bench(call, args.reps)
            results.append(dict(variant=label, ms=ms, tflops=flops / ms / 1e9, rel_err=err))
            print(f"{label:40s} {ms:8.2f} ms {flops / ms / 1e9:7.1f} TFLOP/s  rel {err:.1e}  "
                  f"compile+first {time.time() - t0:5.1f} s", flush=True)
        except Exception as exc:  # noqa: BLE001
            msg = str(exc).strip().splitlines()
            results.append(dict(variant=label, error=msg[-1] if msg else repr(exc)))
            print(f"{label:40s} ERROR {type(exc).__name__}: {msg[-1][:160] if msg else ''}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), shape=[G, N, D], results=results), f, indent=1)


if __name__ == "__main__":
    main()
