# Session 19, call 5 (H100): the compensation tail's weights in one Triton kernel (was ~40 torch launches).
# GPU tests of the tail and the attention; the op's stages at the 1.3B operating point; the 1.3B forward
# at budget 0.02 staggered; the guided long-clip fixture with its shipped profile (128 listed centroids).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 -m pytest -q tests/kernels/test_compensation_tail.py tests/kernels/test_sparse_attention.py tests/test_pipeline.py tests/test_graphs.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --top 12 --stages --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
timeout 90 python3 benchmarks/profile_op.py $OP --calls 6 --refresh-every 6 > $OUT/stages_mixed.log 2>&1; echo "rc=$?" >> $OUT/stages_mixed.log
grep -v "Warn\|warn_once" $OUT/stages_mixed.log | cut -c1-120 | head -22; grep "unprofiled" $OUT/stages_mixed.log
date -u
timeout 240 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --profile --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
tail -16 $OUT/e2e_1p3b.log
date -u
timeout 200 python3 benchmarks/bench_tuned.py --no-plain --no-searched --rounds 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "rc=$?" >> $OUT/tuned.log
grep -v "Warn\|warn_once" $OUT/tuned.log | tail -7
date -u
