# Session 19, call 9 (H100): GPU time per pipeline stage (profile_op.py --stages, GPU-side range annotations no longer
# counted as kernels): fresh calls at the 1.3B operating point, and calls mixed as refresh_every=6 makes them.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --top 8 --stages --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
timeout 90 python3 benchmarks/profile_op.py $OP --calls 4 > $OUT/stages_1p3b_fresh.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_fresh.log
sed -n '/GPU time per stage/,$p' $OUT/stages_1p3b_fresh.log | cut -c1-110
timeout 90 python3 benchmarks/profile_op.py $OP --calls 6 --refresh-every 6 > $OUT/stages_1p3b_mixed.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_mixed.log
sed -n '/GPU time per stage/,$p' $OUT/stages_1p3b_mixed.log | cut -c1-110
