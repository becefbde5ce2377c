# Session 20, call 2 (H100): the compensation tail's tables in one kernel (weights, M, W, mu, A and C from the
# row's log weights; two float32 GEMMs and ~12 elementwise launches fewer). GPU tests; GPU time per stage at the
# 1.3B and 14B operating points; the 1.3B forward at budget 0.02, staggered.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q tests/kernels/test_compensation_tail.py tests/kernels/test_sparse_attention.py tests/test_graphs.py tests/test_ops.py -k "tail or exact or graph or op" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
# Stage times with the tail as it was (HEAD's compensation_tail.py) first, then as it is now.
D=benchmarks/results/gpu_session20/call2; K=svg_ear_compile/kernels/compensation_tail.py
cp $K /tmp/tail_now.py
OP="--density 0.02 --q-clusters 128 --top 8 --stages --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
for V in before now; do
  if [ $V = before ]; then cp $D/compensation_tail_before.py $K; else cp /tmp/tail_now.py $K; fi
  timeout 90 python3 benchmarks/profile_op.py --heads 12 --frames 21 --height 30 --width 52 $OP --calls 6 --refresh-every 6 > $OUT/stages_1p3b_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_$V.log
  echo "== 1.3B $V"; sed -n '/GPU time per stage/,/^  permute/p' $OUT/stages_1p3b_$V.log | cut -c1-110; grep unprofiled $OUT/stages_1p3b_$V.log
  timeout 150 python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 $OP --calls 6 --refresh-every 6 > $OUT/stages_14b_$V.log 2>&1; echo "rc=$?" >> $OUT/stages_14b_$V.log
  echo "== 14B $V"; sed -n '/GPU time per stage/,/^  permute/p' $OUT/stages_14b_$V.log | cut -c1-110; grep unprofiled $OUT/stages_14b_$V.log
done
cmp $K /tmp/tail_now.py && echo "tail restored"
date -u
timeout 240 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --profile --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
tail -14 $OUT/e2e_1p3b.log
date -u
