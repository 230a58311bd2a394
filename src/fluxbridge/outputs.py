"""Output folders the project owns: built in a staging sibling, marked, replaced only when ours.

A task that writes a whole folder (``twin``, ``analyze``) builds it in a hidden
sibling ``.<name>.tmp-<pid>`` and renames it into place when everything
succeeded, so a failure never leaves a partial folder. The finished folder holds
``.fluxbridge-output.json``: the task that wrote it and every file it wrote.

Before anything is written, the output is refused when it

* is, lies inside, or contains one of the task's inputs (``analyze`` with
  ``output`` = its own ``base_dir`` once deleted the canonical dataset);
* exists, is not empty and has no marker (a folder the project did not write);
* holds the marker of another task, or files the marker does not list (the
  user's own files);
* holds this task's earlier output and ``replace`` (``--force``) is not given.

Staging folders left by a killed run (their process is gone) are removed on the
next run of the same output.

This module is also the one home of the other pieces that keep outputs honest:

* :func:`atomic_path`: a single file written under a temporary name, then renamed;
* :func:`fingerprint` and :func:`content_hash`: what a result depends on, hashed;
  :func:`work_directory`: a resumable work folder kept only for the same fingerprint;
* provenance: :func:`file_digest` and :func:`tree_digest` (content sha256, cached
  in the marker by size and modification time), :func:`check_inputs` (a product
  whose recorded inputs differ from today's is stale);
* :func:`stage_lock`: one process per run folder and stage.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from fluxbridge.errors import FluxbridgeError

MARKER = ".fluxbridge-output.json"


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_output(out: Path, task: str, inputs: Iterable[Path], replace: bool) -> None:
    """Refuse (one-line :class:`FluxbridgeError`) an output that could lose data; see module."""
    target = Path(os.path.abspath(out))
    resolved = target.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if resolved == source or source in resolved.parents or resolved in source.parents:
            relation = (
                "is"
                if resolved == source
                else "lies inside"
                if source in resolved.parents
                else "contains"
            )
            raise FluxbridgeError(
                f"output {out} {relation} the input {given}; choose an output folder apart "
                "from the inputs"
            )
    if not out.exists():
        return
    if not out.is_dir():
        raise FluxbridgeError(f"output {out} is a file, not a folder; choose another output")
    present = _files(out)
    if not present:
        return
    marker = _marker(out)
    if marker is None:
        raise FluxbridgeError(
            f"output {out} is not empty and was not written by fluxbridge (no {MARKER}); "
            "nothing there is replaced: choose a new or empty folder"
        )
    if marker.get("task") != task:
        raise FluxbridgeError(
            f"output {out} holds the output of `{marker.get('task')}`, not `{task}`; "
            "choose another folder"
        )
    foreign = sorted(set(present) - set(marker.get("files", [])) - {MARKER})
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise FluxbridgeError(
            f"output {out} holds files `{task}` did not write ({shown}); move them or choose "
            "another folder"
        )
    if not replace:
        raise FluxbridgeError(
            f"output {out} holds an earlier `{task}` output; pass --force (analyze: "
            "overwrite: true) to replace it"
        )


def _remove_stale_staging(out: Path) -> None:
    """Remove ``.<name>.tmp-<pid>``/``.old-<pid>`` siblings whose process no longer runs."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(tmp|old)-(\d+)$")
    if not out.parent.is_dir():
        return
    for sibling in out.parent.iterdir():
        match = pattern.match(sibling.name)
        if match is None or not sibling.is_dir():
            continue
        pid = int(match.group(2))
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(sibling, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def staged_directory(out: Path, task: str, inputs: Iterable[Path], replace: bool) -> Iterator[Path]:
    """Yield an empty staging folder; on success it becomes ``out``, marked as ``task``'s.

    ``out`` is checked first (:func:`check_output`); an earlier output of the same
    task is swapped out only after the new one is complete.
    """
    out = Path(out)
    check_output(out, task, inputs, replace)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(out)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise FluxbridgeError(f"cannot write the output {out}: {exc.strerror}") from exc
    try:
        yield tmp
        mark(tmp, task)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def mark(folder: Path, task: str) -> None:
    """Write ``folder``'s marker: ``task``, its files and their content digests."""
    files = _files(folder)
    digests = {name: _digest_entry(folder / name) for name in files if name != MARKER}
    with atomic_path(folder / MARKER, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"task": task, "files": files, "sha256": digests}, indent=1))


# -- single files ----------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it to ``path``.

    Nothing is left at ``path`` when the body fails, and an existing file is
    never replaced unless ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` files of :func:`atomic_path` whose process is gone.

    A killed writer cannot run its cleanup; its temporary file would otherwise stay
    inside a finished output forever. Returns what was removed.
    """
    removed = []
    pattern = re.compile(r"^\..+\.tmp-(\d+)$")
    for path in folder.rglob(".*.tmp-*") if folder.is_dir() else []:
        match = pattern.match(path.name)
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def require_space(folder: Path, nbytes: int, what: str) -> None:
    """Refuse to start writing ``what`` (about ``nbytes``) where the disk has less free space.

    HDF5 does not recover from a full disk (it can end the process with a segfault),
    so the space is checked before a file is started; ``nbytes`` is an upper bound
    (uncompressed size).
    """
    folder = Path(folder)
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    if free < nbytes + _SPACE_MARGIN:
        raise FluxbridgeError(
            f"not enough space in {folder} for {what}: {free / 2**20:.1f} MiB free, up to "
            f"{(nbytes + _SPACE_MARGIN) / 2**20:.1f} MiB needed; free some space or choose "
            "another folder"
        )


#: Kept free beyond a file's own size (HDF5 metadata, the log, the marker).
_SPACE_MARGIN = 1 << 20


# -- fingerprints ----------------------------------------------------------------------


def fingerprint(payload: object) -> str:
    """sha256 of a JSON-serialisable description of everything a result depends on."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(paths: Iterable[Path], settings: object) -> str:
    """sha256 over the bytes of ``paths`` (files, or every file under a folder) and ``settings``."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(Path(p) for p in paths):
        files = sorted(q for q in path.rglob("*") if q.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(path.parent)).encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def work_directory(root: Path, print_: str) -> bool:
    """Make ``root`` the work folder of the run with fingerprint ``print_``.

    Work of the same fingerprint is kept (returns True: resuming); work of another
    one is discarded, so parts made for other inputs are never mixed in.
    """
    stamp = root / "fingerprint"
    resuming = root.is_dir() and stamp.is_file() and stamp.read_text().strip() == print_
    if root.exists() and not resuming:
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    if not resuming:
        with atomic_path(stamp, overwrite=True) as tmp:
            tmp.write_text(print_ + "\n")
    return resuming


def reuse_part(path: Path, readable: Callable[[Path], object]) -> bool:
    """True when the part file ``path`` exists and ``readable(path)`` succeeds.

    A part that exists but cannot be read (damaged on disk) is removed, so that it is
    recomputed instead of failing every rerun the same way.
    """
    if not path.exists():
        return False
    try:
        readable(path)
    except Exception:  # any reader failure means: not a usable part
        path.unlink()
        return False
    return True


# -- provenance ------------------------------------------------------------------------


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest_entry(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"sha256": file_digest(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def tree_digest(folder: Path) -> str:
    """Content digest of every file under ``folder`` (its marker excluded).

    A file whose size and modification time match the digest recorded in the
    folder's marker (written when the project made the folder) is not read again,
    so checking a large dataset is cheap; any other file is hashed.
    """
    folder = Path(folder)
    recorded = (_marker(folder) or {}).get("sha256", {})
    h = hashlib.sha256()
    for name in _files(folder):
        if name == MARKER or _TEMPORARY.match(Path(name).name):
            continue
        path = folder / name
        entry = recorded.get(name) if isinstance(recorded, dict) else None
        st = path.stat()
        if isinstance(entry, dict) and (entry.get("size"), entry.get("mtime_ns")) == (
            st.st_size,
            st.st_mtime_ns,
        ):
            digest = str(entry["sha256"])
        else:
            digest = file_digest(path)
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


_TEMPORARY = re.compile(r"^\..+\.tmp-\d+$")

#: Global attribute of a NetCDF product: its inputs' digests as JSON (see :func:`check_inputs`).
INPUTS_ATTR = "fluxbridge_inputs"


def inputs_attr(inputs: Mapping[str, str]) -> str:
    """The value of :data:`INPUTS_ATTR` for ``inputs``."""
    return json.dumps(dict(inputs), sort_keys=True)


def recorded_inputs(attrs: Mapping[str, object]) -> dict[str, str] | None:
    """The inputs a product recorded in its attributes; None when it recorded none."""
    try:
        value = json.loads(str(attrs[INPUTS_ATTR]))
    except (KeyError, ValueError):
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def check_inputs(
    product: Path, recorded: Mapping[str, str] | None, current: Mapping[str, str], fix: str
) -> None:
    """Refuse ``product`` when the inputs it recorded differ from today's ``current``.

    ``recorded`` and ``current`` map an input's name (``dataset``, a checkpoint's
    path in the run, ...) to its digest; ``fix`` is the command that remakes it.
    """
    if recorded is None:
        raise FluxbridgeError(
            f"{product} records no inputs (made by an older fluxbridge?); cannot tell whether "
            f"it is current: {fix}"
        )
    for name in sorted(set(recorded) | set(current)):
        was, now = recorded.get(name), current.get(name)
        if was == now:
            continue
        what = (
            f"{name} is new since it was made"
            if was is None
            else f"{name} is gone"
            if now is None
            else f"{name} changed since it was made"
        )
        raise FluxbridgeError(f"{product} is stale: {what}; {fix}")


# -- locks -----------------------------------------------------------------------------


@contextlib.contextmanager
def stage_lock(folder: Path, stage: str) -> Iterator[None]:
    """Hold ``folder/.lock-<stage>`` for the body; a second process is refused at once.

    The lock is the kernel's (``flock``), so a killed holder releases it; the file
    itself stays and records who held it last. A folder that the lock created is
    removed again when the body fails before anything else was written in it.
    """
    folder = Path(folder)
    created = not folder.exists()
    path = folder / f".lock-{stage}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = path.open("a+")
    except OSError as exc:
        raise FluxbridgeError(f"cannot write in {folder}: {exc.strerror}") from exc
    failed = False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise FluxbridgeError(
                f"`{stage}` is already running on {folder} ({holder}); wait for it to finish"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        fh.flush()
        yield
    except BaseException:
        failed = True
        raise
    finally:
        fh.close()
        if failed and created and [p.name for p in folder.iterdir()] == [path.name]:
            # a refused first run leaves no folder behind that only the lock made
            path.unlink()
            folder.rmdir()
