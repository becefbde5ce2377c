# Session 20, call 4 (H100): the plan's key ranges and tile tables in two Triton launches instead of ~100 torch ones.
# GPU tests (bitwise equality with the torch reference, the plan, the kernel, graphs, the op); GPU time per stage
# of fresh calls at the 1.3B operating point and at 14B 720p, 20%, default config: the plan as it was (HEAD's
# attention_plan.py, torch ops) and as it is now.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 -m pytest -q tests/kernels/test_range_tables.py tests/kernels/test_range_tables_ref.py tests/kernels/test_attention_plan.py tests/kernels/test_sparse_attention.py tests/test_graphs.py tests/test_ops.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
D=benchmarks/results/gpu_session20/call4; K=svg_ear_compile/kernels/attention_plan.py
cp $K /tmp/plan_now.py
OP13="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --k-clusters 1024 --top 8 --stages --calls 4 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64"
OP14="--heads 40 --frames 21 --height 45 --width 80 --density 0.2 --top 8 --stages --calls 2"
for V in before now; do
  if [ $V = before ]; then cp $D/attention_plan_before.py $K; else cp /tmp/plan_now.py $K; fi
  timeout 90 python3 benchmarks/profile_op.py $OP13 > $OUT/stages_1p3b_fresh_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_fresh_$V.log
  echo "== 1.3B fresh, plan $V"; grep "per call:" $OUT/stages_1p3b_fresh_$V.log; sed -n '/GPU time per stage/,$p' $OUT/stages_1p3b_fresh_$V.log | grep -A4 "^  plan\|^  attention " | cut -c1-110; grep unprofiled $OUT/stages_1p3b_fresh_$V.log
  timeout 200 python3 benchmarks/profile_op.py $OP14 > $OUT/stages_14b_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_14b_$V.log
  echo "== 14B 20%, plan $V"; grep "per call:" $OUT/stages_14b_$V.log; sed -n '/GPU time per stage/,$p' $OUT/stages_14b_$V.log | grep -A4 "^  plan\|^  attention " | cut -c1-110; grep unprofiled $OUT/stages_14b_$V.log
done
cmp $K /tmp/plan_now.py && echo "plan restored"
date -u
