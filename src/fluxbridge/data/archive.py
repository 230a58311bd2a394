"""Unpacking downloaded archives without letting them write outside their directory.

Every member is checked before anything is extracted: absolute names, ``..``
components, links that point out of the destination (tar slip, zip slip), and
special files (devices, FIFOs) are refused with an error naming the archive and
the member. Extraction goes to a temporary sibling directory that is renamed to
the destination only when everything succeeded, so a failure leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from fluxbridge.errors import FluxbridgeError

MARKER = ".fluxbridge-source.sha256"
"""File written into an unpacked directory recording the sha256 of its archive."""


class UnsafeArchiveError(FluxbridgeError, ValueError):
    """An archive member would be written outside the destination, or is not a plain file."""


def safe_unpack(archive: Path, kind: str, dest: Path, *, source_sha256: str | None) -> Path:
    """Unpack ``archive`` (``kind`` is ``"zip"`` or ``"tar.gz"``) into the new directory ``dest``.

    ``source_sha256`` (the verified digest of the archive, if known) is recorded in
    ``dest/MARKER`` so that a later ``--check`` can tell which archive the
    directory came from. ``dest`` must not exist.
    """
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} exists; refusing to unpack {archive} over it")
    tmp = dest.with_name(f".{dest.name}.unpack-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        if kind == "zip":
            _unpack_zip(archive, tmp)
        elif kind == "tar.gz":
            _unpack_tar(archive, tmp)
        else:
            raise ValueError(f"{archive}: unknown archive kind {kind!r}; expected zip or tar.gz")
        if source_sha256 is not None:
            (tmp / MARKER).write_text(source_sha256 + "\n")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def _member_path(archive: Path, name: str) -> PurePosixPath:
    """The member's relative path, or UnsafeArchiveError if it is absolute or climbs out."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..' (path traversal)")
    return path


def _link_stays_inside(member: PurePosixPath, link_target: str, *, hard: bool) -> bool:
    """Whether a link at ``member`` to ``link_target`` resolves inside the archive root.

    Symbolic links are relative to the member's directory; hard links to the root.
    Resolution is lexical: other links are checked on their own, so a chain of
    links that each stay inside also stays inside.
    """
    target = PurePosixPath(link_target)
    if target.is_absolute():
        return False
    base = () if hard else member.parent.parts
    depth: list[str] = list(base)
    for part in target.parts:
        if part == "..":
            if not depth:
                return False
            depth.pop()
        elif part != ".":
            depth.append(part)
    return True


def _unpack_tar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                path = _member_path(archive, m.name)
                if m.issym() or m.islnk():
                    if not _link_stays_inside(path, m.linkname, hard=m.islnk()):
                        raise UnsafeArchiveError(
                            f"{archive}: member {m.name!r} links to {m.linkname!r}, "
                            "outside the unpack directory"
                        )
                elif not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(
                        f"{archive}: member {m.name!r} is not a regular file, directory or link"
                    )
            # The 'data' filter repeats these checks inside tarfile (defence in depth)
            # and drops permissions such as set-uid bits.
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UnsafeArchiveError(f"{archive}: cannot unpack as tar.gz ({exc})") from exc


def _unpack_zip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _member_path(archive, info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(
                        f"{archive}: member {info.filename!r} is a symbolic link; "
                        "links are not unpacked from zip archives"
                    )
            for info in infos:
                zf.extract(info, dest)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchiveError(f"{archive}: cannot unpack as zip ({exc})") from exc
