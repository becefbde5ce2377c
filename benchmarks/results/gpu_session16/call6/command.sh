# Session 16, call 6 (H100): as session 15 call 8 (sampler seed 0) with the new budget schedule over steps after the budget trading; per-layer search limited to 240 s so that the run fits one call.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 555 python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 6 --rounds 1 --guidance 2 --guidance-calls batched --uniform-trials 6 --timeout 240 --out $OUT/tune --storage $OUT/tune/study.journal > $OUT/tune.log 2>&1; echo "tune rc=$?" >> $OUT/tune.log
rm -rf $OUT/tune/calibration
tr '\r' '\n' < $OUT/tune.log | grep -v "^\s*$" | grep "end-to-end check\|relaxing\|schedule\|one config\|trading\|refinement\|end to end\|rc=\|wrote\|profile" | awk '!seen[$0]++' | tail -60
ls $OUT/tune
date -u
