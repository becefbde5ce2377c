# Session 21, call 3 (H100): a rising timestep starts a layer's new video cold. GPU tests of it (and of the op's
# no-host-sync check, which now reads the timestep in every call); then the 1.3B forward at budget 0.02, staggered,
# before (HEAD~1: no timestep read, one timestep tensor for every forward) and after (a timestep tensor per
# forward, read once per forward by the op), in one call.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q tests/test_runtime.py tests/test_record.py tests/test_ops.py tests/test_attention.py -k "not large_sequence" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -3 $OUT/gpu_tests.log; grep "^FAILED" $OUT/gpu_tests.log | head
D=benchmarks/results/gpu_session21/call3
for f in svg_ear_compile/attention.py svg_ear_compile/runtime.py svg_ear_compile/state.py benchmarks/bench_e2e.py; do cp $f /tmp/$(basename $f .py)_now.py; done
E2E="--models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True"
for V in before now; do
  for f in svg_ear_compile/attention.py svg_ear_compile/runtime.py svg_ear_compile/state.py benchmarks/bench_e2e.py; do
    if [ $V = before ]; then cp $D/$(basename $f .py)_before.py $f; else cp /tmp/$(basename $f .py)_now.py $f; fi
  done
  date -u
  timeout 190 python3 benchmarks/bench_e2e.py $E2E --json $OUT/e2e_1p3b_$V.json > $OUT/e2e_1p3b_$V.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b_$V.log
  echo "== $V"; grep -v "Warn\|warn_once" $OUT/e2e_1p3b_$V.log | grep "svg_ear@\|dense |\|no_self_attn |\|rc="
done
git status --short svg_ear_compile benchmarks/bench_e2e.py
date -u
