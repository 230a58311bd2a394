"""Scenario validation: every bad knob is a ConfigError naming the key."""

from pathlib import Path

import pytest

from fluxbridge.data.twin.scenario import load_scenario, scenario_from_mapping
from fluxbridge.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "twin"
BASE = {"seed": 0, "resolution_deg": 10.0, "years": [2001, 2002]}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_scenarios_load(path):
    scn = load_scenario(path)
    assert scn.years[0] <= scn.years[1]
    assert len(scn.sha256()) == 64


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"colour": 1}, "unknown key.*'colour'"),
        ({"sites": {"cuont": 3}}, r"x\.yaml\.sites.*'cuont'"),
        ({"years": [2005, 2001]}, "years"),
        ({"resolution_deg": 7.0}, "does not tile"),
        ({"geography": "moon"}, "geography"),
        ({"sites": {"density": {"ATL": 1.0}}}, "ATL"),
        ({"sites": {"count": 5, "folds": 10}}, "folds"),
        ({"drought": {"year": 2001, "region": "XYZ"}}, "XYZ"),
        ({"drought": {"year": 1999, "region": "CHN"}}, "drought.year"),
        ({"inversions": {"members": 0}}, "members"),
        ({"msc_base_years": [2000, 2002]}, "msc_base_years"),
        ({"tower_bias": {"tropics_gc_m2_d": "big"}}, r"tower_bias\.tropics_gc_m2_d"),
    ],
)
def test_bad_scenarios_name_the_key(patch, message):
    with pytest.raises(ConfigError, match=message):
        scenario_from_mapping({**BASE, **patch}, "x.yaml")


def test_missing_required_key():
    with pytest.raises(ConfigError, match="seed: required"):
        scenario_from_mapping({"resolution_deg": 10.0, "years": [2001, 2001]}, "")


def test_resolved_yaml_round_trips():
    scn = scenario_from_mapping({**BASE, "drought": {"year": 2002, "region": "EU"}}, "x")
    import yaml

    again = scenario_from_mapping(yaml.safe_load(scn.to_yaml()), "again")
    assert again == scn and again.sha256() == scn.sha256()
