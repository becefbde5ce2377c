source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 450 python3 -m pytest -q -p no:cacheprovider --durations=8 tests/test_examples.py tests/test_benchmarks_smoke.py tests/fixture/test_train.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests.log
grep -E "passed|failed|rc=|Error|s call" $OUT/gpu_tests.log | tail -14
date -u
