source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.07 --refresh-every 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --json $OUT/e2e_14b_fixture30.json > $OUT/e2e_14b_fixture30.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_fixture30.log
grep -v Warn $OUT/e2e_14b_fixture30.log | grep -v "^$" | tail -14
date -u
timeout 220 python3 benchmarks/bench_quality.py --regional --modes ear --budgets 0.1 0.2 --refresh-every 1 2 3 4 --top-ps --json $OUT/quality_refresh.json --plot $OUT/quality_refresh.png > $OUT/quality_refresh.log 2>&1; echo "rc=$?" >> $OUT/quality_refresh.log
grep -v "it/s\]\|Warn" $OUT/quality_refresh.log | tail -16
date -u
