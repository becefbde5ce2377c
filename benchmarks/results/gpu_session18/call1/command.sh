# Session 18, call 1 (H100): graphs reading Q/K/V in place. GPU tests (graphs, pipeline); Wan2.1-1.3B 480p op profile at the operating point (2%, QC128 KC1024 T64, r=6), inputs read in place vs copied in; 1.3B forwards at budget 0.02, staggered, in place vs copied side by side.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q -x tests/test_graphs.py tests/test_pipeline.py tests/test_ops.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?"; tail -2 $OUT/gpu_tests.log
date -u
OP="--heads 12 --frames 21 --height 30 --width 52 --density 0.02 --q-clusters 128 --refresh-every 6 --calls 6 --top 12 --set kmeans_iters=1 --set kmeans_iters_init=10 --set exact_centroids=64 --k-clusters 1024"
for mode in in_place copied; do
  extra=""; [ $mode = copied ] && extra="--copied-inputs"
  timeout 60 python3 benchmarks/profile_op.py $OP $extra > $OUT/profile_1p3b_$mode.log 2>&1; echo "rc=$?" >> $OUT/profile_1p3b_$mode.log
  echo "== $mode"; grep "per call\|unprofiled\|rc=\|_sparse\|_segment\|_tail\|Memcpy" $OUT/profile_1p3b_$mode.log
done
date -u
timeout 300 python3 benchmarks/bench_e2e.py --models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --copied-inputs --json $OUT/e2e_1p3b.json > $OUT/e2e_1p3b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b.log
grep -v "^\s*$" $OUT/e2e_1p3b.log | tail -22
date -u
