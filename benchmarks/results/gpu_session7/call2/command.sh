source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 110 python3 -m pytest -q tests/test_graphs.py tests/test_pipeline.py tests/test_ops.py tests/test_attention.py -k "refresh or graphed or reusing or reset or caches or host" > $OUT/tests.log 2>&1; tail -3 $OUT/tests.log
date -u
T="python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 60 --rounds 2 --timeout 240 --max-refresh 4 --out /tmp/tuner"
timeout 420 $T > /tmp/tune.log 2>&1; echo "tune rc=$?" >> /tmp/tune.log
tr '\r' '\n' < /tmp/tune.log | grep -v "trial/s\|it/s\]\|?trial" | grep -v "trial [0-9]*\]" > $OUT/tune.log
grep "refresh\|end to end\|rc=" $OUT/tune.log | tail -30
cp /tmp/tuner/*.yaml /tmp/tuner/*.png $OUT/ 2>/dev/null
date -u
