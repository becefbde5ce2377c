source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
T="python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 24 --rounds 2 --timeout 470 --uniform-trials 16 --max-refresh 4 --out /tmp/tuner"
timeout 540 $T > /tmp/tune.log 2>&1; echo "tune rc=$?" >> /tmp/tune.log
tr '\r' '\n' < /tmp/tune.log | grep -v "trial/s\|it/s\]\|?trial" | grep -v "trial [0-9]*\]" > $OUT/tune.log
tr '\r' '\n' < /tmp/tune.log | grep "one config\|refinement" | awk '!seen[$0]++' | grep "s/trial" | sed 's/.*trial, //' > $OUT/stages.log
grep -v "^ *$" $OUT/tune.log | tail -12
cp /tmp/tuner/*.yaml /tmp/tuner/*.png $OUT/ 2>/dev/null
date -u
