# Session 13, call 7 (H100): the 14B staggered forward at budget 0.02 again (is 90% of the ceiling repeatable?); the guided tuned profile (call 1) against uniform configs side by side.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 250 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 6 --budgets 0.02 --refresh-every 6 --q-clusters 128 --k-clusters 1024 --set exact_centroids=64 --set kmeans_iters=1 --set kmeans_iters_init=10 --set stagger_refresh=True --json $OUT/e2e_14b_stagger.json > $OUT/e2e_14b_stagger.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_stagger.log
grep -v "^\s*$" $OUT/e2e_14b_stagger.log | tail -14
date -u
timeout 270 python3 benchmarks/bench_tuned.py --profile benchmarks/results/gpu_session13/call1/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.1 0.13 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=512 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=512,refresh_every=2 --rounds 2 --runs 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "bench_tuned rc=$?" >> $OUT/tuned.log
grep -v "^\s*$" $OUT/tuned.log | tail -16
date -u
