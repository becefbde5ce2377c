# A profile round-trips through YAML; "auto" picks only one made for this device and model; bad files fail clearly.
import dataclasses
import pathlib
import warnings

import pytest
import yaml

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.backend import config_from_options
from svg_ear_compile.profiles import (
    LayerResult,
    ModelSignature,
    Profile,
    ProfileError,
    ProfileWarning,
    load_profile,
    read_profile,
    write_profile,
)

H100 = "NVIDIA H100 80GB HBM3"
SIG = ModelSignature(class_name="WanTransformer3DModel", config_hash="abc", num_layers=2, num_heads=2, head_dim=16,
                     seq_len=48)


def _profile(device=H100, model=SIG, budgets=(0.3, 0.5)) -> Profile:
    layers = [LayerResult(layer=i, config={"budget": b, "num_k_clusters": 16}, latency_ms=1.5, psnr_db=33.2,
                          target_psnr_db=30.0) for i, b in enumerate(budgets)]
    return Profile(device=device, model=model, base_config={"min_seq_len": 0}, layers=layers,
                   end_to_end={"psnr_db": 31.0, "speedup": 1.2}, versions={"torch": "2.13"}, created="2025-01-01",
                   command="svg-ear-tune ...")


def test_round_trip_and_config(tmp_path):
    profile = _profile()
    path = write_profile(profile, tmp_path / "p.yaml")
    assert read_profile(path) == profile
    assert yaml.safe_load(path.read_text())["schema_version"] == 1
    config = profile.config()
    assert config.for_layer(0).budget == 0.3 and config.for_layer(1).budget == 0.5
    assert config.for_layer(2) == SvgEarConfig(min_seq_len=0)
    assert [p.name for p in tmp_path.iterdir()] == ["p.yaml"]  # no temporary file left


def test_auto_matches_device_and_model(tmp_path):
    write_profile(_profile(device="NVIDIA A100-SXM4-80GB", budgets=(0.9, 0.9)), tmp_path / "a100.yaml")
    write_profile(_profile(model=ModelSignature(num_layers=3, num_heads=2, head_dim=16, seq_len=48)),
                  tmp_path / "other_model.yaml")
    write_profile(_profile(), tmp_path / "right.yaml")
    found = load_profile("auto", device_name=H100, signature=SIG, search_dirs=[tmp_path])
    assert found is not None and found.config().for_layer(0).budget == 0.3


@pytest.mark.parametrize("device, model, why", [
    ("NVIDIA A100-SXM4-80GB", SIG, "this device is"),
    (H100, ModelSignature(num_layers=2, num_heads=12, head_dim=128, seq_len=32760), "another model"),
])
def test_auto_without_a_fitting_profile_warns_once_and_gives_none(tmp_path, device, model, why):
    write_profile(_profile(), tmp_path / "p.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_profile("auto", device_name=device, signature=model, search_dirs=[tmp_path]) is None
    messages = [str(w.message) for w in caught if issubclass(w.category, ProfileWarning)]
    assert len(messages) == 1 and why in messages[0] and "conservative default" in messages[0]


def test_named_profile_of_another_gpu_or_model_is_an_error(tmp_path):
    path = write_profile(_profile(), tmp_path / "p.yaml")
    with pytest.raises(ProfileError, match="tuned on 'NVIDIA H100.*this device is 'cpu'"):
        load_profile(path, device_name="cpu")
    with pytest.raises(ProfileError, match="another model.*num_layers: profile has 2, the model has 30"):
        load_profile(path, device_name=H100, signature=ModelSignature(num_layers=30, num_heads=2, head_dim=16))


@pytest.mark.parametrize("text, message", [
    ("schema: svg_ear_profile\nschema_version: [1\n", "not valid YAML"),
    ("schema: svg_ear_profile\nschema_version: 99\ndevice: x\n", "schema_version=99 is not supported"),
    ("- just a list\n", "not an SVG-EAR profile"),
    ("!!python/object/apply:os.system ['echo hi']\n", "not valid YAML"),  # safe_load refuses objects
])
def test_bad_files_give_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message) as info:
        read_profile(path)
    assert "bad.yaml" in str(info.value)


def test_invalid_layer_config_is_rejected():
    data = _profile().to_dict()
    data["layers"][0]["config"] = {"budget": 7.0}
    with pytest.raises(ProfileError, match="budget"):
        Profile.from_dict(data)


def test_unwritable_directory_is_a_clear_error_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the output directory should be")  # unwritable even for root
    with pytest.raises(ProfileError, match="cannot write .*not_a_dir/p.yaml"):
        write_profile(_profile(), blocker / "p.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_dir"]


def test_backend_profile_option_reads_profiles_and_plain_configs(tmp_path):
    path = write_profile(_profile(), tmp_path / "p.yaml")
    config = config_from_options({"profile": str(path), "num_q_clusters": 4}, device_name=H100)
    assert config.for_layer(1).budget == 0.5 and config.num_q_clusters == 4
    with pytest.raises(ProfileError, match="this device is 'cpu'"):
        config_from_options({"profile": str(path)}, device_name="cpu")
    plain = pathlib.Path(tmp_path / "plain.yaml")
    plain.write_text(SvgEarConfig(budget=0.25).to_yaml())
    assert config_from_options({"profile": str(plain)}).budget == 0.25
    with pytest.warns(ProfileWarning, match="no graph"):
        assert config_from_options({"profile": "auto"}) == SvgEarConfig()


def test_auto_matches_the_device_the_graph_runs_on_not_the_current_gpu(tmp_path, monkeypatch):
    pytest.importorskip("diffusers")
    import torch

    from svg_ear_compile.profiles import graph_device_name, graph_signature

    from .._models import capture_graphs, tiny_wan, wan_inputs

    with torch.no_grad():
        graph = capture_graphs(tiny_wan(num_layers=2), wan_inputs())[0]
    shown = graph_signature(graph)
    model = ModelSignature(class_name="WanTransformer3DModel", config_hash="abc", num_layers=shown.num_layers,
                           num_heads=shown.num_heads, head_dim=shown.head_dim, seq_len=shown.seq_len)
    write_profile(_profile(device="cpu", model=model), tmp_path / "cpu.yaml")
    # A machine with a GPU: the CPU graph must still match the profile tuned on "cpu".
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: H100)
    assert graph_device_name(graph) == "cpu"
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfileWarning)
        config = config_from_options({"profile": "auto", "min_seq_len": 0}, graph, profile_dirs=[str(tmp_path)])
    assert config.for_layer(1).budget == 0.5
    with pytest.warns(ProfileWarning, match="this device is 'NVIDIA H100"):
        config_from_options({"profile": "auto", "min_seq_len": 0}, graph, device_name=H100,
                            profile_dirs=[str(tmp_path)])


@pytest.mark.parametrize("recorded, tuned", [
    ({"guidance": 2.0, "guidance_batched": True}, 2),
    ({"guidance": 2.0, "guidance_batched": False}, 1),
    ({"guidance": 1.0, "guidance_batched": True}, 1),  # no guidance: nothing to batch
    ({"guidance": None}, 1),
    ({"psnr_db": 31.0}, None),  # a profile that does not record its guidance
])
def test_a_profile_knows_the_attention_batch_it_was_tuned_on(recorded, tuned):
    assert Profile(device=H100, model=SIG, end_to_end=recorded).tuned_batch() == tuned


def test_a_profile_tuned_on_another_guidance_batch_loads_with_one_warning_naming_the_retune(tmp_path):
    """Guidance as one batch of both prompts routes them alike and scores 2-3 dB apart from guidance as two
    calls at one density: a profile tuned one way still loads for a graph run the other way, with a warning."""
    pytest.importorskip("diffusers")
    import torch

    from svg_ear_compile.profiles import graph_attention_batch, graph_signature

    from .._models import capture_graphs, tiny_wan, wan_inputs

    with torch.no_grad():
        single, batched = (capture_graphs(tiny_wan(num_layers=2), wan_inputs(batch=batch))[0] for batch in (1, 2))
    assert (graph_attention_batch(single), graph_attention_batch(batched)) == (1, 2)
    shown = graph_signature(single)
    model = ModelSignature(num_layers=shown.num_layers, num_heads=shown.num_heads, head_dim=shown.head_dim,
                           seq_len=shown.seq_len)
    for name, batched_guidance in (("batched", True), ("two", False)):
        profile = dataclasses.replace(_profile(device="cpu", model=model),
                                      end_to_end={"guidance": 2.0, "guidance_batched": batched_guidance})
        write_profile(profile, tmp_path / name / "p.yaml")
    options = {"profile": "auto", "min_seq_len": 0}
    for tuned, graph, fits in (("batched", batched, True), ("two", single, True), ("batched", single, False),
                               ("two", batched, False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = config_from_options(options, graph, profile_dirs=[str(tmp_path / tuned)])
        assert config.for_layer(1).budget == 0.5  # the profile is used either way
        assert [w.category for w in caught] == ([] if fits else [ProfileWarning])
        if not fits:
            retune = "two" if tuned == "batched" else "batched"
            assert f"--guidance-calls {retune}" in str(caught[0].message)
            assert ("one batch of both prompts" if tuned == "batched" else "two calls") in str(caught[0].message)
