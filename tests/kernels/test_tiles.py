# Tile lookup is a pure table read: buckets pick the entry, explicit values win, unknown families fall back.
import pytest

from svg_ear_compile.kernels import tiles
from svg_ear_compile.kernels.tiles import TileConfig, gpu_family, tile_config


def test_buckets_and_fallbacks():
    assert tile_config(128, 75_600, family="H100") == TileConfig(128, 128, 8, 3)
    assert tile_config(96, 75_600, family="H100") == tile_config(128, 75_600, family="H100")
    assert tile_config(40, 1024, family="H200") == tile_config(64, 1024, family="H200")
    assert tile_config(128, 32_760, family="B200") == tile_config(128, 32_760, family="default")
    assert tile_config(128, 75_600, family="interpreter").block_m <= 32


def test_explicit_values_override_the_table():
    config = tile_config(128, 75_600, family="H100", block_m=64, num_stages=3)
    assert config == TileConfig(64, 128, 8, 3)


def test_cpu_is_the_interpreter_and_bad_sizes_raise():
    assert gpu_family("cpu") == "interpreter"
    with pytest.raises(ValueError, match="head_dim=0"):
        tile_config(0, 10)


def test_remainder_tiles_of_the_table_give_way_to_a_smaller_block_m(monkeypatch):
    assert tile_config(128, 75_600, family="H100").remainder_m is None
    assert tile_config(128, 75_600, family="H100", remainder_m=64).remainder_m == 64
    monkeypatch.setitem(tiles._TABLE, ("H100", 128, "long"), TileConfig(128, 128, 8, 2, remainder_m=64))
    assert tile_config(128, 75_600, family="H100").remainder_m == 64
    assert tile_config(128, 75_600, family="H100", block_m=64) == TileConfig(64, 128, 8, 2)  # 64 rows: no split


def test_few_keys_per_query_cluster_take_the_short_tiles():
    short, long = tile_config(128, 8_192, family="H100"), tile_config(128, 32_760, family="H100")
    assert short != long
    few = tiles.FEW_KEYS / 32_760
    assert tile_config(128, 32_760, family="H100", density=few * 0.99) == short
    assert tile_config(128, 32_760, family="H100", density=few) == long
    assert tile_config(128, 32_760, family="H100", density=1.0) == long
    assert tile_config(128, 8_192, family="H100", density=1.0) == short  # a short sequence stays short
    assert tile_config(128, 32_760, family="H100", density=0.01, block_m=128).block_m == 128
    with pytest.raises(ValueError, match="density=0"):
        tile_config(128, 32_760, family="H100", density=0.0)
