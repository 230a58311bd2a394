"""NetCDF files of a run are read by NCO (all, silently) and CDO (gridded fields).

CDO has two known limits, documented in docs/canonical_dataset.md: it cannot
read string coordinates (``pft``, ``region`` names in grid.nc), and it skips
``nee(member, time, lat, lon)`` of forward files (time must be its first
dimension) while reading ``nee_mean`` and ``nee_std``.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

GRIDDED = {
    "data/reference.nc": ["nee"],
    "data/ancillary.nc": ["soil_moisture", "sif", "lai"],
    "forward/EC.nc": ["nee_mean", "nee_std"],
}


def _all_files(run):
    return sorted(p for p in run.rglob("*.nc") if ".parts" not in str(p))


@pytest.mark.skipif(shutil.which("ncks") is None, reason="NCO not installed (apt-get install nco)")
def test_nco_reads_every_file_silently(tiny_demo):
    files = _all_files(tiny_demo)
    assert len(files) >= 10
    for path in files:
        proc = subprocess.run(["ncks", "-m", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, (path, proc.stderr)
        assert proc.stderr == "" and "WARNING" not in proc.stdout.upper(), (path, proc.stderr)


@pytest.mark.skipif(shutil.which("cdo") is None, reason="CDO not installed (apt-get install cdo)")
@pytest.mark.parametrize("name", GRIDDED)
def test_cdo_reads_gridded_files_silently(tiny_demo, name):
    proc = subprocess.run(["cdo", "sinfon", str(tiny_demo / name)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lonlat" in proc.stdout
    for variable in GRIDDED[name]:
        assert f" {variable}" in proc.stdout, (variable, proc.stdout)
    warnings = [line for line in proc.stderr.splitlines() if "Warning" in line]
    allowed = "Time must be the first dimension" if name.startswith("forward/") else None
    assert all(allowed and allowed in line for line in warnings), warnings
