# Session 20, call 5 (H100): the plan's range tables in Triton, with CPU plans falling back to torch. The plan's
# GPU tests; the whole op at 1.3B 480p with the default config (every call routes afresh, so the plan weighs
# most); the 1.3B forward at budget 0.02, staggered (as session 19, call 1).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 100 python3 -m pytest -q tests/kernels/test_attention_plan.py tests/kernels/test_range_tables.py tests/kernels/test_range_tables_ref.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -2 $OUT/gpu_tests.log
timeout 200 python3 benchmarks/bench_op.py --impls triton --json $OUT/op_1p3b.json > $OUT/op_1p3b.log 2>&1; echo "rc=$?" >> $OUT/op_1p3b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_1p3b.log | tail -10 | cut -c1-400
date -u
timeout 230 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "Warn\|warn_once" $OUT/e2e_1p3b.log | tail -16
date -u
