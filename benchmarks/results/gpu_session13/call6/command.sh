# Session 13, call 6 (H100): Wan2.1-1.3B 480p forwards again, now warmed up over one whole refresh cycle (every layer's CUDA graphs captured before timing).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 400 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant stagger stagger_refresh=True --variant kc512_stagger num_k_clusters=512 stagger_refresh=True --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "^\s*$" $OUT/e2e_1p3b.log | tail -20
date -u
