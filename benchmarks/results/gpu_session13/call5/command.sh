# Session 13, call 5 (H100): the GPU tests call 4's time limit cut off; Wan2.1-1.3B 480p forwards at budget 0.02 (KC1024 T64, r=6), staggered and not, and KC512 staggered.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 240 python3 -m pytest -q -x tests/test_pipeline.py tests/test_graphs.py tests/test_attention.py tests/test_attention_joint.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?"; tail -2 $OUT/gpu_tests.log
date -u
timeout 280 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant stagger stagger_refresh=True --variant kc512_stagger num_k_clusters=512 stagger_refresh=True --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "^\s*$" $OUT/e2e_1p3b.log | tail -20
date -u
