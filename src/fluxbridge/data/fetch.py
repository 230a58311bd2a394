"""``invoke fetch``: download the open inputs of the manifest, verify every input.

* ``open`` entries are downloaded over http(s) into ``<target>.part`` (resumed with
  an HTTP Range request when a previous run was interrupted and the server answers
  206), retried with exponential back-off on network errors and 5xx answers,
  checked against their sha256 and only then renamed to their target; archives
  are unpacked safely (see :mod:`fluxbridge.data.archive`).
* ``registration`` and ``api-key`` entries cannot be downloaded unattended: the
  run prints where and how to get each missing one and where to put it, and
  verifies (and unpacks) it once it is there.
* An existing target is never replaced or deleted, whether it verifies or not.
* ``check=True`` downloads nothing and prints one line per entry: ``present``
  (checksum verified), ``unverified`` (present, no checksum to compare),
  ``missing`` or ``corrupt``. Only ``corrupt`` makes the exit code non-zero:
  missing inputs are the normal state of a data directory being filled.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from tqdm import tqdm

from fluxbridge import __version__
from fluxbridge.data.archive import MARKER, UnsafeArchiveError, safe_unpack
from fluxbridge.data.manifest import DownloadPolicy, Entry, load_manifest
from fluxbridge.errors import FluxbridgeError

State = Literal["present", "unverified", "missing", "corrupt"]

_CHUNK = 1 << 16


class DownloadError(FluxbridgeError, RuntimeError):
    """A download failed after every attempt on every URL, or was refused by the server."""


class ChecksumError(FluxbridgeError, ValueError):
    """A file's sha256 differs from the manifest's."""

    def __init__(self, name: str, path: Path, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"entry {name!r}: sha256 mismatch for {path}: expected {expected}, got {actual}"
        )


class _Transient(Exception):
    """A failure worth retrying (network error, 5xx, short body)."""


class _Refused(Exception):
    """A failure not worth retrying on this URL (4xx): the next mirror may still work."""


@dataclass(frozen=True)
class EntryStatus:
    """What is on disk for one entry: ``state`` and a human-readable ``detail``."""

    state: State
    detail: str


def sha256_file(path: Path) -> str:
    """Hex sha256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def inspect(entry: Entry, data_dir: Path) -> EntryStatus:
    """Classify what ``data_dir`` holds for ``entry`` without changing anything."""
    target = entry.target_path(data_dir)
    if entry.unpack is None:
        if target.is_dir():
            # Multi-file products (a folder the user fills) have no single checksum.
            if any(target.iterdir()):
                return EntryStatus("unverified", "directory present; contents not checksummed")
            return EntryStatus("missing", "directory is empty; " + _missing_hint(entry))
        if not target.is_file():
            return EntryStatus("missing", _missing_hint(entry))
        return _verify_file(entry, target)
    if target.is_dir():
        marker = target / MARKER
        if entry.sha256 is None or not marker.is_file():
            return EntryStatus("unverified", "directory present; no archive checksum recorded")
        recorded = marker.read_text().strip()
        if recorded != entry.sha256:
            return EntryStatus(
                "corrupt", f"unpacked from another archive: expected {entry.sha256}, got {recorded}"
            )
        return EntryStatus("present", "unpacked from the verified archive")
    archive = entry.archive_path(data_dir)
    if archive.is_file():
        status = _verify_file(entry, archive)
        if status.state == "corrupt":
            return status
        return EntryStatus("missing", f"archive {archive.name} is there; run fetch to unpack it")
    return EntryStatus("missing", _missing_hint(entry))


def _verify_file(entry: Entry, path: Path) -> EntryStatus:
    if entry.sha256 is None:
        return EntryStatus("unverified", "present; the provider publishes no checksum")
    actual = sha256_file(path)
    if actual != entry.sha256:
        return EntryStatus("corrupt", f"expected {entry.sha256}, got {actual}")
    return EntryStatus("present", "sha256 verified")


def _missing_hint(entry: Entry) -> str:
    if entry.access == "open":
        return "run: invoke fetch --only " + entry.name
    return f"needs {entry.access}; invoke fetch --only {entry.name} says how"


def download(
    urls: list[str], dest: Path, *, policy: DownloadPolicy, sha256: str | None, name: str
) -> str:
    """Download the first URL that works to ``dest`` and return the file's sha256.

    The bytes go to ``dest.part`` first; an existing ``.part`` is resumed. A
    checksum mismatch deletes the ``.part`` and raises :class:`ChecksumError`;
    ``dest`` appears only once verified, and an existing ``dest`` is never replaced.
    """
    if dest.exists():
        raise FileExistsError(f"{dest} exists; refusing to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    for url in urls:
        if _download_with_retries(url, part, policy, name, errors):
            break
    else:
        raise DownloadError(f"entry {name!r}: download failed: " + "; ".join(errors))
    actual = sha256_file(part)
    if sha256 is not None and actual != sha256:
        part.unlink()
        raise ChecksumError(name, dest, sha256, actual)
    if dest.exists():
        raise FileExistsError(f"{dest} appeared during the download; left {part} beside it")
    os.replace(part, dest)
    return actual


def _download_with_retries(
    url: str, part: Path, policy: DownloadPolicy, name: str, errors: list[str]
) -> bool:
    for attempt in range(policy.attempts):
        if attempt:
            time.sleep(min(policy.max_backoff_s, policy.backoff_s * 2 ** (attempt - 1)))
        try:
            _attempt(url, part, policy.timeout_s, name)
            return True
        except _Transient as exc:
            errors.append(f"{url} attempt {attempt + 1}/{policy.attempts}: {exc}")
        except _Refused as exc:
            errors.append(f"{url}: {exc}")
            return False
    return False


def _attempt(url: str, part: Path, timeout_s: float, name: str) -> None:
    """One GET of ``url`` into ``part``, resuming from its current size."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"fluxbridge/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The server cannot serve the rest of what we hold: start again from zero.
            part.unlink()
            raise _Transient(f"HTTP 416 for a resume at byte {offset}; restarting") from exc
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise _Refused(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc
    with response:
        mode = "wb"
        if offset and response.status == 206:
            content_range = response.headers.get("Content-Range", "")
            if not content_range.startswith(f"bytes {offset}-"):
                part.unlink()
                raise _Transient(
                    f"resume answered {content_range!r}, not byte {offset}; restarting"
                )
            mode = "ab"
        elif response.status != 200:
            raise _Transient(f"unexpected HTTP {response.status}")
        else:
            offset = 0  # the server ignored the Range header: the body is the whole file
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        _stream(response, part, mode, offset, total, name)
    if total is not None and part.stat().st_size != total:
        raise _Transient(f"connection closed at byte {part.stat().st_size} of {total}")


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    offset: int,
    total: int | None,
    name: str,
) -> None:
    with (
        part.open(mode) as out,
        tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            desc=name,
            disable=None,  # no bar when stderr is not a terminal (logs, CI)
            file=sys.stderr,
        ) as bar,
    ):
        try:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"{type(exc).__name__} after byte {out.tell()}: {exc}") from exc


def _fetch_entry(entry: Entry, data_dir: Path, policy: DownloadPolicy) -> tuple[bool, str]:
    """Bring one entry to ``present``/``unverified`` if possible; (ok, message)."""
    status = inspect(entry, data_dir)
    if status.state in ("present", "unverified"):
        return True, f"already there ({status.detail}); left untouched"
    if status.state == "corrupt":
        where = entry.download_path(data_dir) if entry.unpack else entry.target_path(data_dir)
        return False, f"CORRUPT: {status.detail}; left untouched: delete {where} to fetch it again"
    source = entry.download_path(data_dir)
    downloaded = False
    if not source.is_file():
        if entry.access != "open":
            return True, _instructions(entry, data_dir)
        digest = download(
            entry.sources, source, policy=policy, sha256=entry.sha256, name=entry.name
        )
        downloaded = True
    else:
        digest = sha256_file(source)  # a verified archive the user placed, or a past run left
    note = "sha256 verified" if entry.sha256 else f"no published checksum; sha256 is {digest}"
    if entry.unpack:
        safe_unpack(source, entry.unpack, entry.target_path(data_dir), source_sha256=digest)
        if downloaded:
            source.unlink()  # ours, and its digest is kept in the unpacked directory
        return True, f"unpacked into {entry.target_path(data_dir)} ({note})"
    return True, f"downloaded to {source} ({note})"


def _instructions(entry: Entry, data_dir: Path) -> str:
    put = entry.download_path(data_dir).resolve()
    lines = [
        f"needs {entry.access}: get it yourself, then run invoke fetch again to verify it.",
        f"  where: {', '.join(entry.sources)}",
        f"  how:   {' '.join((entry.instructions or '').split())}",
        f"  put it at: {put}",
    ]
    if entry.sha256:
        lines.append(f"  expected sha256: {entry.sha256}")
    return "\n".join(lines)


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("NAME", "ACCESS", "STATUS", "DETAIL")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])


def run_fetch(manifest: Path, data_dir: Path, only: list[str] | None, check: bool) -> int:
    """Fetch (or with ``check`` only verify) the manifest's entries; the exit code.

    Returns 1 when anything is corrupt or failed to download (each failure names
    the entry and, for a checksum, the expected and actual digests), else 0.
    """
    loaded = load_manifest(manifest, data_dir=data_dir)
    entries = loaded.select(only)
    if check:
        statuses = [(e, inspect(e, data_dir)) for e in entries]
        _print_table([(e.name, e.access, s.state, s.detail) for e, s in statuses])
        counts = {st: sum(s.state == st for _, s in statuses) for st in get_args(State)}
        print(", ".join(f"{n} {st}" for st, n in counts.items()) + f" (data directory {data_dir})")
        return 1 if counts["corrupt"] else 0
    failures = 0
    for entry in entries:
        try:
            ok, message = _fetch_entry(entry, data_dir, loaded.download)
        except (DownloadError, ChecksumError, UnsafeArchiveError, FileExistsError) as exc:
            ok, message = False, f"FAILED: {exc}"
        failures += not ok
        print(f"[{entry.name}] {message}")
    if failures:
        print(f"{failures} of {len(entries)} entries failed; see the messages above")
    return 1 if failures else 0
