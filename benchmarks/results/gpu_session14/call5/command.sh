# Session 14, call 5 (H100): what the key gather and its index arithmetic cost at the operating point (contiguous-key copy of the kernel, wrong output, same flops), and the compiled kernels' registers/spills: 14B@0.03 128x128, 1.3B@0.02 64x64.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 150 python3 benchmarks/sweep_attention_tiles.py --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --tiles 128x128x8x3 --contiguous-keys --json $OUT/contig_14b.json > $OUT/contig_14b.log 2>&1; echo "rc=$?" >> $OUT/contig_14b.log
grep -v "Warn\|warn_once" $OUT/contig_14b.log | tail -30
timeout 100 python3 benchmarks/sweep_attention_tiles.py --heads 12 --density 0.02 --tiles 64x64x4x3 128x128x8x3 --contiguous-keys --json $OUT/contig_1p3b.json > $OUT/contig_1p3b.log 2>&1; echo "rc=$?" >> $OUT/contig_1p3b.log
grep -v "Warn\|warn_once" $OUT/contig_1p3b.log | tail -40
date -u
