# The Triton greedy fill selects exactly the reference's blocks, for every routing mode that fills.
import os

import pytest
import torch

from svg_ear_compile import SvgEarConfig
from svg_ear_compile.kernels import routing, routing_ref

from ._no_launch import NoLaunch

DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET", "0") == "1" else "cuda"


def _problem(seed: int, groups: int = 2, num_q: int = 7, num_k: int = 37):
    gen = torch.Generator().manual_seed(seed)
    key_sizes = torch.randint(0, 40, (groups, num_k), generator=gen)
    key_sizes[:, 3] = 0  # empty clusters: never selected, never counted
    query_sizes = torch.randint(1, 50, (groups, num_q), generator=gen)
    mass = torch.softmax(torch.randn(groups, num_q, num_k, generator=gen), -1) * (key_sizes > 0).unsqueeze(1)
    mass[0, 1, 5:9] = mass[0, 1, 5]  # ties in the guaranteed set's order: kept in position order
    log_error = torch.randn(groups, num_q, num_k, generator=gen).round(decimals=1)  # ties in the fill's order
    log_error[1, 2, :4] = float("nan")  # a NaN error ranks last
    return tuple(t.to(DEVICE) for t in (mass, log_error, query_sizes, key_sizes))


@pytest.mark.parametrize("config", [
    SvgEarConfig(budget=0.1),
    SvgEarConfig(budget=0.3, guaranteed_frac=0.2, cost_exponent=0.5),
    SvgEarConfig(budget=0.001),  # the guarantee cut to the budget: the heaviest cluster alone
    SvgEarConfig(),  # no budget: each row's area is its top-p set's
    SvgEarConfig(budget=0.05, routing="attention"),
], ids=["ear", "ear-guarantee", "ear-tiny", "ear-top-p-area", "svg2-budget"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_selects_the_reference_blocks(config, seed):
    args = _problem(seed)
    expected = routing_ref.route(*args, config)
    got = routing.route(*args, config)
    assert got.dtype == torch.bool and torch.equal(got, expected)
    assert got.any(-1).all()  # every row keeps at least its heaviest cluster


def test_wide_rows_and_a_group_without_keys():
    """Wide rows (1,024 clusters, the operating point's, on a GPU; 256 in the slow interpreter) and a group
    whose clusters are all empty (nothing to select)."""
    mass, log_error, query_sizes, key_sizes = _problem(4, groups=3, num_q=3, num_k=1024 if DEVICE == "cuda" else 256)
    key_sizes[2] = 0
    mass[2] = 0.0
    config = SvgEarConfig(budget=0.03)
    got = routing.route(mass, log_error, query_sizes, key_sizes, config)
    assert torch.equal(got, routing_ref.route(mass, log_error, query_sizes, key_sizes, config))
    assert not got[2].any()


def test_rows_wider_than_a_program_holds_take_the_torch_fill(monkeypatch):
    monkeypatch.setattr(routing, "MOST_CLUSTERS", 16)
    monkeypatch.setattr(routing, "_fill_kernel", NoLaunch())
    args = _problem(6)
    config = SvgEarConfig(budget=0.1)
    assert torch.equal(routing.route(*args, config), routing_ref.route(*args, config))
