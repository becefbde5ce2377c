# Session 14, call 3 (H100): work head by head + short tiles for few keys per query cluster. GPU tests; the tile threshold checked at 1.3B@0.03 and 14B@0.015; a 1.3B op profile; Wan2.1-1.3B 480p forwards at budgets 0.02/0.03, staggered (r=6, QC128 KC1024 T64).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q -x tests/kernels/test_sparse_attention.py tests/kernels/test_attention_plan.py tests/kernels/test_tiles.py tests/test_pipeline.py tests/test_graphs.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?"; tail -2 $OUT/gpu_tests.log
date -u
T="--tiles 128x128x8x3 64x64x4x3 64x64x4x2 --order head"
timeout 60 python3 benchmarks/sweep_attention_tiles.py --heads 12 --density 0.03 $T --json $OUT/tiles_1p3b_003.json > $OUT/tiles_1p3b_003.log 2>&1; grep -v "Warn\|warn_once" $OUT/tiles_1p3b_003.log | head -6
timeout 80 python3 benchmarks/sweep_attention_tiles.py --heads 40 --frames 21 --height 45 --width 80 --density 0.015 $T --json $OUT/tiles_14b_0015.json > $OUT/tiles_14b_0015.log 2>&1; grep -v "Warn\|warn_once" $OUT/tiles_14b_0015.log | head -6
date -u
timeout 60 python3 benchmarks/profile_op.py --heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --refresh-every 6 --calls 6 --top 12 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024 > $OUT/profile_1p3b.log 2>&1; echo "rc=$?" >> $OUT/profile_1p3b.log
grep "per call\|unprofiled\|rc=\|_sparse\|_segment\|_tail" $OUT/profile_1p3b.log
date -u
timeout 280 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 0.03 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "^\s*$" $OUT/e2e_1p3b.log | tail -16
date -u
