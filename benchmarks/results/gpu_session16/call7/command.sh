# Session 16, call 7 (H100): the call-6 profile (budget schedule over steps) side by side with session 15's call-8 profile (tuned2), the operating point as one uniform config at budget 0.16, the same with the call-6 schedule set by hand (first 5 steps at 0.32, later ones at 0.0566), and each tuning run's own best uniform config; seeds 0,1 (2 rounds x 2 runs), then unseen seeds 2-5 (1 round x 2 runs).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks
COMMON="--profile results/gpu_session16/call6/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --other-profile results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.16 --no-plain --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6,early_budget=0.32,budget=0.0566,early_above_timestep=775"
timeout 260 python3 bench_tuned.py $COMMON --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -14
timeout 200 python3 bench_tuned.py $COMMON --no-searched --seeds 2,3,4,5 --rounds 1 --runs 2 --json $OUT/tuned_unseen.json 2>&1 | grep -v "^round" | tail -12
date -u
