source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 .gpu/capture.py > $OUT/capture.log 2>&1; echo "capture rc=$?" >> $OUT/capture.log; grep -v Warn $OUT/capture.log | tail -12
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.03 --refresh-every 3 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --profile --json $OUT/e2e_14b_kc512.json > $OUT/e2e_14b_kc512.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_kc512.log
grep -A16 "svg_ear@0.03: kernels" $OUT/e2e_14b_kc512.log | head -18
grep "e2e rc\|^| svg_ear\|^| dense\|^| no_self" $OUT/e2e_14b_kc512.log | tail -6
date -u
