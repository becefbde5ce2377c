source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
P=benchmarks/results/gpu_session7/call4/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml
timeout 400 python3 benchmarks/bench_tuned.py --profile $P --budgets 0.07 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=2 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=3 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=4 --variant num_q_clusters=64,kmeans_iters_init=11,kmeans_iters=1,block_m=64,block_n=128,refresh_every=4 --rounds 3 --runs 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "bench_tuned rc=$?" >> $OUT/tuned.log
grep -v Warn $OUT/tuned.log | tail -14
date -u
