source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -2 $OUT/setup.log
date -u
timeout 480 python3 .gpu/ceiling.py --json $OUT/ceiling.json > $OUT/ceiling.log 2>&1; echo "rc=$?" >> $OUT/ceiling.log
cat $OUT/ceiling.log | grep -v Warn | tail -45
date -u
