# What the per-layer search may choose: every suggestion is a valid config; the compensation's form only with it.
import optuna
import pytest

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.tuner._search_space import EXACT_CENTROIDS, SearchSpace


@pytest.mark.parametrize("compensation", [True, False])
def test_suggestions_and_the_conservative_start_are_valid_configs(compensation):
    space = SearchSpace.for_layer(75_600, triton=True, compensation=compensation)
    base = SvgEarConfig(compensation=compensation)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        params = space.suggest(study.ask())
        base.replace(**params)  # raises on any invalid combination
        seen.add(params.get("exact_centroids", "absent"))
    start = space.conservative()
    base.replace(**start)
    if compensation:
        assert seen == set(EXACT_CENTROIDS) and start["exact_centroids"] is None
    else:
        assert seen == {"absent"} and "exact_centroids" not in start
