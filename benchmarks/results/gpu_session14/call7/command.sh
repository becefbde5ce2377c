# Session 14, call 7 (H100): issue 6's comparison completed with the current kernel: the guided tuned profile (session 13 call 1) against uniform configs at budgets 0.08/0.09/0.16 (default config; QC128/KC512 1/10 iterations; QC128/KC1024 T64 1/10 iterations refresh_every=6), guidance 2 batched, side by side.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 540 python3 benchmarks/bench_tuned.py --profile benchmarks/results/gpu_session13/call1/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.08 0.09 0.16 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=512 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --rounds 2 --runs 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "bench_tuned rc=$?" >> $OUT/tuned.log
grep -v "^\s*$" $OUT/tuned.log | tail -18
date -u
