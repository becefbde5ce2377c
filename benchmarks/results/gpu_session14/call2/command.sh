# Session 14, call 2 (H100): tile sweep of the sparse attention kernel at the operating point (QC128 KC1024 T64): 1.3B 480p at budget 0.02, 14B 720p at 0.03; work ordered by cost and by head.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 250 python3 benchmarks/sweep_attention_tiles.py --heads 12 --density 0.02 --json $OUT/tiles_1p3b.json > $OUT/tiles_1p3b.log 2>&1; echo "rc=$?" >> $OUT/tiles_1p3b.log
grep -v "^\s*$" $OUT/tiles_1p3b.log | grep -v Warn | tail -110
date -u
timeout 300 python3 benchmarks/sweep_attention_tiles.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --json $OUT/tiles_14b.json > $OUT/tiles_14b.log 2>&1; echo "rc=$?" >> $OUT/tiles_14b.log
grep -v "^\s*$" $OUT/tiles_14b.log | grep -v Warn | tail -110
date -u
