# Session 20, call 3 (H100): the compensation tail's mu taken from the centroids rounded to the attention dtype.
# GPU tests; the guided long-clip fixture with its shipped profile, the tail as it was (3f4c955) and as it is now.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 -m pytest -q tests/kernels/test_compensation_tail.py tests/fixture/test_shipped.py "tests/kernels/test_sparse_attention.py" -k "tail or exact or shipped or slope" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log
D=benchmarks/results/gpu_session20/call3; K=svg_ear_compile/kernels/compensation_tail.py
cp $K /tmp/tail_now.py
for V in before now; do
  if [ $V = before ]; then cp $D/compensation_tail_before.py $K; else cp /tmp/tail_now.py $K; fi
  timeout 200 python3 benchmarks/bench_tuned.py --no-plain --no-searched --rounds 2 --runs 1 --json $OUT/tuned_$V.json > $OUT/tuned_$V.log 2>&1; echo "rc=$?" >> $OUT/tuned_$V.log
  echo "== $V"; grep -v "Warn\|warn_once" $OUT/tuned_$V.log | tail -7
done
cmp $K /tmp/tail_now.py && echo "tail restored"
date -u
