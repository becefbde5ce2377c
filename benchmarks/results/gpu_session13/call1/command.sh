# Session 13, call 1 (H100): guided (batched, w=2) tuning of the long fixture on a call of its own, with uniform baselines.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
T="python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 24 --rounds 2 --guidance 2 --guidance-calls batched --uniform-trials 16"
timeout 545 $T --timeout 170 --uniform-budgets 0.03 0.05 0.07 --out $OUT/tune_guided > $OUT/tune_guided.log 2>&1; echo rc $?
tr '\r' '\n' < $OUT/tune_guided.log | grep -v "it/s\]$" | grep -iv "trial/s\]$\|?trial/s\]$" | tail -40
ls $OUT/tune_guided
date -u
