source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 540 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 2 --budgets 0.1 --refresh-every 2 --json $OUT/e2e_14b_r2.json > $OUT/e2e_14b_r2.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_r2.log
grep -v Warn $OUT/e2e_14b_r2.log | tail -20
date -u
