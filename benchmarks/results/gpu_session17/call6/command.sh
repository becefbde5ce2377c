# Session 17, call 6 (H100): call 5's profile (sampler seed 1) side by side with call 3's (tuned2, seed 0) and the fastest uniform family found (QC 256, KC 1024, iterations 2/11, gamma 1.22, 128 listed, block_n 64, reuse 2) at budgets 0.095 and 0.0999, and each tuning run's own one-config best; seeds 0,1 (2 rounds x 2 runs), then unseen seeds 2-5 (1 round x 2 runs).
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks
FAMILY="num_q_clusters=256,num_k_clusters=1024,kmeans_iters=2,kmeans_iters_init=11,cost_exponent=1.2204357454312904,block_n=64,exact_centroids=128,refresh_every=2"
NAME=NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml
PROFILES="--profile results/gpu_session17/call5/tune/$NAME --other-profile results/gpu_session17/call3/tune/$NAME"
timeout 290 python3 bench_tuned.py $PROFILES --budgets 0.095 0.0999 --no-plain --variant $FAMILY --rounds 2 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -14
date -u
timeout 200 python3 bench_tuned.py $PROFILES --budgets 0.0975 --no-plain --variant $FAMILY --no-searched --seeds 2,3,4,5 --rounds 1 --runs 2 --json $OUT/tuned_unseen.json 2>&1 | grep -v "^round" | tail -12
date -u
