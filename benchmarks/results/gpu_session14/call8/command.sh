# Session 14, call 8 (H100): guided tuning of the long fixture with the one-config stage starting from the operating point (QC128/KC1024/T64, 1/10 iterations, routing reused for --max-refresh=6 calls) at the consensus and the largest per-layer budget; shorter per-layer search so the one-config stage and the refinement fit one call.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 545 python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 16 --rounds 1 --guidance 2 --guidance-calls batched --uniform-trials 8 --timeout 300 --out $OUT/tune --storage $OUT/tune/study.journal > $OUT/tune.log 2>&1; echo "tune rc=$?" >> $OUT/tune.log
tr '\r' '\n' < $OUT/tune.log | grep -v "^\s*$" | grep -v "trial/s\|it/s" | awk '!seen[$0]++' | tail -30
date -u
