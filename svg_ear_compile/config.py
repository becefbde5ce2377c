"""The SVG-EAR configuration: one versioned, validated, serialisable object.

Per-layer settings are overrides of a base config, resolved in one place::

    >>> from svg_ear_compile import SvgEarConfig
    >>> cfg = SvgEarConfig(budget=0.2, layer_overrides={0: {"budget": 1.0}})
    >>> cfg.for_layer(0).budget, cfg.for_layer(7).budget
    (1.0, 0.2)
    >>> SvgEarConfig.from_yaml(cfg.to_yaml()) == cfg
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

CONFIG_VERSION = 1

_ROUTINGS = ("error_aware", "attention")
_IMPLS = ("auto", "triton", "reference")
_BLOCK_SIZES = (16, 32, 64, 128, 256)


def _fail(name: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"SvgEarConfig.{name}={value!r} is invalid: expected {allowed}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(name, value, f"an int >= {minimum}")


def _check_fraction(name: str, value: Any, *, allow_zero: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (0.0 <= value <= 1.0 if allow_zero else 0.0 < value <= 1.0)
    if not ok:
        raise _fail(name, value, "a number in [0, 1]" if allow_zero else "a number in (0, 1]")


@dataclass(frozen=True)
class SvgEarConfig:
    """Settings of one SVG-EAR attention call (DESIGN.md §2).

    Attributes:
        num_q_clusters: k-means clusters of the queries (QC); clamped to the sequence length.
        num_k_clusters: k-means clusters of the keys (KC); clamped to the sequence length.
        kmeans_iters_init: Lloyd iterations on a layer's first call (cold start).
        kmeans_iters: Lloyd iterations on later calls, warm-started from the cached centroids. An
            iteration is an assignment and an update; the tokens are clustered by the last
            assignment, and its update becomes the next call's centroids (0: assign only).
        refresh_every: cluster and route a layer's tokens on every this-many-th call; the calls in
            between reuse the last clustering and block map (labels, token order, selected blocks)
            and only recompute the key/value cluster means that compensation needs. Adjacent
            denoising steps attend alike, so 2–4 keeps most of the accuracy and skips k-means, the
            error probe and routing on the reusing calls. ``1``: every call routes afresh. It counts
            calls, not steps: a pipeline that runs classifier-free guidance as two calls per step
            (diffusers' ``WanPipeline``) passes the cond and the uncond call through one kept routing.
            Measured on the trained fixture (H100, ``benchmarks/RESULTS.md``): with two calls per step,
            3 and 6 cost nothing against 1 (33.6 / 33.3 / 33.3 dB); batching both prompts into one
            call keeps the routing per step (31.1 / 30.4 / 30.0 dB at 1 / 3 / 6).
        stagger_refresh: spread the layers' refreshes over the calls: layer ``ℓ``'s first kept routing
            after a cold start serves ``refresh_every − (ℓ mod refresh_every)`` calls, so layer ``ℓ``
            routes afresh on the calls ``c`` (counted from the cold one) with ``(c + ℓ) mod
            refresh_every = 0``. Each layer still refreshes every ``refresh_every`` calls, but every
            step carries about ``1/refresh_every`` of the fresh calls instead of one step in
            ``refresh_every`` carrying them all: even per-step latency. Needs the layer index (the
            backend passes it); calls without one are not staggered.
        batch_shares_routing: with a batch of several videos, cluster and route the first one only and
            attend every other one through that clustering and block map (each with its own cluster
            means for compensation). For a call that batches the prompts of classifier-free guidance
            (cond first): the predictions then err alike, and ``v_uncond + w·(v_cond − v_uncond)``
            cancels much of it (the trained fixture at budget 0.03: 33.7 dB against 31.1 unshared,
            ``benchmarks/RESULTS.md``). Leave it off for a batch of unrelated videos.
        routing: ``"error_aware"`` (EAR: rank blocks by probe error per unit cost) or
            ``"attention"`` (SVG2: rank blocks by centroid attention mass, top-p).
        compensation: add every skipped block back through its centroid (parameter-free).
        exact_centroids: ``None`` (default): every skipped key cluster ``j`` joins a query's softmax as
            one centroid logit ``s·q·k̄_j + log|K_j|`` (``KC·(D + Dv)`` multiply-adds per query). An
            int ``T``: only each query cluster's ``T`` heaviest skipped clusters (by that logit at the
            query cluster's mean ``q̄``) do; the rest fold into one logit per query, expanded to
            first order in ``q − q̄`` (``D·Dv`` per query, whatever ``KC``;
            :mod:`svg_ear_compile.kernels.compensation_tail`). On the trained fixture at 3% density
            ``T = 64`` with 1,024 key clusters kept 43.97 dB attention-output PSNR against 42.72 for
            every centroid at 512 clusters (CPU, ``benchmarks/RESULTS.md``, tenth session).
        top_p: SVG2 mass threshold per query-cluster row; with EAR it sets the row's area budget.
        budget: explicit density target (fraction of the S² area computed exactly, per row);
            overrides ``top_p`` when set. ``1.0`` computes every block (exact attention).
        guaranteed_frac: share of key clusters always kept per row, the highest-mass ones (EAR); an explicit
            ``budget`` smaller than their keys keeps only the heaviest of them that fit it (at least one).
        cost_exponent: γ in score = log ε̂ − γ·log(|Q_i||K_j|).
        min_seq_len: sequences shorter than this run exact attention.
        dense_layers: the first this many layers (by index) run exact attention.
        dense_above_timestep: dense warm-up: exact attention while the model's timestep is above
            this value (decided at run time from the timestep tensor); ``None`` disables it.
        early_budget, early_above_timestep: route with ``early_budget`` instead of ``budget`` while the
            model's timestep is above ``early_above_timestep`` (both set, or neither). The first, noisiest
            steps are where attention errors reach the final output: on the trained fixture (20 steps)
            the first quarter of the steps carried 90% of it and steps 6-17 none measurable
            (``benchmarks/probe_step_sensitivity.py``), so the later steps can run a smaller budget. A
            routing kept across calls (``refresh_every``) is not carried over the cut.
        block_m, block_n: Triton kernel tile sizes (queries, keys); ``None`` takes them from the
            table in :mod:`svg_ear_compile.kernels.tiles` (by GPU, head dim and sequence length).
        impl: ``"auto"`` (Triton on CUDA when available, else reference), ``"triton"``, ``"reference"``.
        cuda_graph: replay warm calls of the Triton path on a GPU as one CUDA graph per layer and
            input shape (captured on the first warm call; see :mod:`svg_ear_compile.graphs`).
            ``False`` launches the ~400 kernels of a call one by one. ``"auto"`` (default): graphs
            for calls that route afresh under ``graphs.GRAPH_MAX_ROWS`` query rows (B·H·S), where
            launching the kernels would take the host longer than the GPU takes to run them; larger
            calls, and calls reusing a routing (``refresh_every``), run eagerly, which skips copying
            their inputs into the graph's buffers and their output back out. ``True`` graphs every
            warm call.
        layer_overrides: ``{layer_index: {field: value}}`` applied by :meth:`for_layer`.
        version: schema version of the serialised form.
    """

    num_q_clusters: int = 256
    num_k_clusters: int = 1024
    kmeans_iters_init: int = 50
    kmeans_iters: int = 2
    refresh_every: int = 1
    stagger_refresh: bool = False
    batch_shares_routing: bool = False
    routing: str = "error_aware"
    compensation: bool = True
    exact_centroids: int | None = None
    top_p: float = 0.9
    budget: float | None = None
    guaranteed_frac: float = 0.05
    cost_exponent: float = 1.0
    min_seq_len: int = 1024
    dense_layers: int = 0
    dense_above_timestep: float | None = None
    early_budget: float | None = None
    early_above_timestep: float | None = None
    block_m: int | None = None
    block_n: int | None = None
    impl: str = "auto"
    cuda_graph: bool | str = "auto"
    layer_overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        _check_int("num_q_clusters", self.num_q_clusters, 1)
        _check_int("num_k_clusters", self.num_k_clusters, 1)
        _check_int("kmeans_iters_init", self.kmeans_iters_init, 0)
        _check_int("kmeans_iters", self.kmeans_iters, 0)
        _check_int("refresh_every", self.refresh_every, 1)
        _check_int("min_seq_len", self.min_seq_len, 0)
        _check_int("dense_layers", self.dense_layers, 0)
        for name in ("dense_above_timestep", "early_above_timestep"):
            cut = getattr(self, name)
            if cut is not None and (isinstance(cut, bool) or not isinstance(cut, (int, float))
                                    or not math.isfinite(cut)):
                raise _fail(name, cut, "None or a finite number")
        if self.early_budget is not None:
            _check_fraction("early_budget", self.early_budget, allow_zero=False)
        if (self.early_budget is None) != (self.early_above_timestep is None):
            raise _fail("early_budget", self.early_budget, "set together with early_above_timestep (got "
                        f"early_above_timestep={self.early_above_timestep!r}), or both None")
        if self.routing not in _ROUTINGS:
            raise _fail("routing", self.routing, f"one of {_ROUTINGS}")
        for name in ("compensation", "batch_shares_routing", "stagger_refresh"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(name, getattr(self, name), "a bool")
        if self.exact_centroids is not None:
            _check_int("exact_centroids", self.exact_centroids, 1)
            if not self.compensation:
                raise _fail("exact_centroids", self.exact_centroids, "None when compensation=False (it chooses "
                            "how the skipped clusters are compensated)")
        if not (isinstance(self.cuda_graph, bool) or self.cuda_graph == "auto"):
            raise _fail("cuda_graph", self.cuda_graph, 'True, False or "auto"')
        _check_fraction("top_p", self.top_p, allow_zero=False)
        if self.budget is not None:
            _check_fraction("budget", self.budget, allow_zero=False)
        _check_fraction("guaranteed_frac", self.guaranteed_frac, allow_zero=True)
        gamma = self.cost_exponent
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0.0 <= gamma <= 4.0:
            raise _fail("cost_exponent", gamma, "a number in [0, 4]")
        for name in ("block_m", "block_n"):
            if getattr(self, name) is not None and getattr(self, name) not in _BLOCK_SIZES:
                raise _fail(name, getattr(self, name), f"None (the tile table) or one of {_BLOCK_SIZES}")
        if self.impl not in _IMPLS:
            raise _fail("impl", self.impl, f"one of {_IMPLS}")
        if self.version != CONFIG_VERSION:
            raise _fail("version", self.version, f"{CONFIG_VERSION} (the version this package reads)")
        self._check_overrides()

    def _check_overrides(self) -> None:
        if not isinstance(self.layer_overrides, dict):
            raise _fail("layer_overrides", self.layer_overrides, "a dict {layer_index: {field: value}}")
        for layer, override in self.layer_overrides.items():
            if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
                raise _fail("layer_overrides", layer, "layer indices that are ints >= 0")
            if not isinstance(override, dict):
                raise _fail(f"layer_overrides[{layer}]", override, "a dict {field: value}")
            unknown = set(override) - set(overridable_fields())
            if unknown:
                raise _fail(
                    f"layer_overrides[{layer}]", sorted(unknown), f"fields among {overridable_fields()}"
                )
            dataclasses.replace(self, layer_overrides={}, **override)

    def for_layer(self, layer: int | None) -> SvgEarConfig:
        """The config for one layer: its override entry applied to this config, else this config."""
        override = self.layer_overrides.get(layer) if layer is not None else None
        return dataclasses.replace(self, layer_overrides={}, **(override or {}))

    def replace(self, **changes: Any) -> SvgEarConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["layer_overrides"] = {int(k): dict(v) for k, v in self.layer_overrides.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SvgEarConfig:
        """Build from :meth:`to_dict` output; unknown keys and other versions are errors."""
        if not isinstance(data, dict):
            raise ValueError(f"SvgEarConfig.from_dict expected a dict, got {type(data).__name__}")
        unknown = set(data) - set(config_fields())
        if unknown:
            raise ValueError(
                f"SvgEarConfig has no field(s) {sorted(unknown)}; valid fields are {config_fields()}"
            )
        return cls(**data)

    def to_yaml(self, *, one_line: bool = False) -> str:
        """YAML text; ``one_line=True`` gives flow style with no newline, the form the compiled graphs carry.

        Graphs need one line because Inductor copies node arguments into comments of the code it
        generates, and a newline inside a comment ends it (torch 2.11: "SyntaxError: unmatched ')'").
        """
        if one_line:
            return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=True, width=math.inf).strip()
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> SvgEarConfig:
        return cls.from_dict(yaml.safe_load(text))


def config_fields() -> tuple[str, ...]:
    """Every field name of :class:`SvgEarConfig`, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(SvgEarConfig))


def overridable_fields() -> tuple[str, ...]:
    """Fields a per-layer override may set."""
    return tuple(n for n in config_fields() if n not in ("layer_overrides", "version"))
