source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
P=benchmarks/results/gpu_session7/call2/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml
timeout 420 python3 benchmarks/bench_tuned.py --profile $P --budgets 0.07 0.08 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=2 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=3 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=4 --rounds 3 --runs 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "bench_tuned rc=$?" >> $OUT/tuned.log
grep -v Warn $OUT/tuned.log | tail -17
date -u
