# Session 16, call 10 (H100): the tuner with the refined schedule search (two more halvings of the late share), sampler seed 0, per-layer search limited to 150 s; then its profile side by side with the operating point at budget 0.16 and the fastest uniform config found so far (session 15 call 8's one-config stage: QC256/KC1024, iterations 2/11, gamma 1.22, 128 listed centroids, block_n 64, routing reused for 2 calls, budget 0.0999; written as a variant of the 0.16 config that sets every field); seeds 0,1, 1 round x 2 runs.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 400 python3 -m svg_ear_compile.tuner.cli --model svg_ear_compile.fixture:tuning_target_long --psnr-target 30 --steps 20 --seeds 0,1 --trials 6 --rounds 1 --guidance 2 --guidance-calls batched --uniform-trials 6 --timeout 150 --out $OUT/tune --storage $OUT/tune/study.journal > $OUT/tune.log 2>&1; echo "tune rc=$?" >> $OUT/tune.log
rm -rf $OUT/tune/calibration
tr '\r' '\n' < $OUT/tune.log | grep -v "^\s*$" | grep "schedule\|end to end\|rc=\|trading (kept" | awk '!seen[$0]++' | tail -14
date -u
cd benchmarks && timeout 110 python3 bench_tuned.py --profile $OUT/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --budgets 0.16 --no-plain --no-searched --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,num_k_clusters=1024,exact_centroids=64,refresh_every=6 --variant num_q_clusters=256,num_k_clusters=1024,kmeans_iters=2,kmeans_iters_init=11,cost_exponent=1.2204357454312904,block_m=null,block_n=64,exact_centroids=128,refresh_every=2,budget=0.09993977193540518 --rounds 1 --runs 2 --json $OUT/tuned.json 2>&1 | grep -v "^round" | tail -10
date -u
