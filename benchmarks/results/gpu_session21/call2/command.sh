# Session 21, call 2 (H100): Wan2.1-14B 720p forwards at issue 5's own densities (budgets 0.1/0.2/0.3) and at the
# operating point (0.02), one config (QC128 KC1024 T64, k-means 1/10, refresh 6 staggered), against one dense run.
# 14B calls run eagerly (no CUDA graphs to capture), so one warm-up forward, then six timed (a multiple of refresh_every).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 560 python3 benchmarks/bench_e2e.py --models 14b --regional --warmup 1 --repeats 6 --budgets 0.02 0.1 0.2 0.3 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_14b.json > $OUT/e2e_14b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b.log
grep -v "Warn\|warn_once" $OUT/e2e_14b.log | tail -30
date -u
