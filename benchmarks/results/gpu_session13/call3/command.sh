# Session 13, call 3 (H100): stagger_refresh — fixture quality (two calls, r=6, KC1024 T64) and Wan2.1-14B forwards staggered vs not, per step.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
Q="--regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps --guidance-calls --refresh-every 6 --set stagger_refresh=True"
timeout 200 python3 benchmarks/bench_quality.py $Q --budgets 0.02 0.03 --json $OUT/quality_stagger.json --plot $OUT/quality_stagger.png > $OUT/quality_stagger.log 2>&1; echo "rc=$?" >> $OUT/quality_stagger.log
grep "^ear\|rc=\|dense:" $OUT/quality_stagger.log | tail -4
date -u
timeout 320 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant stagger stagger_refresh=True --json $OUT/e2e_14b_stagger.json > $OUT/e2e_14b_stagger.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_stagger.log
grep -v "^\s*$" $OUT/e2e_14b_stagger.log | tail -20
date -u
