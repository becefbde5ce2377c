source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py tests/test_pipeline.py tests/kernels/test_permute.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
date -u
timeout 270 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.03 --refresh-every 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --profile --json $OUT/e2e_14b_strided.json > $OUT/e2e_14b_strided.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_strided.log
grep -v Warn $OUT/e2e_14b_strided.log | grep -v "^$" | grep -A22 "svg_ear@0.03: kernels" | head -24
grep "svg_ear@0.03 |\|e2e rc" $OUT/e2e_14b_strided.log
date -u
timeout 110 python3 -m svg_ear_compile.demo --no-progress --out $OUT/demo > $OUT/demo.log 2>&1; echo "demo rc=$?" >> $OUT/demo.log
tail -12 $OUT/demo.log
date -u
