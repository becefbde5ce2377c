source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 250 > $OUT/clocks.csv &
SMI=$!
date -u
timeout 450 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.03 --refresh-every 3 --q-clusters 128 --k-clusters 512 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant qc64 num_q_clusters=64 budget=0.04 --variant kc256 num_k_clusters=256 budget=0.05 --json $OUT/e2e_14b_variants.json 2>&1 | while IFS= read -r l; do echo "$(date -u +%T) $l"; done > $OUT/e2e_14b_variants.log; echo "e2e done" >> $OUT/e2e_14b_variants.log
kill $SMI
grep "svg_ear@\|^.\{9\}| \(dense\|no_self\)\|done\|compile + first" $OUT/e2e_14b_variants.log | tail -14
date -u
