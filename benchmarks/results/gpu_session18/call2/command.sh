# Session 18, call 2 (H100): why call 1's in-place run was slower (copied inputs first this time, both profiled); issue 4's kernel table with today's kernel; the op per stage at 14B 720p.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --copied-inputs --profile --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "^\s*$" $OUT/e2e_1p3b.log | grep -v "Warn\|warn_once" | head -70
date -u
timeout 200 python3 benchmarks/bench_kernels.py --json $OUT/kernels.json > $OUT/kernels.log 2>&1; echo "kernels rc=$?" >> $OUT/kernels.log
tail -30 $OUT/kernels.log
date -u
