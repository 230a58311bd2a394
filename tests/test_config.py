from dataclasses import dataclass, field
from typing import Literal

import pytest

from fluxbridge.config import from_mapping, to_mapping
from fluxbridge.errors import ConfigError


@dataclass
class Inner:
    members: int = 5
    noise: float = 0.8


@dataclass
class Outer:
    seed: int
    mode: Literal["real", "synthetic"] = "real"
    inner: Inner = field(default_factory=Inner)
    years: list[int] = field(default_factory=lambda: [2001, 2002])


def test_round_trip():
    cfg = from_mapping(Outer, {"seed": 1, "inner": {"members": 3}}, "x.yaml")
    assert cfg.inner.members == 3 and cfg.inner.noise == 0.8
    assert to_mapping(cfg)["inner"] == {"members": 3, "noise": 0.8}


@pytest.mark.parametrize(
    "data, match",
    [
        ({"seed": 1, "sede": 2}, "unknown key.*'sede'"),
        ({}, "x.yaml.seed: required"),
        ({"seed": "one"}, "x.yaml.seed: expected an integer"),
        ({"seed": 1, "mode": "fake"}, "x.yaml.mode: 'fake' is not one of"),
        ({"seed": 1, "inner": {"membres": 3}}, r"x.yaml.inner: unknown key"),
        ({"seed": 1, "years": "2001"}, "x.yaml.years: expected a list"),
        ({"seed": True}, "expected an integer"),
    ],
)
def test_errors_name_the_key(data, match):
    with pytest.raises(ConfigError, match=match):
        from_mapping(Outer, data, "x.yaml")
