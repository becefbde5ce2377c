# Session 20, call 9 (H100): the tests that drive the Triton pipeline through the backend, on the GPU, with the
# plan's range tables and routing's fill in Triton.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 280 python3 -m pytest -q tests/test_backend.py tests/test_attention.py tests/test_attention_joint.py tests/test_backend_hunyuan.py tests/test_runtime.py tests/test_record.py tests/fixture/test_shipped.py > $OUT/gpu_tests.log 2>&1; echo "rc=$?" >> $OUT/gpu_tests.log
tail -4 $OUT/gpu_tests.log; grep "^FAILED" $OUT/gpu_tests.log | head
date -u
