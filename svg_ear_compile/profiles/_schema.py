"""The per-GPU profile: what ``svg-ear-tune`` measured, as versioned, validated data.

A profile names the device and the model it was tuned for, holds the base config and one entry per
rewritten layer (its config override with the latency and PSNR measured for it), and the
end-to-end result. :meth:`Profile.config` turns it into the :class:`SvgEarConfig` the backend runs::

    >>> sig = ModelSignature(class_name="Toy", config_hash="0", num_layers=1, num_heads=2, head_dim=16,
    ...                      seq_len=48)
    >>> p = Profile(device="NVIDIA H100 80GB HBM3", model=sig, base_config={"min_seq_len": 0},
    ...             layers=[LayerResult(layer=0, config={"budget": 0.3}, latency_ms=1.0, psnr_db=31.0,
    ...                                 target_psnr_db=30.0)])
    >>> p.config().for_layer(0).budget, p.config().for_layer(1).budget is None
    (0.3, True)
    >>> Profile.from_yaml(p.to_yaml()) == p
    True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config import SvgEarConfig, config_fields, overridable_fields

PROFILE_SCHEMA = "svg_ear_profile"
PROFILE_VERSION = 1


class ProfileError(ValueError):
    """A profile that cannot be used: unreadable, another schema version, another device or model."""


def seq_len_bucket(seq_len: int) -> int:
    """The power of two at or above ``seq_len``: profiles tuned for 32,760 tokens serve 32,768-token bucket."""
    return 1 << max(int(seq_len) - 1, 0).bit_length()


@dataclass(frozen=True)
class ModelSignature:
    """What identifies the model a profile fits. The backend sees only the graph, so it matches on
    ``num_layers`` (rewritten attention calls), ``num_heads``, ``head_dim`` and ``seq_len_bucket``;
    ``class_name`` and ``config_hash`` are for people and for the tuner's own checks.
    ``None`` means "not known" (a block graph shared by every layer does not know the layer count)."""

    class_name: str | None = None
    config_hash: str | None = None
    num_layers: int | None = None
    num_heads: int | None = None
    head_dim: int | None = None
    seq_len: int | None = None
    seq_len_bucket: int | None = None

    def __post_init__(self) -> None:
        if self.seq_len is not None and self.seq_len_bucket is None:
            object.__setattr__(self, "seq_len_bucket", seq_len_bucket(self.seq_len))

    def mismatch(self, graph: ModelSignature) -> str | None:
        """Why ``graph`` (what a compiled graph shows) does not fit this profile's model, or None."""
        for name in ("num_layers", "num_heads", "head_dim", "seq_len_bucket"):
            mine, theirs = getattr(self, name), getattr(graph, name)
            if mine is not None and theirs is not None and mine != theirs:
                return f"{name}: profile has {mine}, the model has {theirs}"
        return None

    def describe(self) -> str:
        return (f"{self.class_name or '?'} ({self.num_layers} layers x {self.num_heads} heads x {self.head_dim}, "
                f"S={self.seq_len} in bucket {self.seq_len_bucket})")


@dataclass(frozen=True)
class LayerResult:
    """One rewritten layer: its config override and what it measured on the calibration data."""

    layer: int
    config: dict[str, Any]
    latency_ms: float | None = None
    psnr_db: float | None = None
    target_psnr_db: float | None = None
    dense_latency_ms: float | None = None
    trials: int | None = None


@dataclass(frozen=True)
class Profile:
    """A tuned per-GPU profile (see the module docstring); validated on construction."""

    device: str
    model: ModelSignature
    base_config: dict[str, Any] = field(default_factory=dict)
    layers: list[LayerResult] = field(default_factory=list)
    end_to_end: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    command: str = ""
    schema_version: int = PROFILE_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != PROFILE_VERSION:
            raise ProfileError(f"profile schema_version={self.schema_version!r} is not supported: this package "
                               f"reads version {PROFILE_VERSION}; re-run svg-ear-tune to regenerate it")
        if not isinstance(self.device, str) or not self.device:
            raise ProfileError(f"profile device={self.device!r} is invalid: expected the GPU name as a string")
        base_fields = set(config_fields()) - {"layer_overrides", "version"}
        unknown = set(self.base_config) - base_fields
        if unknown:
            raise ProfileError(f"profile base_config has unknown field(s) {sorted(unknown)}; "
                               f"valid fields are {sorted(base_fields)}")
        seen = set()
        for entry in self.layers:
            if entry.layer in seen:
                raise ProfileError(f"profile layers: layer {entry.layer} appears twice")
            seen.add(entry.layer)
            unknown = set(entry.config) - set(overridable_fields())
            if unknown:
                raise ProfileError(f"profile layers[{entry.layer}].config has unknown field(s) {sorted(unknown)}")
        try:
            self.config()
        except ValueError as error:
            raise ProfileError(f"profile holds an invalid config: {error}") from None

    def config(self) -> SvgEarConfig:
        """The base config with every layer's entry as its ``layer_overrides``."""
        overrides = {entry.layer: dict(entry.config) for entry in self.layers}
        return SvgEarConfig(**self.base_config, layer_overrides=overrides)

    def tuned_batch(self) -> int | None:
        """The attention batch the tuner's end-to-end runs used: 2 with guidance as one batch of both
        prompts (``svg-ear-tune --guidance-calls batched``), else 1; None where the profile does not say."""
        if "guidance" not in self.end_to_end:
            return None
        guided = (self.end_to_end["guidance"] or 1.0) > 1.0
        return 2 if guided and self.end_to_end.get("guidance_batched") else 1

    def config_for(self, layer: int) -> SvgEarConfig:
        """Exact layer entry, else the base config."""
        return self.config().for_layer(layer)

    def to_dict(self) -> dict[str, Any]:
        data = {"schema": PROFILE_SCHEMA, "schema_version": self.schema_version, **dataclasses.asdict(self)}
        data["layers"] = [_clean(dataclasses.asdict(entry)) for entry in self.layers]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        """Validate and build; every problem is a :class:`ProfileError` naming the field."""
        if not isinstance(data, dict) or data.get("schema") != PROFILE_SCHEMA:
            raise ProfileError(f"not an SVG-EAR profile: expected a mapping with schema: {PROFILE_SCHEMA}")
        data = dict(data)
        data.pop("schema")
        version = data.get("schema_version")
        if version != PROFILE_VERSION:
            raise ProfileError(f"profile schema_version={version!r} is not supported: this package reads version "
                               f"{PROFILE_VERSION}; re-run svg-ear-tune to regenerate it")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        missing = {"device", "model"} - set(data)
        if unknown or missing:
            raise ProfileError(f"profile has unknown key(s) {sorted(unknown)} / lacks {sorted(missing)}; "
                               f"keys are {sorted(known)}")
        try:
            data["model"] = ModelSignature(**_mapping(data["model"], "model"))
            data["layers"] = [LayerResult(**_mapping(entry, "layers[]")) for entry in data.get("layers") or []]
            for name in ("base_config", "end_to_end", "versions"):
                data[name] = _mapping(data.get(name) or {}, name)
        except TypeError as error:
            raise ProfileError(f"profile has a malformed entry: {error}") from None
        return cls(**data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Profile:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ProfileError(f"profile is not valid YAML: {error}") from None
        return cls.from_dict(data)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"profile {name} must be a mapping, got {type(value).__name__}")
    return dict(value)


def _clean(entry: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf become None: YAML readers disagree on them."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in entry.items()}
