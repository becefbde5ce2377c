# Session 19, call 1 (H100): calls reusing a routing run eagerly under cuda_graph="auto" (no input copies into
# graph buffers, no output clone). GPU tests of the graphs; the op at the 1.3B operating point, auto against
# every warm call graphed; the 1.3B forward at budget 0.02 staggered, auto against cuda_graph=true.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q tests/test_graphs.py tests/test_ops.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --refresh-every 6 --calls 6 --top 30 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
timeout 80 python3 benchmarks/profile_op.py $OP > $OUT/profile_auto.log 2>&1; echo "rc=$?" >> $OUT/profile_auto.log
timeout 80 python3 benchmarks/profile_op.py $OP --graph > $OUT/profile_graph.log 2>&1; echo "rc=$?" >> $OUT/profile_graph.log
grep -v "Warn\|warn_once" $OUT/profile_auto.log | head -20; grep "unprofiled\|per call" $OUT/profile_graph.log
date -u
timeout 300 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --variant graphed cuda_graph=true --profile --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
tail -22 $OUT/e2e_1p3b.log
date -u
