"""Scenario validation: every bad knob is a ConfigError naming the key."""

from dataclasses import replace
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
        ({"inversions": {"dipole_pgc_yr": -0.1}}, "dipole_pgc_yr"),
        ({"inversions": {"seasonal_amplitude_error": 2.0}}, "seasonal_amplitude_error"),
        ({"inversions": {"shared_bias_pgc_yr": 11.0}}, "shared_bias_pgc_yr"),
        ({"inversions": {"member_bias_pgc_yr": -1.0}}, "member_bias_pgc_yr"),
        ({"reference": {"spatial_error_gc_m2_d": -0.2}}, "spatial_error_gc_m2_d"),
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


def test_ideal_inversions_is_the_demo_without_the_realistic_errors():
    demo, ideal = (
        load_scenario(CONFIGS / "demo.yaml"),
        load_scenario(CONFIGS / "ideal_inversions.yaml"),
    )
    off = {"shared_bias_pgc_yr": 0.0, "dipole_pgc_yr": 0.0, "seasonal_amplitude_error": 0.0,
           "member_bias_pgc_yr": 0.0}  # fmt: skip
    assert ideal.inversions == replace(demo.inversions, **off)
    assert ideal.reference == replace(demo.reference, spatial_error_gc_m2_d=0.0)
    assert replace(ideal, inversions=demo.inversions, reference=demo.reference) == demo
    assert demo.inversions.dipole_pgc_yr > 0 and demo.reference.spatial_error_gc_m2_d > 0
