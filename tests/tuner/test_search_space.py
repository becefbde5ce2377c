# What the per-layer search may choose: every suggestion is a valid config; the compensation's form only with it.
import optuna
import pytest

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.tuner._search_space import BLOCK_SIZES, EXACT_CENTROIDS, SearchSpace


@pytest.mark.parametrize("compensation", [True, False])
def test_suggestions_and_the_conservative_start_are_valid_configs(compensation):
    space = SearchSpace.for_layer(75_600, triton=True, compensation=compensation)
    base = SvgEarConfig(compensation=compensation)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen, tiles = set(), set()
    for _ in range(40):
        params = space.suggest(study.ask())
        base.replace(**params)  # raises on any invalid combination
        seen.add(params.get("exact_centroids", "absent"))
        tiles.add(params["block_m"])
    start = space.conservative()
    base.replace(**start)
    assert tiles == set(BLOCK_SIZES) and None in tiles  # the tile table's tiles are a choice
    assert (start["block_m"], start["block_n"]) == (None, None)
    if compensation:
        assert seen == set(EXACT_CENTROIDS) and start["exact_centroids"] is None
    else:
        assert seen == {"absent"} and "exact_centroids" not in start


def test_the_operating_point_runs_the_tile_tables_tiles_whatever_the_start_chose():
    from svg_ear_compile.tuner._uniform import operating_point

    start = {"num_q_clusters": 64, "num_k_clusters": 512, "block_m": 64, "block_n": 32, "budget": 0.1}
    params = operating_point(SearchSpace.for_layer(73_728, triton=True), start, 0.16)
    assert (params["block_m"], params["block_n"], params["budget"]) == (None, None, 0.16)
    assert "block_m" not in operating_point(SearchSpace.for_layer(73_728, triton=False), {"budget": 0.1}, 0.16)
