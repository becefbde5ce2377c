# Session 20, call 7 (H100): routing's greedy fill (guaranteed set, then the fill by priority) in one Triton
# program per row instead of ~30 torch launches. GPU tests; GPU time per stage of fresh calls (1.3B operating
# point; 14B 720p 20% default config) with the torch fill (HEAD's pipeline.py) and the Triton one; the whole
# op at both shapes with the default config (issue 4's table).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 -m pytest -q tests/kernels/test_routing.py tests/kernels/test_routing_ref.py tests/kernels/test_range_tables.py tests/kernels/test_attention_plan.py tests/test_graphs.py tests/test_ops.py tests/test_pipeline.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -2 $OUT/gpu_tests.log; grep "^FAILED" $OUT/gpu_tests.log | head
D=benchmarks/results/gpu_session20/call7; K=svg_ear_compile/pipeline.py
cp $K /tmp/pipeline_now.py
OP13="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --k-clusters 1024 --top 8 --stages --calls 4 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64"
OP14="--heads 40 --frames 21 --height 45 --width 80 --density 0.2 --top 8 --stages --calls 2"
for V in before now; do
  if [ $V = before ]; then cp $D/pipeline_before.py $K; else cp /tmp/pipeline_now.py $K; fi
  timeout 90 python3 benchmarks/profile_op.py $OP13 > $OUT/stages_1p3b_fresh_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_fresh_$V.log
  echo "== 1.3B fresh, routing $V"; grep "per call:" $OUT/stages_1p3b_fresh_$V.log; sed -n '/GPU time per stage/,$p' $OUT/stages_1p3b_fresh_$V.log | grep -A3 "^  routing" | cut -c1-110
  timeout 150 python3 benchmarks/profile_op.py $OP14 > $OUT/stages_14b_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_14b_$V.log
  echo "== 14B 20%, routing $V"; grep "per call:" $OUT/stages_14b_$V.log; sed -n '/GPU time per stage/,$p' $OUT/stages_14b_$V.log | grep -A3 "^  routing" | cut -c1-110
done
cmp $K /tmp/pipeline_now.py && echo "pipeline restored"
date -u
timeout 120 python3 benchmarks/bench_op.py --impls triton --json $OUT/op_1p3b.json > $OUT/op_1p3b.log 2>&1; echo "rc=$?" >> $OUT/op_1p3b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_1p3b.log | tail -8 | cut -c1-300
timeout 150 python3 benchmarks/bench_op.py --impls triton --heads 40 --frames 21 --height 45 --width 80 --json $OUT/op_14b.json > $OUT/op_14b.log 2>&1; echo "rc=$?" >> $OUT/op_14b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_14b.log | tail -8 | cut -c1-300
date -u
