source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 500 python3 .gpu/decomp.py > $OUT/decomp.log 2>&1; echo "rc=$?" >> $OUT/decomp.log
grep -v Warn $OUT/decomp.log | tail -45
date -u
