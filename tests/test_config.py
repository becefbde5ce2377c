# SvgEarConfig validates every field, resolves per-layer overrides, and round-trips through dict and YAML.
import pytest
import yaml

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.config import CONFIG_VERSION, config_fields


def test_defaults_are_valid_and_versioned():
    cfg = SvgEarConfig()
    assert cfg.version == CONFIG_VERSION
    assert cfg.routing == "error_aware" and cfg.compensation


def test_dict_and_yaml_round_trip_with_overrides():
    cfg = SvgEarConfig(num_q_clusters=100, budget=0.25, routing="attention",
                       layer_overrides={0: {"budget": 1.0}, 5: {"num_k_clusters": 64, "compensation": False}})
    assert SvgEarConfig.from_dict(cfg.to_dict()) == cfg
    text = cfg.to_yaml()
    assert SvgEarConfig.from_yaml(text) == cfg
    assert yaml.safe_load(text)["layer_overrides"][5]["num_k_clusters"] == 64


def test_layer_override_applies_only_to_its_layer():
    cfg = SvgEarConfig(budget=0.2, layer_overrides={3: {"budget": 0.5, "kmeans_iters": 3}})
    assert cfg.for_layer(3).budget == 0.5 and cfg.for_layer(3).kmeans_iters == 3
    assert cfg.for_layer(2).budget == 0.2 and cfg.for_layer(None).budget == 0.2
    assert cfg.for_layer(3).layer_overrides == {}


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("num_q_clusters", 0, ">= 1"),
        ("num_k_clusters", 2.5, "int"),
        ("kmeans_iters", -1, ">= 0"),
        ("routing", "topk", "error_aware"),
        ("compensation", "yes", "bool"),
        ("batch_shares_routing", 1, "bool"),
        ("exact_centroids", 0, ">= 1"),
        ("exact_centroids", 8.0, "int"),
        ("top_p", 0.0, "(0, 1]"),
        ("top_p", 1.5, "(0, 1]"),
        ("budget", 0.0, "(0, 1]"),
        ("guaranteed_frac", -0.1, "[0, 1]"),
        ("cost_exponent", float("nan"), "[0, 4]"),
        ("min_seq_len", True, "int"),
        ("block_m", 48, "one of"),
        ("impl", "cuda", "one of"),
        ("version", 99, "version"),
    ],
)
def test_invalid_value_names_field_value_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as info:
        SvgEarConfig(**{field: value})
    message = str(info.value)
    assert field in message and repr(value) in message and allowed in message


def test_exact_centroids_need_compensation():
    assert SvgEarConfig(exact_centroids=64).for_layer(0).exact_centroids == 64
    with pytest.raises(ValueError, match="exact_centroids=64.*compensation=False"):
        SvgEarConfig(exact_centroids=64, compensation=False)


def test_invalid_override_is_rejected_at_construction():
    with pytest.raises(ValueError, match="layer_overrides\\[2\\].*nonsense"):
        SvgEarConfig(layer_overrides={2: {"nonsense": 1}})
    with pytest.raises(ValueError, match="budget"):
        SvgEarConfig(layer_overrides={2: {"budget": 7}})
    with pytest.raises(ValueError, match="layer indices"):
        SvgEarConfig(layer_overrides={"a": {"budget": 0.5}})


def test_unknown_key_in_dict_lists_valid_fields():
    with pytest.raises(ValueError) as info:
        SvgEarConfig.from_dict({"budgett": 0.2})
    assert "budgett" in str(info.value) and all(f in str(info.value) for f in config_fields())


@pytest.mark.parametrize("fields, message", [
    ({"early_budget": 0.3}, "set together with early_above_timestep"),
    ({"early_above_timestep": 500.0}, "set together with early_above_timestep"),
    ({"early_budget": 0.0, "early_above_timestep": 500.0}, "early_budget=0.0 is invalid"),
    ({"early_budget": 1.5, "early_above_timestep": 500.0}, "early_budget=1.5 is invalid"),
    ({"early_budget": 0.3, "early_above_timestep": float("nan")}, "early_above_timestep=nan is invalid"),
])
def test_early_budget_needs_its_timestep_and_a_fraction(fields, message):
    with pytest.raises(ValueError, match=message):
        SvgEarConfig(**fields)
    with pytest.raises(ValueError, match=message):
        SvgEarConfig(layer_overrides={0: fields})
