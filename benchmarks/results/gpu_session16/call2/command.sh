# Session 16, call 2 (H100): the seed-1 tuned profile (call 1) and session 15's call-8 profile (tuned2) side by side with the operating point as one uniform config at budgets 0.155 and 0.16, and with each tuning run's own best uniform config; seeds 0 and 1, interleaved rounds.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks && timeout 530 python3 bench_tuned.py --profile results/gpu_session16/call1/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --other-profile results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.155 0.16 --no-plain --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -30
date -u
