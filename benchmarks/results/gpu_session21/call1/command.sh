# Session 21, call 1 (H100): Wan2.1-1.3B 480p forwards at issue 5's own densities (budgets 0.1/0.2/0.3) and at the
# operating point (0.02), one config (QC128 KC1024 T64, k-means 1/10, refresh 6 staggered), against one dense run;
# then the GPU tests session 20's call 9 did not reach (its limit stopped it at 79%).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 0.1 0.2 0.3 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "Warn\|warn_once" $OUT/e2e_1p3b.log | tail -30
date -u
timeout 200 python3 -m pytest -q tests/test_backend_hunyuan.py tests/test_runtime.py tests/test_record.py tests/fixture/test_shipped.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -4 $OUT/gpu_tests.log; grep "^FAILED" $OUT/gpu_tests.log | head
date -u
