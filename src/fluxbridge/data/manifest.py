"""The data manifest: every real input of the two papers, validated when it is loaded.

``data_manifest.yaml`` has two top-level keys: ``download`` (retry settings used by
``invoke fetch``) and ``entries`` (one mapping per input). The schema of an entry is
:class:`Entry`; docs/data_manifest.md describes every field. Anything wrong (an
unknown key, a missing field, a bad ``access`` value, a malformed digest, a
duplicate name or target, a ``target`` that leaves the data directory) is a
:class:`~fluxbridge.errors.ConfigError` naming the file, the entry and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from fluxbridge.config import from_mapping, load_yaml
from fluxbridge.errors import ConfigError

Access = Literal["open", "registration", "api-key", "request"]
Unpack = Literal["zip", "tar.gz"]

ARCHIVE_SUFFIX: dict[str, str] = {"zip": ".zip", "tar.gz": ".tar.gz"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_URL = re.compile(r"^https?://[^\s/]+\S*$")


@dataclass(frozen=True)
class DownloadPolicy:
    """How hard ``invoke fetch`` tries: ``attempts`` per URL, back-off doubling from
    ``backoff_s`` (seconds) up to ``max_backoff_s``, and a socket ``timeout_s``."""

    attempts: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        for name in ("backoff_s", "max_backoff_s", "timeout_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Entry:
    """One input file (or archive) of the papers.

    ``target`` is relative to the data directory: the file itself, or, with
    ``unpack``, the directory the archive is unpacked into (the archive is then
    looked for at ``target`` + ``.zip``/``.tar.gz``). ``url`` and ``urls`` are
    exclusive; ``urls`` are mirrors tried in order. ``sha256`` is the digest of the
    downloaded file (the archive when ``unpack`` is set), or null where the provider
    publishes none. ``instructions`` is required unless ``access`` is ``open``.
    """

    name: str
    description: str
    access: Access
    licence: str
    citation: str
    target: str
    sha256: str | None
    url: str | None = None
    urls: list[str] | None = None
    unpack: Unpack | None = None
    version: str | None = None
    instructions: str | None = None

    @property
    def sources(self) -> list[str]:
        """Download URLs in the order they are tried."""
        return [self.url] if self.url else list(self.urls or [])

    def target_path(self, data_dir: Path) -> Path:
        """Absolute-or-relative path of the final file or directory under ``data_dir``."""
        return data_dir / self.target

    def archive_path(self, data_dir: Path) -> Path:
        """Where the archive of an ``unpack`` entry is downloaded to or expected."""
        if self.unpack is None:
            raise ValueError(f"entry {self.name!r} has no archive (unpack is not set)")
        return data_dir / f"{self.target}{ARCHIVE_SUFFIX[self.unpack]}"

    def download_path(self, data_dir: Path) -> Path:
        """The file whose sha256 is ``self.sha256``: the archive or the target itself."""
        return self.archive_path(data_dir) if self.unpack else self.target_path(data_dir)


@dataclass(frozen=True)
class Manifest:
    """All entries of a manifest file, in file order, and the download policy."""

    path: Path
    entries: list[Entry]
    download: DownloadPolicy = field(default_factory=DownloadPolicy)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def select(self, only: list[str] | None) -> list[Entry]:
        """Entries named in ``only`` (all when None), or a ConfigError listing known names."""
        if only is None:
            return list(self.entries)
        unknown = [n for n in only if n not in self.names]
        if unknown:
            raise ConfigError(
                f"{self.path}: unknown entry name(s) {', '.join(map(repr, unknown))}; "
                f"known names: {', '.join(self.names)}"
            )
        return [e for e in self.entries if e.name in only]


@dataclass(frozen=True)
class _ManifestFile:
    entries: list[Entry]
    download: DownloadPolicy = field(default_factory=DownloadPolicy)


def load_manifest(path: str | Path, data_dir: Path | None = None) -> Manifest:
    """Read and validate ``path``.

    With ``data_dir`` the targets are also resolved on disk, so that a symbolic link
    inside the data directory cannot carry a download outside it.
    """
    path = Path(path)
    raw = load_yaml(path)
    entries_raw = raw.get("entries")
    if not isinstance(entries_raw, list) or not entries_raw:
        raise ConfigError(f"{path}: 'entries' must be a non-empty list of mappings")
    # Name each entry in errors by its name when it has one, by its index otherwise.
    labelled = []
    for i, item in enumerate(entries_raw):
        label = item.get("name") if isinstance(item, dict) else None
        where = f"{path}: entries[{i}]" + (f" ({label!r})" if isinstance(label, str) else "")
        labelled.append((where, item))
    parsed = from_mapping(_ManifestFile, {**raw, "entries": []}, str(path))
    entries = [from_mapping(Entry, item, where) for where, item in labelled]
    for (where, _), entry in zip(labelled, entries, strict=True):
        _check_entry(entry, where, data_dir)
    _check_unique(entries, path)
    return Manifest(path=path, entries=entries, download=parsed.download)


def _check_entry(e: Entry, where: str, data_dir: Path | None) -> None:
    def fail(fieldname: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}.{fieldname}: {problem}")

    if not _NAME.match(e.name):
        raise fail("name", f"{e.name!r} must match {_NAME.pattern} (lower case, digits, _ -)")
    for fieldname in ("description", "licence", "target"):
        if not getattr(e, fieldname).strip():
            raise fail(fieldname, "must not be empty")
    if not _DOI.match(e.citation):
        raise fail("citation", f"{e.citation!r} is not a DOI (expected 10.NNNN/suffix)")
    if e.sha256 is not None and not _SHA256.match(e.sha256):
        raise fail("sha256", f"{e.sha256!r} is not 64 lower-case hexadecimal digits (or null)")
    if (e.url is None) == (e.urls is None):
        raise fail("url", "give exactly one of 'url' or 'urls'")
    if e.urls is not None and not e.urls:
        raise fail("urls", "must list at least one URL")
    for i, u in enumerate(e.sources):
        if not _URL.match(u):
            key = "url" if e.url else f"urls[{i}]"
            raise fail(key, f"{u!r} is not an http(s) URL")
    if e.access != "open" and not (e.instructions and e.instructions.strip()):
        raise fail("instructions", f"required for access {e.access!r}: say where and how")
    _check_target(e, where, data_dir)


def _check_target(e: Entry, where: str, data_dir: Path | None) -> None:
    key = f"{where}.target"
    target = PurePosixPath(e.target)
    if "\\" in e.target or target.is_absolute() or re.match(r"^[A-Za-z]:", e.target):
        raise ConfigError(f"{key}: {e.target!r} must be a relative POSIX path")
    if any(part in ("..", ".") for part in target.parts) or e.target.endswith("/"):
        raise ConfigError(f"{key}: {e.target!r} must not contain '.', '..' or a trailing '/'")
    if data_dir is None:
        return
    root = data_dir.resolve()
    for candidate in {e.target_path(data_dir), e.download_path(data_dir)}:
        resolved = candidate.resolve()
        if resolved != root and root not in resolved.parents:
            raise ConfigError(
                f"{key}: {e.target!r} resolves to {resolved}, outside the data directory "
                f"{root} (through a symbolic link)"
            )


def _check_unique(entries: list[Entry], path: Path) -> None:
    seen_names: dict[str, int] = {}
    seen_files: dict[str, str] = {}
    for i, e in enumerate(entries):
        if e.name in seen_names:
            raise ConfigError(
                f"{path}: entries[{i}].name: duplicate name {e.name!r} "
                f"(first used by entries[{seen_names[e.name]}])"
            )
        seen_names[e.name] = i
        files = [e.target]
        if e.unpack:
            files.append(e.target + ARCHIVE_SUFFIX[e.unpack])
        for f in files:
            if f in seen_files:
                raise ConfigError(
                    f"{path}: entries[{i}] ({e.name!r}).target: {f!r} is already used by "
                    f"entry {seen_files[f]!r}"
                )
            seen_files[f] = e.name
