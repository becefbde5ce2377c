source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 240 python3 -m svg_ear_compile.demo --no-progress --out $OUT/demo_long > $OUT/demo_long.log 2>&1; echo "demo rc=$?" >> $OUT/demo_long.log
grep -v Warn $OUT/demo_long.log | tail -14
date -u
