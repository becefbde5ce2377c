source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 540 python3 benchmarks/bench_kernels.py --shapes wan-14b-720p wan-1.3b-480p --densities 0.1 0.2 --tiles 128x64x4x3 128x64x4x4 128x32x4x3 128x32x4x4 64x64x4x3 64x128x4x3 128x128x8x4 --json $OUT/kernels_tiles.json > $OUT/kernels_tiles.log 2>&1; echo "rc=$?" >> $OUT/kernels_tiles.log
grep "^|" $OUT/kernels_tiles.log | grep -v Flex; tail -2 $OUT/kernels_tiles.log
date -u
