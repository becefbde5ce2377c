# Session 16, call 4 (H100): where an op call's time goes at the guided long fixture's shape (B=2 sharing routing, 4 heads x 73,728 tokens x 64), for the call-8 profile's config family at budgets 0.03, 0.1 and 0.2 and the operating point at 0.16.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks
SHAPE="--batch 2 --heads 4 --frames 16 --height 48 --width 96 --head-dim 64 --refresh-every 6 --calls 6 --top 30 --set batch_shares_routing=true"
FAMILY="--q-clusters 256 --k-clusters 1024 --set kmeans_iters=2 --set kmeans_iters_init=11 --set cost_exponent=1.22 --set exact_centroids=128 --set block_n=64"
for d in 0.03 0.1 0.2; do timeout 100 python3 profile_op.py $SHAPE $FAMILY --density $d > $OUT/family_$d.log 2>&1; echo "rc=$?" >> $OUT/family_$d.log; done
timeout 100 python3 profile_op.py $SHAPE $FAMILY --density 0.1 --eager > $OUT/family_0.1_eager.log 2>&1; echo "rc=$?" >> $OUT/family_0.1_eager.log
timeout 100 python3 profile_op.py $SHAPE --q-clusters 128 --k-clusters 1024 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --density 0.16 > $OUT/op_0.16.log 2>&1; echo "rc=$?" >> $OUT/op_0.16.log
for f in $OUT/*.log; do echo "== $f"; grep -v Warning $f | grep -v _warn_once | head -24; tail -2 $f; done
date -u
