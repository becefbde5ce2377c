# Session 14, call 6 (H100): the key tile's range lookup by population count (no prefix sum, no cross-lane gather) against the shipped prefix-sum + tl.gather, A/B/A in one session: 14B@0.03 128x128, 1.3B@0.02 64x64 and 128x128. GPU tests of the new kernel first.
# (.gpu/sparse_attention_gather.py: svg_ear_compile/kernels/sparse_attention.py as of 01de0d6; .gpu/sparse_attention_popcount.py: the same with popcount_variant.patch applied.)
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 120 python3 -m pytest -q -x tests/kernels/test_sparse_attention.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?"; tail -2 $OUT/gpu_tests.log
S14="--heads 40 --frames 21 --height 45 --width 80 --density 0.03 --tiles 128x128x8x3"
S13="--heads 12 --density 0.02 --tiles 64x64x4x3 128x128x8x3"
for variant in popcount gather popcount; do
  cp .gpu/sparse_attention_$variant.py svg_ear_compile/kernels/sparse_attention.py
  for shape in 14 13; do
    eval A=\$S$shape
    timeout 90 python3 benchmarks/sweep_attention_tiles.py $A > $OUT/ab_${variant}_${shape}.log 2>&1
    echo "== $variant $shape"; grep -v "Warn\|warn_once" $OUT/ab_${variant}_${shape}.log | grep "head\|shared mem"
  done
done
cp .gpu/sparse_attention_popcount.py svg_ear_compile/kernels/sparse_attention.py
date -u
