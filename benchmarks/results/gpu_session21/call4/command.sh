# Session 21, call 4 (H100): the hook now copies a published CUDA timestep to the host ahead of the op's read.
# GPU tests of it; then the 1.3B forward at budget 0.02, staggered, three ways in one call: before (no timestep
# read, one timestep tensor for all forwards), read (a timestep tensor per forward, read by the op: call 3's code)
# and prefetch (the same, the read waiting on the copy started by the hook).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 100 python3 -m pytest -q tests/test_runtime.py tests/test_ops.py -k "cuda_timestep or host or second_video" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
grep "passed\|failed\|rc=" $OUT/gpu_tests.log; grep "^FAILED" $OUT/gpu_tests.log | head
D=benchmarks/results/gpu_session21/call4
FILES="svg_ear_compile/attention.py svg_ear_compile/runtime.py svg_ear_compile/state.py benchmarks/bench_e2e.py"
for f in $FILES; do cp $f /tmp/$(basename $f .py)_now.py; done
E2E="--models 1.3b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True"
for V in before read prefetch; do
  for f in $FILES; do cp /tmp/$(basename $f .py)_now.py $f; done
  if [ $V = before ]; then for f in $FILES; do cp $D/$(basename $f .py)_before.py $f; done; fi
  if [ $V = read ]; then cp $D/runtime_read.py svg_ear_compile/runtime.py; fi
  date -u
  timeout 150 python3 benchmarks/bench_e2e.py $E2E --json $OUT/e2e_1p3b_$V.json > $OUT/e2e_1p3b_$V.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_1p3b_$V.log
  echo "== $V"; grep -v "Warn\|warn_once" $OUT/e2e_1p3b_$V.log | grep "svg_ear@\|dense |\|no_self_attn |\|rc="
done
for f in $FILES; do cp /tmp/$(basename $f .py)_now.py $f; done
for f in $FILES; do cmp $f /tmp/$(basename $f .py)_now.py || echo "NOT RESTORED $f"; done
date -u
