# Session 12, call 7 (H100): the whole tuner on the long fixture with exact_centroids in its search space (seventh session's command).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 540 svg-ear-tune --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 24 --rounds 2 --timeout 470 --uniform-trials 16 --max-refresh 4 --out $OUT/tune > $OUT/tune.log 2>&1; echo "tune rc=$?"
tr '\r' '\n' < $OUT/tune.log | grep -v "trial/s\|^\s*$" | tail -30
rm -rf $OUT/tune/calibration
date -u
