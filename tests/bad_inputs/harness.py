"""Run one hostile input through the real ``fluxbridge`` command and check what it left.

A case is data (:class:`Case`): the command line, a setup that builds the case's
folder, the exit code, a regex the single ``error:`` line must match, and the
files the command may add or change. :func:`run_case` runs the command in-process
(``fluxbridge.cli.main``, the function the installed entry point calls) with the
working directory set to the case folder, and asserts

* the exit code;
* exactly one ``error: ...`` line on stderr, matching the case's regex (none for
  a case that must pass), and no ``Traceback`` anywhere (an exception escaping
  ``main`` is a failure too);
* the folder's tree before/after: no file removed, no new or changed file
  outside the case's documented list, and no ``.tmp-``/staging leftovers.

Files are compared by content (sha256), so "user files untouched" means
byte-identical.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fluxbridge import cli

#: Files any task may add to a folder it was pointed at: its log and its stage lock.
LOGS = ("fluxbridge.log", "*/fluxbridge.log", "**/.lock-*", ".lock-*")
#: Names no command may leave behind (temporaries and staging folders of a write).
LEFTOVER = re.compile(r"\.tmp-|\.tmp$|\.partial$|\.staging")


@dataclass(frozen=True)
class Inputs:
    """Expensive inputs built once per session; read-only: copy what a case mutates."""

    world: Path  #: a tiny twin world (canonical dataset)
    run: Path  #: a trained tiny run (bridges, EC and EC-ATM members, forward, evaluation)


Setup = Callable[[Path, Inputs], None]


@dataclass(frozen=True)
class Case:
    """One hostile input: run ``argv`` in a folder ``setup`` built; what must come out."""

    id: str
    argv: tuple[str, ...]
    setup: Setup | None = None
    code: int = 2
    #: regex searched in the one ``error:`` line (None: the case must pass, no error line)
    message: str | None = None
    #: glob patterns (relative to the case folder) of files the command may add or change
    allowed: tuple[str, ...] = ()
    #: regex that must occur in stdout+stderr (e.g. the warning of a case that passes)
    output: str | None = None
    #: why the exit code is not 2 (documented departures)
    note: str = ""
    marks: tuple[object, ...] = field(default=())


def tree(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (symlinks by target name)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                out[rel + "/"] = "dir"
    return out


def _allowed(rel: str, patterns: tuple[str, ...]) -> bool:
    """``rel`` matches a pattern; a folder (``rel`` ends in ``/``) also when a pattern's
    file could lie inside it."""
    folder = rel.endswith("/")
    rel = rel.rstrip("/")
    for pattern in patterns:
        if fnmatch.fnmatch(rel, pattern) or rel == pattern.rstrip("/"):
            return True
        if folder and any(
            fnmatch.fnmatch(rel, "/".join(pattern.split("/")[:i]))
            for i in range(1, pattern.count("/") + 1)
        ):
            return True
    return False


def tree_changes(
    before: dict[str, str], after: dict[str, str], allowed: tuple[str, ...]
) -> list[str]:
    """The differences between two trees not covered by ``allowed``, one line each."""
    problems = []
    for rel in sorted(set(before) - set(after)):
        problems.append(f"removed: {rel}")
    for rel in sorted(set(after) - set(before)):
        if LEFTOVER.search(rel):
            problems.append(f"leftover: {rel}")
        elif not _allowed(rel, allowed + LOGS):
            problems.append(f"new: {rel}")
    for rel in sorted(set(before) & set(after)):
        if before[rel] != after[rel] and not _allowed(rel, allowed + LOGS):
            problems.append(f"changed: {rel}")
    return problems


#: Seconds a case may run: a refused input is refused before the work starts.
CASE_TIMEOUT_S = 90


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that ran past :data:`CASE_TIMEOUT_S` (not an Exception:
    the code under test cannot swallow it)."""


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout(f"the command ran longer than {CASE_TIMEOUT_S} s")


@dataclass
class Result:
    code: int
    out: str
    err: str


def invoke_cli(
    argv: tuple[str, ...] | list[str], cwd: Path, capfd: pytest.CaptureFixture[str]
) -> Result:
    """``fluxbridge ARGV`` in-process in ``cwd``; an exception escaping ``main`` fails the test."""
    capfd.readouterr()
    old = Path.cwd()
    os.chdir(cwd)
    code = 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        cli.main(["fluxbridge", *argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):  # sys.exit("message") prints it
            print(exc.code, file=sys.stderr)
    except BaseException:  # any escape (also SystemExit's siblings) is the failure under test
        captured = capfd.readouterr()
        pytest.fail(
            f"fluxbridge {' '.join(argv)} raised instead of exiting:\n"
            f"{traceback.format_exc()}\n{captured.err[-3000:]}"
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old)
    captured = capfd.readouterr()
    return Result(code, captured.out, captured.err)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def check_result(case: Case, result: Result) -> None:
    """The exit code, one error line matching the case, no traceback."""
    both = result.out + result.err
    context = f"\n--- stdout ---\n{result.out[-3000:]}\n--- stderr ---\n{result.err[-3000:]}"
    assert "Traceback" not in both, f"traceback in the output{context}"
    assert result.code == case.code, f"exit code {result.code}, expected {case.code}{context}"
    errors = error_lines(result.err)
    if case.message is None:
        assert errors == [], f"unexpected error line{context}"
    else:
        assert len(errors) == 1, f"{len(errors)} error lines, expected one{context}"
        assert re.search(case.message, errors[0]), (
            f"error line does not match {case.message!r}: {errors[0]!r}{context}"
        )
        assert "\n" not in errors[0]
    if case.output is not None:
        assert re.search(case.output, both), f"output lacks {case.output!r}{context}"


def run_case(case: Case, folder: Path, inputs: Inputs, capfd: pytest.CaptureFixture[str]) -> Result:
    """Build the case folder, run the command, assert everything in the module docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(folder, inputs)
    before = tree(folder)
    result = invoke_cli(case.argv, folder, capfd)
    check_result(case, result)
    problems = tree_changes(before, tree(folder), case.allowed)
    assert not problems, "case folder changed beyond the documented files:\n" + "\n".join(problems)
    return result
