source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 290 python3 benchmarks/bench_quality.py --regional --clip 16 96 192 --modes ear --budgets 0.07 0.1 --refresh-every 1 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps --json $OUT/quality_long.json --plot $OUT/quality_long.png > $OUT/quality_long.log 2>&1; echo "rc=$?" >> $OUT/quality_long.log
grep -v "it/s\]\|Warn" $OUT/quality_long.log | tail -12
date -u
timeout 290 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.07 --refresh-every 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --profile --json $OUT/e2e_14b_fixture30_profile.json > $OUT/e2e_14b_fixture30_profile.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_fixture30_profile.log
grep -v Warn $OUT/e2e_14b_fixture30_profile.log | grep -v "^$" | grep -A40 "svg_ear@0.07: kernels" | head -45
tail -12 $OUT/e2e_14b_fixture30_profile.log
date -u
