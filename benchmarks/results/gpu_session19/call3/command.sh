# Session 19, call 3 (H100): kernels of a fresh (routing) call at the 1.3B operating point, graphed (refresh_every 1),
# to find what the ~1.9 ms a fresh call adds over a reusing one is made of.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --calls 5 --top 70 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
timeout 90 python3 benchmarks/profile_op.py $OP > $OUT/profile_fresh.log 2>&1; echo "rc=$?" >> $OUT/profile_fresh.log
grep -v "Warn\|warn_once" $OUT/profile_fresh.log | cut -c1-130
