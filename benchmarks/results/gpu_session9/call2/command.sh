source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
cp .gpu/old/sparse_attention_old.py svg_ear_compile/kernels/sparse_attention_old.py
date -u
timeout 100 python3 .gpu/ab.py --densities 0.03 --k-clusters 1024 512 > $OUT/ab.log 2>&1; echo "ab rc=$?" >> $OUT/ab.log; grep -v Warn $OUT/ab.log
Q="--regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 0.04 0.05 --refresh-every 3 --set kmeans_iters=1 --set kmeans_iters_init=10 --top-ps"
for v in "kc512 --q-clusters 128 --k-clusters 512" "qc64kc512 --q-clusters 64 --k-clusters 512" "kc256 --q-clusters 128 --k-clusters 256"; do
  set -- $v; name=$1; shift
  date -u
  timeout 160 python3 benchmarks/bench_quality.py $Q "$@" --json $OUT/quality_$name.json --plot $OUT/quality_$name.png > $OUT/quality_$name.log 2>&1; echo "$name rc=$?" >> $OUT/quality_$name.log
  grep "^ear\|rc=" $OUT/quality_$name.log | tail -5
done
date -u
