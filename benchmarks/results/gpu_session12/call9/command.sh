# Session 12, call 9 (H100): where a warm 14B call's time goes, KC512 every centroid vs KC1024 exact_centroids=64, fresh and reusing calls.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
P="python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --q-clusters 128 --refresh-every 6 --calls 6 --top 45 --set kmeans_iters=1 --set kmeans_iters_init=10"
timeout 200 $P --k-clusters 512 > $OUT/profile_kc512.log 2>&1; echo "rc=$?" >> $OUT/profile_kc512.log; grep "per call\|unprofiled\|rc=" $OUT/profile_kc512.log
date -u
timeout 200 $P --k-clusters 1024 --set exact_centroids=64 > $OUT/profile_kc1024t64.log 2>&1; echo "rc=$?" >> $OUT/profile_kc1024t64.log; grep "per call\|unprofiled\|rc=" $OUT/profile_kc1024t64.log
date -u
