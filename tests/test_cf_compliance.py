"""Every NetCDF file fluxbridge writes passes the IOOS CF-1.8 checker and speaks UDUNITS.

The files: everything the tiny demo run writes (data/, bridges, forward runs,
evaluation, ensemble analysis), plus the writers the demo does not run:
``invoke integrate``, ``invoke sensitivity``, ``invoke prepare`` (on the
real-data fixture world of tests/data/prepare), ``invoke export --format ilamb``
and ``invoke sites``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cf_units
import h5netcdf
import pytest
from compliance_checker.base import BaseCheck
from compliance_checker.runner import CheckSuite

from fluxbridge.data.fluxnet import run_sites
from fluxbridge.data.prepare import run_prepare
from fluxbridge.evaluation.sensitivity import run_sensitivity
from fluxbridge.export.ilamb import run_export
from fluxbridge.geo.integrate import run_integrate

from .data.prepare import world
from .data.test_fluxnet import HH_NAME, hh_frame, write

#: This check raises TypeError (str - str) on string-valued coordinate variables
#: (member, site, region names): a crash of compliance-checker 6.1.0, not a finding.
CHECKER_CRASHES_ON_STRING_COORDS = {"check_coordinate_variables_strict_monotonicity"}

#: What the issue named as failing, and one file of each other writer the demo runs.
MUST_BE_CHECKED = {
    "data/truth.nc",
    "data/inversions.nc",
    "data/grid.nc",
    "data/drivers.nc",
    "data/sites.nc",
    "data/residual_sink.nc",
    "forward/EC-ATM.nc",
    "evaluation/regional_monthly.nc",
    "bridges.nc",
    "analysis_china/annual_totals.nc",
}


def cf_errors(path: Path) -> list[str]:
    """The checker's errors (high-priority failures) for ``path``, as '§section: message'."""
    CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    ds = suite.load_dataset(str(path))
    try:
        ((results, crashes),) = suite.run_all(ds, ["cf:1.8"], skip_checks=[]).values()
    finally:
        ds.close()
    errors = [
        f"{r.name}: {'; '.join(r.msgs)}"
        for r in results
        if r.weight == BaseCheck.HIGH and r.value[0] < r.value[1]
    ]
    errors += [
        f"checker crashed in {name}: {exc!r}"
        for name, (exc, _) in crashes.items()
        if name not in CHECKER_CRASHES_ON_STRING_COORDS
    ]
    return errors


def _netcdf_files(root: Path) -> list[Path]:
    # <model>.nc.parts/ holds an interrupted forward run's parts; a finished run has none.
    return sorted(p for p in root.rglob("*.nc") if ".parts" not in str(p))


@pytest.fixture(scope="module")
def written(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every file to check, by a readable name (path under its run/dataset directory)."""
    base = tmp_path_factory.mktemp("cf")
    files = {str(p.relative_to(tiny_demo)): p for p in _netcdf_files(tiny_demo)}

    integrated = base / "integrate" / "EC_reccap2.nc"
    integrated.parent.mkdir()
    assert run_integrate(tiny_demo / "forward" / "EC.nc", "nee_mean", "reccap2", integrated) == 0
    files["integrate/EC_reccap2.nc"] = integrated

    # The shared demo run must stay untouched: the sensitivity run works on a copy.
    sens = base / "sens"
    shutil.copytree(tiny_demo, sens, ignore=shutil.ignore_patterns("analysis_china"))
    assert run_sensitivity(sens, [2], seed=0, max_folds=1) == 0
    files["evaluation/sensitivity.nc"] = sens / "evaluation" / "sensitivity.nc"

    world.write_world(base / "raw")
    world.write_manifest(base / "manifest.yaml")
    world.write_config(base / "prepare.yaml", base / "manifest.yaml")
    assert run_prepare(base / "prepare.yaml", base / "prepared", base / "raw") == 0
    for p in _netcdf_files(base / "prepared"):
        files[f"prepared/{p.relative_to(base / 'prepared')}"] = p

    assert run_export(tiny_demo, "ilamb", out=base / "export") == 0
    for p in _netcdf_files(base / "export"):
        files[f"export/{p.relative_to(base / 'export')}"] = p

    write(hh_frame(2), base / "fluxnet", HH_NAME)
    assert run_sites(base / "fluxnet", None, base / "sites.nc") == 0
    files["sites/sites.nc"] = base / "sites.nc"
    return files


def test_the_files_checked_include_every_writer(written: dict[str, Path]) -> None:
    missing = MUST_BE_CHECKED - set(written)
    assert not missing, f"not written by the demo any more: {sorted(missing)}"
    for writer in ("prepared/", "export/", "sites/"):
        assert any(name.startswith(writer) for name in written), writer
    assert len(written) >= 30


def test_every_file_has_no_cf_errors(written: dict[str, Path]) -> None:
    failures = {name: errs for name, path in written.items() if (errs := cf_errors(path))}
    report = "\n".join(f"{name}:\n  " + "\n  ".join(errs) for name, errs in failures.items())
    assert not failures, f"compliance-checker --test cf:1.8 errors:\n{report}"


def _attributes(path: Path) -> dict[str, dict[str, object]]:
    with h5netcdf.File(path, "r") as f:
        return {name: dict(var.attrs) for name, var in f.variables.items()}


def test_every_units_attribute_parses_with_udunits(written: dict[str, Path]) -> None:
    bad = []
    for name, path in written.items():
        for variable, attrs in _attributes(path).items():
            if "units" not in attrs:
                continue
            try:
                cf_units.Unit(str(attrs["units"]))
            except ValueError as exc:
                bad.append(f"{name} {variable}: {attrs['units']!r} ({exc})")
    assert not bad, "units UDUNITS cannot parse:\n" + "\n".join(bad)


#: A carbon flux per area or in total, per time; what UDUNITS cannot say is its species.
CARBON_FLUXES = (cf_units.Unit("kg m-2 s-1"), cf_units.Unit("kg s-1"))


def test_every_mass_flux_states_its_carbon_basis(written: dict[str, Path]) -> None:
    unstated = []
    for name, path in written.items():
        for variable, attrs in _attributes(path).items():
            units = attrs.get("units")
            if units is None or "since" in str(units):
                continue
            unit = cf_units.Unit(str(units))
            if not any(unit.is_convertible(flux) for flux in CARBON_FLUXES):
                continue
            said = f"{attrs.get('long_name', '')} {attrs.get('standard_name', '')}"
            if "carbon" not in said:
                unstated.append(f"{name} {variable} [{units}]: {said.strip()!r}")
    assert not unstated, "mass fluxes whose long_name/standard_name do not say carbon:\n" + (
        "\n".join(unstated)
    )
