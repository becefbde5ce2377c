# Session 12, call 6 (H100): KC1024 exact_centroids=64 at lower budgets: fixture quality (two calls, r=6) and Wan2.1-14B 720p forwards.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
Q="--regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps --guidance-calls --refresh-every 6"
timeout 230 python3 benchmarks/bench_quality.py $Q --budgets 0.015 0.02 --json $OUT/quality_kc1024t64_low.json --plot $OUT/quality_kc1024t64_low.png > $OUT/quality_kc1024t64_low.log 2>&1; echo "rc=$?" >> $OUT/quality_kc1024t64_low.log
grep "^ear\|rc=\|dense:" $OUT/quality_kc1024t64_low.log | tail -4
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.015 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --json $OUT/e2e_14b_low.json > $OUT/e2e_14b_low.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_low.log
grep "e2e rc\|^| svg_ear\|^| dense\|^| no_self" $OUT/e2e_14b_low.log | tail -7
date -u
