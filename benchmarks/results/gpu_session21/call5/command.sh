# Session 21, call 5 (H100): GPU tests on the final code (a new video is a timestep moving back, either way;
# the hook's timestep copy; record()'s cold starts): the attention, runtime, record, op, backend and graph tests.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 480 python3 -m pytest -q -p no:cacheprovider tests/test_attention.py tests/test_runtime.py tests/test_record.py tests/test_ops.py tests/test_graphs.py tests/test_backend.py -k "not large_sequence" > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
grep -E "passed|failed|rc=" $OUT/gpu_tests.log | tail -3; grep "^FAILED" $OUT/gpu_tests.log | head
date -u
