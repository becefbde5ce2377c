# Session 16, call 9 (H100): the call-8 profile (seed 1, budget schedule over steps) side by side with the call-6 profile (tuned2), session 15's call-8 profile (tuned3), the operating point as one uniform config at budget 0.16, and each tuning run's own best uniform config; seeds 0,1, 2 rounds x 2 runs.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks
timeout 400 python3 bench_tuned.py --profile results/gpu_session16/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --other-profile results/gpu_session16/call6/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --other-profile results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.16 --no-plain --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -16
date -u
