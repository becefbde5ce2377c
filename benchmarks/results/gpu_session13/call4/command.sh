# Session 13, call 4 (H100): GPU tests of the one-pass gather+means; 14B op profile; 14B forwards KC1024 T64 at 0.02/0.03, staggered and not.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 110 python3 -m pytest -q -x tests/kernels/test_cluster_stats.py tests/kernels/test_sparse_attention.py tests/test_pipeline.py tests/test_graphs.py tests/test_attention.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?"; tail -2 $OUT/gpu_tests.log
date -u
timeout 80 python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --q-clusters 128 --refresh-every 6 --calls 6 --top 45 --set kmeans_iters=1 --set kmeans_iters_init=10 --k-clusters 1024 --set exact_centroids=64 > $OUT/profile_kc1024t64.log 2>&1; echo "rc=$?" >> $OUT/profile_kc1024t64.log; grep "per call\|unprofiled\|rc=\|_sparse_attention_kernel\|_permute\|_segment" $OUT/profile_kc1024t64.log
date -u
timeout 370 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.02 0.03 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant stagger stagger_refresh=True --json $OUT/e2e_14b.json > $OUT/e2e_14b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b.log
grep -v "^\s*$" $OUT/e2e_14b.log | tail -24
date -u
