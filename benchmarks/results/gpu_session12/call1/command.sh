# Session 12, call 1 (H100): GPU tests of last session's changes, shared-routing A/B.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -2 $OUT/setup.log
date -u
timeout 260 python3 -m pytest -q -x tests/test_graphs.py tests/test_pipeline.py tests/test_attention.py tests/test_attention_joint.py tests/test_record.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
date -u
timeout 200 python3 .gpu/shared_ab.py > $OUT/shared_ab.log 2>&1; grep -v Warn $OUT/shared_ab.log | tail -8
date -u
