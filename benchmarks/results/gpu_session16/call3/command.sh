# Session 16, call 3 (H100): session 15's call-8 profile against its own one-config stage's best uniform family (QC256/KC1024, iterations 2/11, gamma 1.22, 128 listed centroids, block_n 64) with routing reused for 6 calls as the profile's layers do, at budgets 0.1, 0.11 and 0.12; seeds 0 and 1.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks && timeout 530 python3 bench_tuned.py --profile results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.1 0.11 0.12 --no-plain --no-searched --variant num_q_clusters=256,num_k_clusters=1024,kmeans_iters=2,kmeans_iters_init=11,cost_exponent=1.22,exact_centroids=128,block_n=64,refresh_every=6 --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -30
date -u
