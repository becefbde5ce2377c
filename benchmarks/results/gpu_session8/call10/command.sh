source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 270 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.03 --refresh-every 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --set cuda_graph=false --json $OUT/e2e_14b_eager.json > $OUT/e2e_14b_eager.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_eager.log
grep "svg_ear@0.03 |\|e2e rc\|^no_self\|^dense" $OUT/e2e_14b_eager.log
date -u
timeout 180 python3 -m pytest -q -p no:cacheprovider tests/test_examples.py tests/test_benchmarks_smoke.py > $OUT/gpu_tests_examples.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests_examples.log
grep -E "passed|failed|rc=|Error" $OUT/gpu_tests_examples.log | tail -8
date -u
