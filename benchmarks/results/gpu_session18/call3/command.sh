# Session 18, call 3 (H100): issue 4's whole op per stage with today's kernels (first re-run since the second session), Wan2.1-1.3B 480p and 14B 720p shapes, densities 10/20/30%, QC256 KC1024, default config.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 200 python3 benchmarks/bench_op.py --impls triton --json $OUT/op_1p3b.json > $OUT/op_1p3b.log 2>&1; echo "rc=$?" >> $OUT/op_1p3b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_1p3b.log | tail -25
date -u
timeout 330 python3 benchmarks/bench_op.py --impls triton --heads 40 --frames 21 --height 45 --width 80 --json $OUT/op_14b.json > $OUT/op_14b.log 2>&1; echo "rc=$?" >> $OUT/op_14b.log
grep -v "^\s*$\|Warn\|warn_once" $OUT/op_14b.log | tail -25
date -u
