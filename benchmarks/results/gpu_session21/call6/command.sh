# Session 21, call 6: whole-model graphs now prefetch their timestep input. GPU tests (the op in a whole-model
# graph reads the prefetched copy; runtime); then one whole-model-compiled 1.3B forward at budget 0.02,
# staggered, with the prefetch on and off in interleaved rounds (prefetch_ab.py).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_backend.py tests/test_runtime.py -k "timestep or second_video" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
grep -E "passed|failed|rc=" $OUT/gpu_tests.log | tail -3; grep "^FAILED\|^E " $OUT/gpu_tests.log | head
date -u
timeout 400 python3 benchmarks/results/gpu_session21/call6/prefetch_ab.py $OUT/prefetch_ab.json > $OUT/prefetch_ab.log 2>&1; echo "rc=$?" >> $OUT/prefetch_ab.log
grep -v "Warn\|warn_once" $OUT/prefetch_ab.log | tail -5
date -u
