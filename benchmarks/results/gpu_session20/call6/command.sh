# Session 20, call 6 (H100): the whole op at Wan2.1-14B 720p with the default config (issue 4's table), the
# plan's range tables now two Triton launches.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 400 python3 benchmarks/bench_op.py --impls triton --heads 40 --frames 21 --height 45 --width 80 --json $OUT/op_14b.json > $OUT/op_14b.log 2>&1; echo "rc=$?" >> $OUT/op_14b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_14b.log | tail -10 | cut -c1-400
date -u
