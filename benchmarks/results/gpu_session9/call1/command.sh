# Call 1 of GPU session 9 (2026-11-24), commit d579b03 plus the working tree: sparse_attention_old.py is d579b03's kernel; the working tree's loaded the centroids and means masked by the cluster range only (reverted: no gain).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -2 $OUT/setup.log
cp .gpu/old/sparse_attention_old.py svg_ear_compile/kernels/sparse_attention_old.py
date -u
timeout 100 python3 -m pytest -q -p no:cacheprovider tests/kernels/test_sparse_attention.py > $OUT/gpu_tests.log 2>&1; echo "tests rc=$?" >> $OUT/gpu_tests.log; tail -2 $OUT/gpu_tests.log
date -u
timeout 150 python3 .gpu/ab.py --densities 0.03 0.1 --k-clusters 1024 512 > $OUT/ab.log 2>&1; echo "ab rc=$?" >> $OUT/ab.log; cat $OUT/ab.log | grep -v Warning
date -u
timeout 330 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets 0.03 --refresh-every 3 --q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10 --variant kc512 num_k_clusters=512 --json $OUT/e2e_14b.json > $OUT/e2e_14b.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b.log
grep "svg_ear@\|e2e rc\|^no_self\|^dense\|^|" $OUT/e2e_14b.log | tail -14
date -u
