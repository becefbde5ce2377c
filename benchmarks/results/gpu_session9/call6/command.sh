source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 230 python3 benchmarks/bench_quality.py --regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 --q-clusters 128 --k-clusters 256 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps --guidance-calls --refresh-every 2 6 --json $OUT/quality_two_calls_kc256.json --plot $OUT/quality_two_calls_kc256.png > $OUT/quality_two_calls_kc256.log 2>&1; echo "rc=$?" >> $OUT/quality_two_calls_kc256.log
grep "^ear\|rc=\|dense:" $OUT/quality_two_calls_kc256.log | tail -4
date -u
timeout 320 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.03 --refresh-every 6 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant kc256 num_k_clusters=256 --json $OUT/e2e_14b_r6.json > $OUT/e2e_14b_r6.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_r6.log
grep "e2e rc\|^| svg_ear\|^| dense\|^| no_self" $OUT/e2e_14b_r6.log | tail -7
date -u
