# Session 19, call 7 (H100): the tail-weights kernel's launch settings (rows per bisection, warps, chunk) against
# the torch reference it replaced, at the 1.3B and 14B operating shapes; GPU tests of the tail.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
timeout 200 python3 benchmarks/results/gpu_session19/call7/sweep_tail_weights.py > $OUT/sweep.log 2>&1; echo "rc=$?" >> $OUT/sweep.log
cat $OUT/sweep.log | cut -c1-150
timeout 100 python3 -m pytest -q tests/kernels/test_compensation_tail.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -2 $OUT/gpu_tests.log
