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
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator
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
        (tmp / MARKER).write_text(json.dumps({"task": task, "files": _files(tmp)}, indent=1))
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
