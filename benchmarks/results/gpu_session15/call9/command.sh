# Session 15, call 9 (H100): the call-8 tuned profile side by side with the operating point as one uniform config at budget 0.16 (the fastest meeting 30 dB in calls 4 and 7), seeds 0 and 1, interleaved rounds.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks && timeout 300 python3 bench_tuned.py --profile ../benchmarks/results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.16 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -30
date -u
