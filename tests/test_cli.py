"""The installed ``fluxbridge`` command, run from a directory outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fluxbridge.config import SHIPPED_CONFIGS, find_config

ROOT = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).with_name("fluxbridge")


def _fluxbridge(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_command_is_installed_beside_the_interpreter():
    assert COMMAND.exists(), f"{COMMAND} missing: is the package installed (scripts/install.sh)?"


def test_lists_the_pipeline_tasks(tmp_path):
    proc = _fluxbridge(tmp_path, "--list")
    assert proc.returncode == 0, proc.stderr
    for name in ("twin", "bridges", "train", "forward", "evaluate", "export", "demo", "scorecard"):
        assert f"  {name} " in proc.stdout, name
    # developer tasks stay with the checkout's tasks.py
    assert "  lint " not in proc.stdout


@pytest.mark.parametrize("order", [("twin", "--help"), ("--help", "twin"), ("twin", "-h")])
def test_help_per_task_runs_nothing(tmp_path, order):
    proc = _fluxbridge(tmp_path, *order)
    assert proc.returncode == 0, proc.stderr
    assert "--scenario" in proc.stdout and "--out" in proc.stdout
    # `twin --help` once built a twin world in ./--help
    assert list(tmp_path.iterdir()) == []


def test_runs_a_task_with_a_shipped_config_outside_the_checkout(tmp_path):
    assert not (tmp_path / "configs").exists()
    proc = _fluxbridge(tmp_path, "twin", "--scenario", "configs/twin/tiny.yaml", "--out", "world")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "world" / "truth.nc").is_file()
    assert "284 land cells" in proc.stdout


def test_task_error_is_one_line_with_its_exit_code(tmp_path):
    proc = _fluxbridge(tmp_path, "evaluate", "--run", "nowhere")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nowhere" in lines[0], proc.stderr


def test_non_integer_option_is_one_line(tmp_path):
    proc = _fluxbridge(
        tmp_path, "train", "--model", "ec", "--data", "d", "--run", "r", "--max-epochs", "abc"
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --max-epochs 'abc': expected an integer"
    assert list(tmp_path.iterdir()) == []


def test_find_config_prefers_the_users_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = find_config("configs/twin/tiny.yaml")
    assert shipped == SHIPPED_CONFIGS / "twin" / "tiny.yaml" and shipped.is_file()
    assert find_config("twin/tiny.yaml") == shipped
    own = tmp_path / "configs" / "twin" / "tiny.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("seed: 1\n")
    assert find_config("configs/twin/tiny.yaml").resolve() == own
    assert find_config("configs/twin/none.yaml") == Path("configs/twin/none.yaml")


def test_checkout_configs_are_the_shipped_ones():
    assert (ROOT / "configs").resolve() == SHIPPED_CONFIGS


def test_wheel_ships_the_configs(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    proc = subprocess.run(
        [*build, "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("fluxbridge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in sorted(SHIPPED_CONFIGS.rglob("*.yaml")):
        assert f"fluxbridge/configs/{config.relative_to(SHIPPED_CONFIGS).as_posix()}" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_shipped_analysis_configs_resolve_against_the_checkout(monkeypatch):
    """`base_dir: ../..` in configs/analysis/ means the checkout, not the package it links to."""
    from fluxbridge.analysis.config import load_config

    monkeypatch.chdir(ROOT)
    assert load_config(Path("configs/analysis/oco2_china.yaml")).base == ROOT
    twin = load_config(Path("configs/analysis/twin_china.yaml"))
    assert twin.base == ROOT / "runs" / "demo" / "data"
