# Session 12, call 4 (H100): tail tests on the GPU, the moment kernel in bf16 at 14B, the fixture end to end with the tail.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 120 python3 -m pytest -q tests/kernels/test_compensation_tail.py tests/test_pipeline.py tests/test_config.py > $OUT/gpu_tests.log 2>&1; tail -2 $OUT/gpu_tests.log
date -u
(cd benchmarks && timeout 120 python3 bench_compensation.py --heads 40 --frames 21 --height 45 --width 80 --budgets 0.03 --exact 32 64 --json $OUT/comp14b.json > $OUT/comp14b.log 2>&1; tail -9 $OUT/comp14b.log)
date -u
Q="--regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps --guidance-calls --refresh-every 6"
for v in "kc1024t64 --k-clusters 1024 --set exact_centroids=64" "kc512t64 --k-clusters 512 --set exact_centroids=64"; do
  set -- $v; name=$1; shift
  timeout 165 python3 benchmarks/bench_quality.py $Q "$@" --json $OUT/quality_$name.json --plot $OUT/quality_$name.png > $OUT/quality_$name.log 2>&1; echo "$name rc=$?" >> $OUT/quality_$name.log
  grep "^ear\|rc=\|dense:" $OUT/quality_$name.log | tail -3
  date -u
done
