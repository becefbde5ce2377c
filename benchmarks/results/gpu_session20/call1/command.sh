# Session 20, call 1 (H100): the attention kernel reading a materialised token table (sorted keys, or keys in
# their own token-major order) against the shipped range lookup, at the op's own inputs, three shapes; the kernel tests.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
timeout 120 python3 -m pytest -q -x tests/kernels/test_sparse_attention.py > $OUT/gpu_tests.log 2>&1; tail -2 $OUT/gpu_tests.log
S=benchmarks/sweep_attention_tiles.py
timeout 150 python3 $S --heads 12 --density 0.02 --tiles 64x64x4x3 128x64x4x3 128x128x8x3 --token-table --json $OUT/t_1p3b.json > $OUT/t_1p3b.log 2>&1; echo "rc=$?" >> $OUT/t_1p3b.log
grep -v "^ *[a-z_]*:" $OUT/t_1p3b.log | sed -n '1,40p' | cut -c1-120
timeout 200 python3 $S --heads 40 --frames 21 --height 45 --width 80 --density 0.03 --tiles 128x128x8x3 128x64x4x3 64x64x4x3 --token-table --json $OUT/t_14b_3.json > $OUT/t_14b_3.log 2>&1; echo "rc=$?" >> $OUT/t_14b_3.log
sed -n '1,40p' $OUT/t_14b_3.log | cut -c1-120
timeout 200 python3 $S --heads 40 --frames 21 --height 45 --width 80 --density 0.2 --q-clusters 256 --exact-centroids 0 --tiles 128x128x8x3 128x64x4x3 --token-table --json $OUT/t_14b_20.json > $OUT/t_14b_20.log 2>&1; echo "rc=$?" >> $OUT/t_14b_20.log
sed -n '1,40p' $OUT/t_14b_20.log | cut -c1-120
