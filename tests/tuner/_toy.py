"""``module:function`` models for the tuner tests: the tiny Wan of tests/_models.py with its inputs."""

from tests._models import tiny_wan, wan_inputs


def tiny_wan_2_layers():
    return tiny_wan(num_layers=2), wan_inputs()


def not_a_model():
    return "nope"
