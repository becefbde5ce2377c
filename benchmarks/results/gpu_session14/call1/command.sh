# Session 14, call 1 (H100): where a Wan2.1-1.3B 480p op call's time goes (2% density, QC128 KC1024 T64, r=6): graphed, eager, and KC512.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
C="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --refresh-every 6 --calls 6 --top 40 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64"
timeout 100 python3 benchmarks/profile_op.py $C --k-clusters 1024 > $OUT/profile_1p3b_graph.log 2>&1; echo "rc=$?" >> $OUT/profile_1p3b_graph.log
grep "per call\|unprofiled\|rc=" $OUT/profile_1p3b_graph.log
timeout 100 python3 benchmarks/profile_op.py $C --k-clusters 1024 --eager > $OUT/profile_1p3b_eager.log 2>&1; echo "rc=$?" >> $OUT/profile_1p3b_eager.log
grep -v Warn $OUT/profile_1p3b_eager.log | head -50
timeout 100 python3 benchmarks/profile_op.py $C --k-clusters 512 > $OUT/profile_1p3b_kc512.log 2>&1; echo "rc=$?" >> $OUT/profile_1p3b_kc512.log
grep "per call\|unprofiled\|rc=\|_sparse\|_segment\|_tail" $OUT/profile_1p3b_kc512.log
timeout 60 python3 - > $OUT/dense_1p3b.log 2>&1 <<'PY'
import torch, torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
q, k, v = (torch.randn(1, 12, 32760, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
for b in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION):
    with sdpa_kernel(b):
        for _ in range(3): F.scaled_dot_product_attention(q, k, v)
        s, e = torch.cuda.Event(True), torch.cuda.Event(True); s.record()
        for _ in range(20): F.scaled_dot_product_attention(q, k, v)
        e.record(); torch.cuda.synchronize(); print(b, s.elapsed_time(e) / 20, "ms")
PY
cat $OUT/dense_1p3b.log
date -u
