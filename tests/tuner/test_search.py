# A later round's study starts from the earlier rounds' fastest configs that meet its (raised) target.
import pytest

optuna = pytest.importorskip("optuna")

from svg_ear_compile.tuner._search import Task, earlier_fastest, open_storage, open_study, study_name  # noqa: E402

DISTRIBUTIONS = {"budget": optuna.distributions.FloatDistribution(0.01, 1.0)}


def _add(study, budget: float, latency_ms: float, psnr_db: float) -> None:
    study.add_trial(optuna.trial.create_trial(params={"budget": budget}, distributions=DISTRIBUTIONS,
                                              value=latency_ms, user_attrs={"psnr_db": psnr_db}))


def test_earlier_fastest_takes_feasible_configs_of_every_earlier_round_fastest_first(tmp_path):
    storage = open_storage(str(tmp_path / "study.journal"))
    round0 = open_study(storage, study_name("p", 3, 0))
    _add(round0, 0.05, 1.0, 39.0)  # fastest, but below the raised target
    _add(round0, 0.30, 4.0, 47.0)
    _add(round0, 0.10, 2.0, 41.0)
    _add(round0, 0.10, 2.5, 41.2)  # the same config measured again: kept once
    round1 = open_study(storage, study_name("p", 3, 1))
    _add(round1, 0.20, 3.0, 45.0)
    _add(open_study(storage, study_name("p", 4, 0)), 0.02, 0.5, 60.0)  # another layer: not read

    starts = earlier_fastest(storage, "p", Task(layer=3, round=2, target_psnr_db=40.0))
    assert starts == [{"budget": 0.10}, {"budget": 0.20}, {"budget": 0.30}]
    assert earlier_fastest(storage, "p", Task(layer=3, round=2, target_psnr_db=40.0), count=1) == [{"budget": 0.10}]
    assert earlier_fastest(storage, "p", Task(layer=3, round=1, target_psnr_db=46.0)) == [{"budget": 0.30}]
    assert earlier_fastest(storage, "p", Task(layer=3, round=0, target_psnr_db=30.0)) == []
