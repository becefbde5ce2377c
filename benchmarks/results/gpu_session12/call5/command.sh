# Session 12, call 5 (H100): the moment kernel with transposed bf16 centroids; Wan2.1-14B 720p forwards, KC512 every centroid vs KC1024 exact_centroids=64, r=6.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 60 python3 -m pytest -q tests/kernels/test_compensation_tail.py > $OUT/gpu_tests.log 2>&1; tail -1 $OUT/gpu_tests.log
(cd benchmarks && timeout 90 python3 bench_compensation.py --heads 40 --frames 21 --height 45 --width 80 --budgets 0.03 --k-clusters 1024 --exact 64 --json $OUT/comp14b.json > $OUT/comp14b.log 2>&1; tail -5 $OUT/comp14b.log)
date -u
timeout 400 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.03 --refresh-every 6 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant kc1024t64 num_k_clusters=1024 exact_centroids=64 --json $OUT/e2e_14b_r6.json > $OUT/e2e_14b_r6.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_r6.log
grep "e2e rc\|^| svg_ear\|^| dense\|^| no_self" $OUT/e2e_14b_r6.log | tail -7
date -u
