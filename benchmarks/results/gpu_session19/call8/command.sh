# Session 19, call 8 (H100): GPU time per pipeline stage (profile_op.py --stages, kernels attributed through their
# launch), a fresh call at the 1.3B operating point and at 14B 720p with the default config at 20%.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --top 8 --stages --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
timeout 90 python3 benchmarks/profile_op.py $OP --calls 4 > $OUT/stages_1p3b_fresh.log 2>&1; echo "rc=$?" >> $OUT/stages_1p3b_fresh.log
sed -n '/GPU time per stage/,$p' $OUT/stages_1p3b_fresh.log | cut -c1-110
timeout 200 python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --density 0.2 --top 8 --stages --calls 2 > $OUT/stages_14b.log 2>&1; echo "rc=$?" >> $OUT/stages_14b.log
grep "per call\|shape" $OUT/stages_14b.log; sed -n '/GPU time per stage/,$p' $OUT/stages_14b.log | cut -c1-110
