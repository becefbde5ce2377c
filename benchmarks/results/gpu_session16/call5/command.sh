# Session 16, call 5 (H100): how the final output's error is spread over the denoising schedule: session 15's call-8 profile with every layer's budget halved in one period of steps at a time (4 periods of 5 steps, then 10 of 2), seeds 0 and 1.
source .gpu/setup.sh > $OUT/setup.log 2>&1; tail -1 $OUT/setup.log
date -u
cd benchmarks
for p in 4 10; do timeout 250 python3 probe_step_sensitivity.py --profile results/gpu_session15/call8/tune/NVIDIA-H100-80GB-HBM3__WanTransformer3DModel__L6_H4_D64_S131072.yaml --periods $p --json $OUT/steps_$p.json 2>&1 | grep -v Warning | tail -16; done
date -u
