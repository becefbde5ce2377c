"""End to end: one Wan2.1 transformer forward, dense vs ``backend="svg_ear"``, against what sparsity can save.

Full-size architectures with random weights (no download), bf16, B=1, one forward each:

- Wan2.1-1.3B (30 layers × 12 heads × 128, FFN 8960, text 4096) at 480p × 81 frames: latent
  16 × 21 × 60 × 104 → 21·30·52 = 32,760 video tokens;
- Wan2.1-14B (40 layers × 40 heads × 128, FFN 13824, text 4096) at 720p × 81 frames: latent
  16 × 21 × 90 × 160 → 21·45·80 = 75,600 video tokens.

Runs per model, each compiled afresh in one process:

- ``dense``: ``torch.compile`` default (Inductor), SDPA with cuDNN attention first in priority
  (``sdpa_kernel(..., set_priority=True)``, which every run also gets);
- ``svg_ear@d``: ``backend="svg_ear"`` with ``budget=d`` for each ``--budgets`` value, and
  ``svg_ear@d[NAME]`` with each ``--variant NAME FIELD=VALUE ...`` on top (several configs against one
  dense baseline, in one process; a variant that sets ``budget`` runs at that budget only);
- ``no_self_attn``: the same forward with video self-attention removed: a small Dynamo backend finds
  the attention calls ``svg_ear`` would rewrite (``svg_ear_compile.backend.plan``, the same
  find + classify) and replaces each by ``svg_ear_bench::attention_stand_in(q, k, v)``, an opaque op
  that returns a copy of ``q`` (the right shape, and the least traffic any attention has: read the
  queries, write the output); then Inductor. Keys and values stay live, so their projections, norms
  and RoPE are still computed, exactly as in the ``svg_ear`` graph. Its time, ``T_outside``, is what
  no sparse attention can save.

Every forward gets a timestep tensor of its own (500), as a denoising loop passes one per step, so the op
reads it from the device once per forward as it would there (a new video is told by its timestep moving back).
For each: compile time (first call, wall clock), the median of ``--repeats`` forwards timed with
CUDA events after ``--warmup`` calls (with reuse, by default one whole refresh cycle, so that every
layer's CUDA graphs are captured before timing), centroid caches warm as in the middle of a denoising loop (their
mean with ``refresh_every > 1``, where forwards alternate between fresh and reusing calls),
one cold call for ``svg_ear`` (centroid caches reset: full k-means, as at the first sparse step),
the density the op reported (``svg_ear_compile.record()``, one extra forward) and the relative error
of the output against ``dense``. Speedups are shown against their ceiling at the measured density d:

    ceiling(d) = T_dense / (T_outside + d·(T_dense − T_outside))

The ``--steps``-step schedule (default 50) with the first ``--warmup-fraction`` of steps dense
(default 20%) is COMPUTED from these per-forward times, not run:
``n_dense·T_dense + T_cold + (n_sparse − 1)·T_sparse`` against ``steps·T_dense``, with the schedule's
ceiling ``steps·T_dense / (n_dense·T_dense + n_sparse·(T_outside + d·(T_dense − T_outside)))``.
(Classifier-free guidance doubles every term alike.)

GPU (one H100; each model is freed before the next; 14B bf16 weights take ≈ 28 GB)::

    python benchmarks/bench_e2e.py --models 1.3b 14b --regional --json $OUT/e2e.json
    python benchmarks/bench_e2e.py --models 1.3b --json $OUT/e2e_1.3b.json      # whole-model compile

``--regional`` compiles each transformer block once (diffusers' ``compile_repeated_blocks``;
``svg_ear_compile.compile_repeated_blocks`` for ``svg_ear``) instead of the whole model: compile
time drops ~layers-fold, which is what keeps both models inside a 10-minute window. CPU smoke run
(a 2-layer toy, float32, < 2 minutes)::

    python benchmarks/bench_e2e.py --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Callable
from typing import Any

import torch
from _timing import (
    add_config_set_argument,
    breakdown_table,
    config_field,
    describe_device,
    free_memory,
    kernel_breakdown,
    markdown_table,
    median_ms,
    wall_ms,
    write_json,
)
from bench_wan_forward import TINY, WAN_1_3B

import svg_ear_compile
from svg_ear_compile import SvgEarConfig
from svg_ear_compile.backend import plan
from svg_ear_compile.ops import reset_centroid_caches

WAN_14B = dict(WAN_1_3B, num_attention_heads=40, ffn_dim=13824, num_layers=40)
MODELS = {  # name: (diffusers WanTransformer3DModel config, latent shape (B, C, F, H, W))
    "1.3b": (WAN_1_3B, (1, 16, 21, 60, 104)),
    "14b": (WAN_14B, (1, 16, 21, 90, 160)),
}
TINY_MODEL = (TINY, (1, 4, 3, 8, 8))
TINY_OPTIONS = dict(min_seq_len=0, num_q_clusters=8, num_k_clusters=16)
TEXT_TOKENS = 512  # Wan's text encoder length


@torch.library.custom_op("svg_ear_bench::attention_stand_in", mutates_args=())
def attention_stand_in(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A copy of ``query`` (contiguous): stands in for attention at the cost of reading q and writing o."""
    return torch.empty(query.shape, dtype=query.dtype, device=query.device).copy_(query)


@attention_stand_in.register_fake
def _(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return query.new_empty(query.shape)


def remove_self_attention(gm: torch.fx.GraphModule, min_seq_len: int) -> int:
    """Replace every attention call ``svg_ear`` would rewrite by the stand-in; returns how many."""
    targets, _ = plan(gm, SvgEarConfig(min_seq_len=min_seq_len))
    for target in targets:
        node, args = target.call.node, target.call.arguments
        with gm.graph.inserting_before(node):
            stand_in = gm.graph.call_function(torch.ops.svg_ear_bench.attention_stand_in.default,
                                              (args["query"], args["key"], args["value"]))
        stand_in.meta.update(node.meta)
        node.replace_all_uses_with(stand_in)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return len(targets)


class NoSelfAttentionBackend:
    """Dynamo backend: :func:`remove_self_attention`, then Inductor. ``removed`` counts the calls per graph."""

    def __init__(self, min_seq_len: int) -> None:
        self.min_seq_len = min_seq_len
        self.removed: list[int] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: list[Any]):
        from torch._inductor.compile_fx import compile_fx

        self.removed.append(remove_self_attention(gm, self.min_seq_len))
        return compile_fx(gm, example_inputs)


def sdpa_cudnn_first(device: torch.device):
    """cuDNN attention first, then flash, efficient and math (a no-op on a CPU)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return sdpa_kernel(order, set_priority=True)


def uncompile(model: torch.nn.Module) -> None:
    """Undo ``Module.compile()`` on every submodule (regional compilation compiles blocks in place)."""
    for module in model.modules():
        module._compiled_call_impl = None


def compile_run(model: torch.nn.Module, kind: str, options: dict, regional: bool, outside: NoSelfAttentionBackend):
    """The callable to time for one run: ``kind`` is ``dense``, ``svg_ear`` or ``no_self_attn``."""
    if not regional:
        if kind == "dense":
            return torch.compile(model)
        if kind == "svg_ear":
            return torch.compile(model, backend="svg_ear", options=options)
        return torch.compile(model, backend=outside)
    uncompile(model)
    if kind == "svg_ear":
        return svg_ear_compile.compile_repeated_blocks(model, options)
    model.compile_repeated_blocks(**({} if kind == "dense" else dict(backend=outside)))
    return model


def _denoising_forward(compiled: Callable[..., Any], inputs: dict, timestep: torch.Tensor) -> Callable[[], Any]:
    """``compiled(**inputs)`` with a timestep tensor of its own per call, as a denoising loop passes one per
    step: the op then reads it from the device once per forward (``SvgEarState.follow_timestep``)."""
    return lambda: compiled(**inputs, timestep=timestep.clone())


def build_model(config: dict, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Random weights created directly on ``device`` in ``dtype`` (no float32 copy of 14B parameters).

    As ``from_pretrained(torch_dtype=dtype)`` does, the tensors named by the model's
    ``_keep_in_fp32_modules`` (RoPE, time embedder, norms, modulation tables) stay float32.
    """
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = WanTransformer3DModel(**config)
    finally:
        torch.set_default_dtype(previous)
    keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
    for tensor_name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        wanted = torch.float32 if keep & set(tensor_name.split(".")) else dtype
        if tensor.is_floating_point() and tensor.dtype != wanted:
            tensor.data = tensor.data.to(wanted)
    return model.eval()


def ceiling(t_dense: float, t_outside: float, density: float) -> float:
    return t_dense / (t_outside + density * (t_dense - t_outside))


def bench_model(name: str, config: dict, latent_shape: tuple, args: argparse.Namespace, device: torch.device,
                dtype: torch.dtype, on_run: Callable[[list[dict]], None] | None = None) -> dict:
    """Every run of one model (``on_run`` sees the rows measured so far after each), errors, speedups
    against the ceiling and the computed schedule."""
    model = build_model(config, device, dtype)
    gen = torch.Generator(device).manual_seed(1)
    timestep = torch.tensor([500.0], device=device)
    inputs = dict(hidden_states=torch.randn(latent_shape, generator=gen, device=device, dtype=dtype),
                  encoder_hidden_states=torch.randn(1, TEXT_TOKENS, config["text_dim"], generator=gen, device=device,
                                                    dtype=dtype),
                  return_dict=False)
    tokens = latent_shape[2] * (latent_shape[3] // 2) * (latent_shape[4] // 2)
    base_options = dict(TINY_OPTIONS if args.tiny else {}, impl=args.impl)
    for field_name, value in (("num_q_clusters", args.q_clusters), ("num_k_clusters", args.k_clusters),
                              ("refresh_every", args.refresh_every), *args.set):
        if value is not None:
            base_options[field_name] = value
    base_config = SvgEarConfig(**base_options)
    min_seq_len = base_config.min_seq_len
    runs = [("dense", "dense", None, {}), ("no_self_attn", "no_self_attn", None, {})]
    for label, overrides in [("", {}), *((f"[{name}]", dict(pairs)) for name, pairs in args.variant)]:
        budgets = [overrides.pop("budget")] if "budget" in overrides else args.budgets
        runs += [(f"svg_ear@{budget:g}{label}", "svg_ear", budget, overrides) for budget in budgets]
    print(f"\n## {name}: {config['num_layers']} layers x {config['num_attention_heads']} heads x "
          f"{config['attention_head_dim']}, latent {latent_shape}, {tokens} video tokens, {dtype}, "
          f"{'regional' if args.regional else 'whole-model'} compile", flush=True)

    rows, outputs = [], {}
    with torch.no_grad(), sdpa_cudnn_first(device):
        for run, kind, budget, overrides in runs:
            free_memory(device)
            reset_centroid_caches()
            options = dict(base_options, **overrides, budget=budget) if kind == "svg_ear" else {}
            outside = NoSelfAttentionBackend(min_seq_len)
            forward = _denoising_forward(compile_run(model, kind, options, args.regional, outside), inputs, timestep)
            _, compile_ms = wall_ms(forward, device)
            row: dict[str, Any] = dict(run=run, kind=kind, budget=budget, options=options, compile_ms=compile_ms)
            if kind == "svg_ear":
                reset_centroid_caches()
                _, row["cold_ms"] = wall_ms(forward, device)
            sparse_config = SvgEarConfig(**options) if kind == "svg_ear" else None
            refresh = sparse_config.refresh_every if sparse_config is not None else 1
            # With reuse, the default warm-up runs one whole refresh cycle, so that every layer's CUDA graphs
            # (a fresh and a reusing one, captured on their first warm call) exist before timing starts.
            warmup = args.warmup if args.warmup is not None else refresh
            median, row["times_ms"] = median_ms(forward, device, args.repeats, warmup)
            # Reusing routing, consecutive forwards alternate fresh and reusing calls: any refresh_every of
            # them hold one fresh call per layer, so their mean is the per-forward cost (a median is not).
            reusing = refresh > 1
            row["forward_ms"] = statistics.mean(row["times_ms"]) if reusing else median
            row["forward_stat"] = f"mean of {args.repeats}" if reusing else f"median of {args.repeats}"
            if reusing:
                row["slowest_ms"] = max(row["times_ms"])
                if not sparse_config.stagger_refresh:  # staggered, every forward mixes both
                    row.update(_fresh_and_reusing(row["times_ms"], refresh, warmup))
            if args.profile and device.type == "cuda":
                row["breakdown"] = kernel_breakdown(forward)
                print(f"#### {name} {run}: kernels of one forward\n\n{breakdown_table(row['breakdown'])}", flush=True)
            with svg_ear_compile.record() as rec:
                outputs[run] = forward()[0]
            row["density"] = rec.mean_density() if kind == "svg_ear" else (0.0 if kind == "no_self_attn" else 1.0)
            row["op_calls_per_forward"] = len(rec.records)
            if kind == "no_self_attn":
                row["removed_per_graph"] = outside.removed
                if not any(outside.removed):
                    raise RuntimeError(f"{name}: no self-attention call found to remove; the ceiling would be wrong")
            print(f"{run}: compile + first call {compile_ms / 1e3:.1f} s, forward {row['forward_ms']:.1f} ms "
                  f"({row['forward_stat']})", flush=True)
            rows.append(row)
            if on_run is not None:
                on_run(rows)
    uncompile(model)

    reference = outputs["dense"].float()
    for row in rows:
        row["rel_error"] = float((outputs[row["run"]].float() - reference).norm() / reference.norm())
    t_dense = rows[0]["forward_ms"]
    t_outside = rows[1]["forward_ms"]
    for row in rows:
        row["speedup"] = t_dense / row["forward_ms"]
        if row["kind"] == "svg_ear":
            row["ceiling"] = ceiling(t_dense, t_outside, row["density"])
            row["of_ceiling"] = row["speedup"] / row["ceiling"]
            for step in ("slowest", "fresh", "reusing"):
                if f"{step}_ms" in row:
                    row[f"{step}_of_ceiling"] = t_dense / row[f"{step}_ms"] / row["ceiling"]
    schedule = [schedule_row(row, t_dense, t_outside, args) for row in rows if row["kind"] == "svg_ear"]
    del model, outputs, reference
    free_memory(device)
    return dict(model=name, config={k: str(v) for k, v in config.items()}, latent_shape=latent_shape, tokens=tokens,
                runs=rows, schedule=schedule, t_dense_ms=t_dense, t_outside_ms=t_outside,
                attention_share=1 - t_outside / t_dense)


def _fresh_and_reusing(times_ms: list[float], refresh_every: int, warmup: int) -> dict[str, float]:
    """Mean time of the timed forwards whose layers route afresh and of those that reuse a routing.

    Counting from the cold forward (call 0, fresh), call ``c`` of a layer routes afresh when
    ``c % refresh_every == 0`` (``SvgEarState.take_routing``); timed forward ``i`` is call ``1 + warmup + i``."""
    fresh = [t for i, t in enumerate(times_ms) if (1 + warmup + i) % refresh_every == 0]
    reusing = [t for i, t in enumerate(times_ms) if (1 + warmup + i) % refresh_every != 0]
    return {"fresh_ms": statistics.mean(fresh), "reusing_ms": statistics.mean(reusing)}


def schedule_row(row: dict, t_dense: float, t_outside: float, args: argparse.Namespace) -> dict:
    """The ``args.steps``-step schedule computed from per-forward times (not run)."""
    n_dense = round(args.warmup_fraction * args.steps)
    n_sparse = args.steps - n_dense
    dense_total = args.steps * t_dense
    total = n_dense * t_dense + (row["cold_ms"] + (n_sparse - 1) * row["forward_ms"] if n_sparse else 0.0)
    bound = n_dense * t_dense + n_sparse * (t_outside + row["density"] * (t_dense - t_outside))
    speedup, limit = dense_total / total, dense_total / bound
    return dict(run=row["run"], steps=args.steps, dense_steps=n_dense, dense_total_s=dense_total / 1e3,
                total_s=total / 1e3, speedup=speedup, ceiling=limit, of_ceiling=speedup / limit)


def report(result: dict) -> str:
    runs = result["runs"]
    per_forward = markdown_table(
        ["run", "density", "compile + 1st call s", "forward ms", "cold ms", "speedup", "ceiling",
         "of ceiling", "rel. error vs dense"],
        [[r["run"], f"{r['density']:.1%}", f"{r['compile_ms'] / 1e3:.1f}",
          f"{r['forward_ms']:.1f} ({r['forward_stat']})",
          f"{r['cold_ms']:.1f}" if "cold_ms" in r else "", f"{r['speedup']:.2f}x",
          f"{r['ceiling']:.2f}x" if "ceiling" in r else "", f"{r['of_ceiling']:.0%}" if "ceiling" in r else "",
          f"{r['rel_error']:.4f}"] for r in runs])
    schedule = markdown_table(
        ["run", "steps (dense)", "dense total s", "total s", "speedup", "ceiling", "of ceiling"],
        [[s["run"], f"{s['steps']} ({s['dense_steps']})", f"{s['dense_total_s']:.1f}", f"{s['total_s']:.1f}",
          f"{s['speedup']:.2f}x", f"{s['ceiling']:.2f}x", f"{s['of_ceiling']:.0%}"] for s in result["schedule"]])
    split = [r for r in runs if "slowest_ms" in r]
    steps = "" if not split else "Per step (the slowest timed forward; forwards whose layers route afresh and those " \
        "reusing a routing, unless staggered):\n\n" + markdown_table(
            ["run", "slowest ms", "of ceiling", "fresh ms", "of ceiling", "reusing ms", "of ceiling"],
            [[r["run"], *_step_cells(r, "slowest"), *_step_cells(r, "fresh"), *_step_cells(r, "reusing")]
             for r in split]) + "\n\n"
    return (f"\n### {result['model']}: {result['tokens']} tokens; self-attention is "
            f"{result['attention_share']:.1%} of the dense forward (T_dense {result['t_dense_ms']:.1f} ms, "
            f"T_outside {result['t_outside_ms']:.1f} ms)\n\n{per_forward}\n\n{steps}"
            f"Schedule COMPUTED from the per-forward times above (not run): first steps dense, then one cold "
            f"sparse step, then warm sparse steps.\n\n{schedule}\n")


def _step_cells(row: dict, step: str) -> tuple[str, str]:
    """``step``'s (slowest, fresh, reusing) forward time and share of the ceiling, or dashes."""
    if f"{step}_ms" not in row:
        return "–", "–"
    return f"{row[f'{step}_ms']:.1f}", f"{row[f'{step}_of_ceiling']:.1%}"


def _variant(words: list[str]) -> tuple[str, list[tuple[str, Any]]]:
    """``NAME FIELD=VALUE ...`` of one ``--variant``: a name, then fields parsed as by ``--set``."""
    name, *fields = words
    if "=" in name or not fields:
        raise ValueError(f"--variant {' '.join(words)}: expected a NAME, then one or more FIELD=VALUE")
    try:
        return name, [config_field(field) for field in fields]
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"--variant {' '.join(words)}: {error}") from None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["1.3b", "14b"],
                        help="full-size architectures to run, freed one after the other (default: both)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: a 2-layer toy Wan instead of --models")
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.1, 0.2, 0.3],
                        help="svg_ear densities (SvgEarConfig.budget) to run (default: 0.1 0.2 0.3)")
    parser.add_argument("--regional", action="store_true",
                        help="compile each transformer block once instead of the whole model (much faster compile)")
    parser.add_argument("--q-clusters", type=int, help="SvgEarConfig.num_q_clusters (default: the config's)")
    parser.add_argument("--k-clusters", type=int, help="SvgEarConfig.num_k_clusters (default: the config's)")
    parser.add_argument("--refresh-every", type=int, default=None,
                        help="SvgEarConfig.refresh_every (default: the config's, 1); --repeats must then be a "
                             "multiple of it, and a forward's time is the mean of the timed ones")
    add_config_set_argument(parser)
    parser.add_argument("--variant", nargs="+", action="append", default=[], metavar=("NAME", "FIELD=VALUE"),
                        help="also run every budget with these SvgEarConfig fields on top of the others, labelled "
                             "svg_ear@BUDGET[NAME] (repeatable): --variant kc512 num_k_clusters=512; with budget=B "
                             "among the fields, at that budget only")
    parser.add_argument("--impl", default="auto", help="SvgEarConfig.impl (default: auto = Triton on CUDA)")
    parser.add_argument("--repeats", type=int, default=3, help="timed forwards per run (default 3)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed forwards before timing (default 1; with reuse, refresh_every: one whole "
                             "cycle, so that the graphs of fresh and reusing calls are captured before timing)")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps of the computed schedule")
    parser.add_argument("--warmup-fraction", type=float, default=0.2,
                        help="share of the schedule's steps run dense before sparse attention starts (default 0.2)")
    parser.add_argument("--profile", action="store_true",
                        help="GPU: also profile two forwards of each run and print where the device time goes "
                             "(kernel families and the top kernels)")
    parser.add_argument("--json", help="also write every measurement to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.variant = [_variant(parts) for parts in args.variant]
    except ValueError as error:
        parser.error(str(error))
    if not 0 <= args.warmup_fraction <= 1:
        parser.error(f"--warmup-fraction {args.warmup_fraction}: expected a value in [0, 1]")
    for _, pairs in [("", []), *args.variant]:
        try:
            fields = dict([("refresh_every", args.refresh_every or 1), *args.set, *pairs])
            refresh = SvgEarConfig(**fields).refresh_every
        except (TypeError, ValueError) as error:
            parser.error(str(error))
        if args.repeats % refresh:
            parser.error(f"--repeats {args.repeats} must be a multiple of refresh_every={refresh}, so that the timed "
                         "forwards hold as many fresh calls as a schedule does")

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    header = f"device: {describe_device(device)}; B=1; {dtype}; argv: {' '.join(sys.argv[1:])}"
    print(header)
    models = {"tiny": TINY_MODEL} if args.tiny else {name: MODELS[name] for name in args.models}
    results: dict[str, Any] = dict(header=header, args=vars(args), models=[])
    for name, (config, latent_shape) in models.items():
        def keep_partial(rows: list[dict], name: str = name) -> None:  # a time limit keeps what was measured
            write_json(args.json, {**results, "models": [*results["models"], dict(model=name, partial_runs=rows)]},
                       quiet=True)

        result = bench_model(name, config, latent_shape, args, device, dtype, keep_partial)
        results["models"].append(result)
        write_json(args.json, results)
    for result in results["models"]:
        print(report(result))
    return results


if __name__ == "__main__":
    main()
