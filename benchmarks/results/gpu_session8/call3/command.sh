source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 2 --budgets 0.1 --refresh-every 2 --profile --json $OUT/e2e_14b_profile.json > $OUT/e2e_14b_profile.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_profile.log
grep -v Warn $OUT/e2e_14b_profile.log | grep -v "^$" | tail -75
date -u
timeout 200 python3 benchmarks/bench_kernels.py --shapes wan-14b-720p --densities 0.1 --tiles 128x128x8x3x64 128x128x8x3x32 --json $OUT/kernels_remainder.json > $OUT/kernels_remainder.log 2>&1; echo "rc=$?" >> $OUT/kernels_remainder.log
grep "kernel alone\|rc=" $OUT/kernels_remainder.log
date -u
