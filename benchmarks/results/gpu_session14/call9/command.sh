# Session 14, call 9 (H100): guided tuning of the long fixture with the one-config stage bisecting the operating point's budget (QC128/KC1024/T64, 1/10 iterations, routing reused for --max-refresh=6 calls) between the consensus and the largest per-layer budget; short per-layer search so the run fits one call.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 530 python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 8 --rounds 1 --guidance 2 --guidance-calls batched --uniform-trials 7 --timeout 240 --out $OUT/tune --storage $OUT/tune/study.journal > $OUT/tune.log 2>&1; echo "tune rc=$?" >> $OUT/tune.log
rm -rf $OUT/tune/calibration
tr '\r' '\n' < $OUT/tune.log | grep -v "^\s*$" | grep "end-to-end check\|relaxing\|one config\|refinement\|end to end\|rc=" | awk '!seen[$0]++' | tail -40
date -u
