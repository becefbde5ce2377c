# Session 14, call 4 (H100): work head by head (tiles unchanged at 14B: 2,268 keys per query cluster at 3%). A 14B op profile; Wan2.1-14B 720p forwards at budgets 0.02/0.03, staggered (r=6, QC128 KC1024 T64).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 80 python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --q-clusters 128 --refresh-every 6 --calls 6 --top 12 --set kmeans_iters=1 --set kmeans_iters_init=10 --k-clusters 1024 --set exact_centroids=64 > $OUT/profile_14b.log 2>&1; echo "rc=$?" >> $OUT/profile_14b.log
grep "per call\|unprofiled\|rc=\|_sparse\|_segment\|_tail" $OUT/profile_14b.log
date -u
timeout 430 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.02 0.03 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_14b.json > $OUT/e2e_14b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b.log
grep -v "^\s*$" $OUT/e2e_14b.log | tail -16
date -u
