source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
COMMON="--q-clusters 128 --set kmeans_iters=1 --set kmeans_iters_init=10"
timeout 280 python3 benchmarks/bench_quality.py --regional --clip 16 96 192 --dense-above-timestep 820 --modes ear --budgets 0.03 0.04 0.05 0.07 --refresh-every 3 $COMMON --top-ps --json $OUT/quality_long_warmup.json --plot $OUT/quality_long_warmup.png > $OUT/quality_long_warmup.log 2>&1; echo "rc=$?" >> $OUT/quality_long_warmup.log
grep -v "it/s\]\|Warn" $OUT/quality_long_warmup.log | tail -10
B=$(python3 -c "
import json; rows=json.load(open('$OUT/quality_long_warmup.json'))['settings']
ok=sorted(r['budget'] for r in rows if r['psnr']>=30.0); print(ok[0] if ok else 0.07)")
echo "lowest budget at >= 30 dB: $B" | tee $OUT/chosen_budget.txt
date -u
timeout 290 python3 benchmarks/bench_e2e.py --models 14b --regional --repeats 3 --budgets $B --refresh-every 3 $COMMON --json $OUT/e2e_14b_warmup_budget.json > $OUT/e2e_14b_warmup_budget.log 2>&1; echo "e2e rc=$?" >> $OUT/e2e_14b_warmup_budget.log
grep -v Warn $OUT/e2e_14b_warmup_budget.log | grep -v "^$" | tail -9
date -u
