"""Schema checks of the data manifest: the shipped file loads, bad files fail clearly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxbridge.data.manifest import load_manifest
from fluxbridge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 64

GOOD_ENTRY: dict[str, Any] = {
    "name": "demo",
    "description": "a test input",
    "url": "https://example.org/demo.nc",
    "access": "open",
    "licence": "CC-BY-4.0",
    "citation": "10.1234/demo",
    "sha256": SHA,
    "target": "sub/demo.nc",
}


def write(tmp_path: Path, entries: list[dict[str, Any]], **top: Any) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({**top, "entries": entries}))
    return path


def entry(**changes: Any) -> dict[str, Any]:
    e = copy.deepcopy(GOOD_ENTRY)
    for key, value in changes.items():
        if value is ...:
            del e[key]
        else:
            e[key] = value
    return e


def test_shipped_manifest_loads_and_covers_both_papers() -> None:
    manifest = load_manifest(ROOT / "data_manifest.yaml", data_dir=ROOT / "data" / "raw")
    names = set(manifest.names)
    required = {
        "fluxnet-lathuile", "fluxnet2015", "fluxcom-rs-meteo-era5-nee", "gcb2022-inversions",
        "cams-gfas-fire", "reccap2-regions", "era5-single-levels", "modis-mcd43c4",
        "modis-mod11c2", "modis-mcd15a2h", "modis-mcd12c1", "gcb2022-budget",
        "oco2-v10mip-lnlg", "oco2-v10mip-is", "gcas-v2-oco2", "cams-ft21r2", "cams-v20r2",
        "ct2019b", "cte2020", "jena-carboscope-s10", "trendy-v9", "gleam-v35a", "csif-v2",
        "globmap-lai-v3", "china-climate-zones",
    }  # fmt: skip
    assert required <= names
    assert len(names) == len(manifest.entries)
    for e in manifest.entries:
        assert e.access == "open" or e.instructions


def test_good_manifest_roundtrip(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, [entry()], download={"attempts": 2, "backoff_s": 0.5}))
    (e,) = m.entries
    assert (e.name, e.sha256, e.sources, e.target) == (
        "demo",
        SHA,
        [GOOD_ENTRY["url"]],
        "sub/demo.nc",
    )
    assert (m.download.attempts, m.download.backoff_s) == (2, 0.5)


BAD = {
    "unknown key": ([entry(mirror="x")], "'demo'", "unknown key(s) 'mirror'"),
    "missing sha256": ([entry(sha256=...)], "'demo'", ".sha256: required key is missing"),
    "missing licence": ([entry(licence=...)], "'demo'", ".licence: required key is missing"),
    "bad access": ([entry(access="ftp")], "'demo'", ".access: 'ftp' is not one of"),
    "sha256 too short": ([entry(sha256="abc")], "'demo'", ".sha256: 'abc' is not 64"),
    "sha256 upper case": ([entry(sha256="A" * 64)], "'demo'", ".sha256:"),
    "duplicate name": ([entry(), entry(target="other.nc")], "entries[1].name", "duplicate name"),
    "duplicate target": ([entry(), entry(name="two")], "'two'", "already used by entry 'demo'"),
    "absolute target": ([entry(target="/etc/passwd")], "'demo'", ".target: '/etc/passwd'"),
    "dotdot target": ([entry(target="a/../../x.nc")], "'demo'", "must not contain '.', '..'"),
    "url and urls": ([entry(urls=["https://a.org/x"])], "'demo'", "exactly one of 'url'"),
    "neither url": ([entry(url=...)], "'demo'", "exactly one of 'url'"),
    "ftp url": ([entry(url="ftp://a.org/x")], "'demo'", ".url: 'ftp://a.org/x' is not an http"),
    "citation not doi": ([entry(citation="Jung 2020")], "'demo'", ".citation: 'Jung 2020'"),
    "registration without instructions": (
        [entry(access="registration")],
        "'demo'",
        ".instructions: required for access 'registration'",
    ),
    "request without instructions": (
        [entry(access="request", sha256=None, target="subsets")],
        "'demo'",
        ".instructions: required for access 'request'",
    ),
    "bad unpack": ([entry(unpack="rar")], "'demo'", ".unpack: 'rar' is not one of"),
    "bad name": ([entry(name="Bad Name")], "'Bad Name'", ".name:"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifests_name_entry_and_field(tmp_path: Path, case: str) -> None:
    entries, where, problem = BAD[case]
    path = write(tmp_path, entries)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    message = str(info.value)
    assert str(path) in message
    assert where in message
    assert problem in message


def test_bad_top_level(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_manifest(write(tmp_path, [entry()], extra=1))
    with pytest.raises(ConfigError, match="download: attempts must be >= 1"):
        load_manifest(write(tmp_path, [entry()], download={"attempts": 0}))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_manifest(write(tmp_path, []))


def test_symlink_escape_rejected_with_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    outside = tmp_path / "outside"
    data_dir.mkdir()
    outside.mkdir()
    (data_dir / "sub").symlink_to(outside, target_is_directory=True)
    path = write(tmp_path, [entry()])
    load_manifest(path)  # lexically fine: only the disk shows the escape
    with pytest.raises(ConfigError, match=r"'demo'\)\.target: 'sub/demo.nc' resolves to .*outside"):
        load_manifest(path, data_dir=data_dir)


def test_select_unknown_name_lists_known(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, [entry(), entry(name="two", target="b.nc")]))
    assert [e.name for e in m.select(["two"])] == ["two"]
    with pytest.raises(
        ConfigError, match=r"unknown entry name\(s\) 'nope'; known names: demo, two"
    ):
        m.select(["nope"])
