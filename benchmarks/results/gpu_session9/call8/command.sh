source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_graphs.py tests/test_pipeline.py tests/test_attention.py -k "batch_share or graphed or triton" > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests.log; tail -3 $OUT/gpu_tests.log
date -u
timeout 260 python3 benchmarks/bench_quality.py --regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --set batch_shares_routing=true --top-ps --refresh-every 1 3 --json $OUT/quality_batch_shared.json --plot $OUT/quality_batch_shared.png > $OUT/quality_batch_shared.log 2>&1; echo "rc=$?" >> $OUT/quality_batch_shared.log
grep "^ear\|rc=\|dense:" $OUT/quality_batch_shared.log | tail -4
date -u
