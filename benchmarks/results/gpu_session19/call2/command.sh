# Session 19, call 2 (H100): where the host's time goes in an eager reusing call (cProfile, 1.3B operating point);
# the guided long-clip fixture with its shipped profile: cuda_graph "auto" (reusing calls eager) against true.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
timeout 120 python3 benchmarks/results/gpu_session19/call2/host_profile.py > $OUT/host_profile.log 2>&1; echo "rc=$?" >> $OUT/host_profile.log
head -60 $OUT/host_profile.log | cut -c1-160
date -u
timeout 420 python3 benchmarks/bench_tuned.py --no-plain --no-searched --tuned-variant cuda_graph=true --json $OUT/tuned.json > $OUT/tuned.log 2>&1; echo "rc=$?" >> $OUT/tuned.log
grep -v "Warn\|warn_once" $OUT/tuned.log | tail -15
date -u
