# Session 12, call 2 (H100): guided (batched, w=2) tuning of the long fixture against uniform budgets.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
T="python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 30 --rounds 2 --guidance 2 --guidance-calls batched"
timeout 500 $T --timeout 200 --uniform-budgets 0.03 0.05 0.07 --out $OUT/tune_guided > $OUT/tune_guided.log 2>&1; echo rc $?; tail -25 $OUT/tune_guided.log
date -u
