# svg-ear-tune: bad input gives one clear message and writes nothing; two worker processes share one journal-file
# study and both contribute trials; an interrupted run, run again, resumes with every finished trial kept.
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("diffusers")

from svg_ear_compile.tuner.cli import main  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOY = "tests.tuner._toy:tiny_wan_2_layers"
# On the CPU wherever the suite runs: on a GPU each new tile size would compile kernels inside the time limits.
FAST = ["--steps", "3", "--seeds", "0", "--min-seq-len", "0", "--psnr-target", "25", "--rounds", "0", "--quiet",
        "--device", "cpu", "--uniform-trials", "2"]


def _cli(*args: str) -> subprocess.Popen:
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.Popen([sys.executable, "-m", "svg_ear_compile.tuner.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trials(journal: pathlib.Path) -> dict[str, list]:
    """The trials of each per-layer study (the uniform stage's study aside)."""
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
            for s in optuna.get_all_study_summaries(storage) if "/layer" in s.study_name}


@pytest.mark.parametrize("model, extra, message", [
    ("./no/such/model", ["--resolution", "480x832x81"], "no such directory"),
    ("no_such_module_xyz:make", [], "cannot import make from no_such_module_xyz"),
    ("tests.tuner._toy:not_a_model", [], "must return (model, example_inputs dict)"),
    (TOY, ["--trials", "0"], "give a trial budget"),
    (TOY, ["--conditions", "/no/such/file.pt"], "--conditions '/no/such/file.pt': cannot load it"),
    (TOY, ["--guidance", "0"], "--guidance 0.0: expected a number > 0"),
    (TOY, ["--guidance", "nan"], "--guidance nan: expected a number > 0"),
])
def test_bad_input_is_one_clear_message_and_nothing_written(tmp_path, capsys, model, extra, message):
    out = tmp_path / "out"
    assert main(["--model", model, "--out", str(out), *FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("svg-ear-tune: error:") and message in err and len(err.splitlines()) == 1
    assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["--model", TOY, "--out", str(blocker / "out"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "cannot write there" in err


def test_two_workers_share_one_journal_study(tmp_path):
    journal = tmp_path / "shared.journal"
    # A time limit (not a trial count) keeps both workers busy until it ends, so both must contribute.
    run = _cli("--model", TOY, "--out", str(tmp_path / "out"), "--storage", str(journal), "--workers", "2",
               "--trials", "0", "--timeout", "10", "--no-plot", *FAST)
    stdout, stderr = run.communicate(timeout=240)
    assert run.returncode in (0, 1), stderr[-3000:]
    studies = _trials(journal)
    assert len(studies) == 2  # one study per layer, both shared
    workers = {t.user_attrs.get("worker") for trials in studies.values() for t in trials}
    assert len(workers) == 2, workers
    for trials in studies.values():
        assert len({t.user_attrs.get("worker") for t in trials}) == 2
    assert "profile:" in stdout


def test_interrupted_run_resumes_without_losing_trials(tmp_path):
    out, journal = tmp_path / "out", tmp_path / "study.journal"
    args = ["--model", TOY, "--out", str(out), "--storage", str(journal), "--trials", "12", "--workers", "1",
            "--no-plot", *FAST]
    first = _cli(*args)
    deadline = time.time() + 120
    done = []
    while time.time() < deadline and first.poll() is None:
        if journal.exists():
            done = [t for trials in _trials(journal).values() for t in trials
                    if t.state == optuna.trial.TrialState.COMPLETE]
            if len(done) >= 2:
                break
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and "Run the same command again to resume" in stderr
    assert not list(out.glob("*.yaml"))  # no profile from an interrupted run
    before = {(name, t.number): t.params for name, trials in _trials(journal).items() for t in trials
              if t.state == optuna.trial.TrialState.COMPLETE}
    manifest = out / "calibration" / "calibration.json"
    captured_at = manifest.stat().st_mtime_ns

    second = _cli(*args)
    stdout, stderr = second.communicate(timeout=240)
    assert second.returncode in (0, 1), stderr[-3000:]
    after = _trials(journal)
    for (name, number), params in before.items():
        assert after[name][number].params == params  # nothing lost or redone
    for trials in after.values():
        assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 12
    assert manifest.stat().st_mtime_ns == captured_at  # calibration reused, not captured again
    assert len(list(out.glob("*.yaml"))) == 1 and "profile:" in stdout


def test_summary_names_exact_layers_and_why(tmp_path, capsys):
    # On a CPU the reference op is far slower than SDPA at this size: every layer runs exact, and says so.
    assert main(["--model", TOY, "--out", str(tmp_path / "out"), "--trials", "3", *FAST]) == 0
    out = capsys.readouterr().out
    assert out.count("exact attention (no sparse config was faster)") == 2
    assert "min_seq_len=2147483647" not in out


def test_summary_says_how_the_slack_was_spent():
    from svg_ear_compile.tuner.cli import _slack_lines

    e2e = {"finalists": [{"start_psnr_db": 30.23, "start_ms": 1578.2, "psnr_db": 30.21, "sparse_ms": 1435.5,
                          "chosen": True},
                         {"start_psnr_db": 30.12, "start_ms": 1591.3, "psnr_db": 30.16, "sparse_ms": 1582.0,
                          "chosen": False}],
           "budget_trading": {"layers": [0, 4], "sensitivity": [0.4091, 0.5909], "budgets": [0.14, 0.1],
                              "psnr_db": 30.21}}
    assert _slack_lines(e2e) == [
        "finalist 1: 30.23 dB, 1578.2 ms -> 30.21 dB, 1435.5 ms (kept)",
        "finalist 2: 30.12 dB, 1591.3 ms -> 30.16 dB, 1582.0 ms",
        "budget trading (kept finalist): sensitivity by layer 0: 41%, 4: 59%; traded budgets reach 30.21 dB"]
    e2e["budget_trading"]["budgets"] = None
    assert _slack_lines({"finalists": e2e["finalists"][:1], "budget_trading": e2e["budget_trading"]}) == [
        "budget trading (kept finalist): sensitivity by layer 0: 41%, 4: 59%; no cheaper allocation verified"]
    schedule = {"applied": True, "early_steps": 5, "boost": 2.0, "late_share": 0.2726, "psnr_db": 30.05}
    assert _slack_lines({"step_schedule": schedule}) == [
        "budget schedule over steps (kept finalist): the first 5 steps at 2x their budgets, the later ones at "
        "0.273x, reach 30.05 dB"]
    assert _slack_lines({"step_schedule": {"applied": False, "checks": []}}) == [
        "budget schedule over steps (kept finalist): none met the target"]
    assert _slack_lines({"budget_scale": {"applied": True, "factor": 0.8123, "psnr_db": 30.12}}) == [
        "every budget scaled (kept finalist): x0.812 reaches 30.12 dB"]
    assert _slack_lines({"budget_scale": {"applied": False, "checks": [[0.8, 29.5]]}}) == [
        "every budget scaled (kept finalist): no smaller factor met the target"]
    assert _slack_lines({}) == []  # every layer exact, or the target missed: nothing was spent


def test_batched_guidance_tunes_guided_runs_and_routes_both_prompts_alike(tmp_path):
    from svg_ear_compile.profiles import read_profile
    from svg_ear_compile.tuner._end_to_end import compiled, final_psnr
    from svg_ear_compile.tuner._model import Guidance, denoise, load_model

    out = tmp_path / "out"
    assert main(["--model", TOY, "--out", str(out), "--trials", "3", *FAST, "--keep-sparse", "--guidance", "5",
                 "--guidance-calls", "batched"]) == 0
    profile = read_profile(next(out.glob("*.yaml")))
    assert profile.config().batch_shares_routing  # what the backend runs with this profile
    assert profile.end_to_end["guidance"] == 5.0 and profile.end_to_end["guidance_batched"]
    assert "--guidance 5" in profile.command and "--guidance-calls batched" in profile.command
    # The recorded PSNR is that of guided runs: recompute it from a guided sparse run and a guided dense one.
    tune_model, guidance = load_model(TOY), Guidance(5.0, batched=True)
    inputs = tune_model.inputs_for(0)
    dense = denoise(tune_model.model, inputs, 3, guidance=guidance)
    sparse = denoise(compiled(tune_model, profile.config()), inputs, 3, guidance=guidance)
    assert profile.end_to_end["psnr_db"] == pytest.approx(final_psnr([sparse], [dense]), abs=1e-3)
