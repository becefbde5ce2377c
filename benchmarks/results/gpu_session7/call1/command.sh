source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 130 python3 -m pytest -q -x tests/test_graphs.py tests/test_pipeline.py tests/test_attention.py -k "refresh or graphed or reusing" > $OUT/tests.log 2>&1; tail -3 $OUT/tests.log
date -u
timeout 50 python3 benchmarks/profile_op.py --heads 4 --frames 16 --height 48 --width 96 --head-dim 64 --q-clusters 128 --k-clusters 1024 --density 0.07 --refresh-every 2 --top 16 > $OUT/profile_fixture.log 2>&1; echo "rc=$?" >> $OUT/profile_fixture.log
grep -v "^ *$" $OUT/profile_fixture.log | tail -4
timeout 80 python3 benchmarks/profile_op.py --heads 40 --frames 21 --height 45 --width 80 --density 0.1 --refresh-every 2 --top 16 > $OUT/profile_14b.log 2>&1; echo "rc=$?" >> $OUT/profile_14b.log
grep -v "^ *$" $OUT/profile_14b.log | tail -4
date -u
timeout 250 python3 benchmarks/bench_tuned.py --budgets 0.07 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=2 --variant kmeans_iters_init=10,kmeans_iters=1,num_q_clusters=128,refresh_every=3 --tuned-variant refresh_every=2 --tuned-variant refresh_every=3 --rounds 2 --runs 2 --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "bench_tuned rc=$?" >> $OUT/tuned.log
grep -v Warn $OUT/tuned.log | tail -13
date -u
