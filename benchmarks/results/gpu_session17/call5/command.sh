# Session 17, call 5 (H100): session 16 call 6's tuning run (sampler seed 1) with the last stage's two extra halvings of the late share replaced by every budget scaled to the target (tuner/_scale.py), routing reuse tried for all layers in one check, per-layer latencies measured once at the end, 128 listed centroids tried for all layers in one check; --timeout 300 (the per-layer search stops at 180 s).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 568 python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 6 --rounds 1 --guidance 2 --guidance-calls batched --uniform-trials 6 --timeout 300 --seed 1 --out $OUT/tune --storage $OUT/tune/study.journal > $OUT/tune.log 2>&1; echo "tune rc=$?" >> $OUT/tune.log
rm -rf $OUT/tune/calibration
tr '\r' '\n' < $OUT/tune.log | grep -v "^\s*$" | grep "end-to-end check\|relaxing\|schedule\|scaled\|one config\|trading\|refinement\|end to end\|rc=\|wrote\|profile\|layer(s)" | awk '!seen[$0]++' | tail -60
ls $OUT/tune
date -u
