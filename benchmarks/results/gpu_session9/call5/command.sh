source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
Q="--regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps"
date -u
timeout 270 python3 benchmarks/bench_quality.py $Q --guidance-calls --refresh-every 1 3 6 --json $OUT/quality_two_calls.json --plot $OUT/quality_two_calls.png > $OUT/quality_two_calls.log 2>&1; echo "two-calls rc=$?" >> $OUT/quality_two_calls.log
grep "^ear\|rc=\|dense:" $OUT/quality_two_calls.log | tail -5
date -u
timeout 220 python3 benchmarks/bench_quality.py $Q --refresh-every 1 6 --json $OUT/quality_batched.json --plot $OUT/quality_batched.png > $OUT/quality_batched.log 2>&1; echo "batched rc=$?" >> $OUT/quality_batched.log
grep "^ear\|rc=\|dense:" $OUT/quality_batched.log | tail -5
date -u
