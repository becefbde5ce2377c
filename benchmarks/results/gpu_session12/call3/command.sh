# Session 12, call 3 (H100): GPU tests of the expanded tail; the compensation forms side by side at 14B 720p.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 -m pytest -q -x tests/kernels/test_sparse_attention.py tests/kernels/test_compensation_tail.py tests/test_pipeline.py > $OUT/gpu_tests.log 2>&1; tail -3 $OUT/gpu_tests.log
date -u
cd benchmarks
timeout 330 python3 bench_compensation.py --heads 40 --frames 21 --height 45 --width 80 --json $OUT/comp14b.json > $OUT/comp14b.log 2>&1; tail -24 $OUT/comp14b.log
date -u
