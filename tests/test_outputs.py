"""Output folders: never replace what the project did not write (issue 13's data-loss cases)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fluxbridge.errors import FluxbridgeError
from fluxbridge.outputs import MARKER, check_output, staged_directory

from .conftest import TINY_SCENARIO


def _tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _write(out, task="task", replace=False, inputs=(), name="a.txt"):
    with staged_directory(out, task, inputs, replace) as tmp:
        (tmp / name).write_text("result")


def test_new_output_is_marked_with_its_files(tmp_path):
    _write(tmp_path / "out")
    marker = json.loads((tmp_path / "out" / MARKER).read_text())
    assert marker == {"task": "task", "files": ["a.txt"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left


def test_replace_only_with_force_and_only_own_files(tmp_path):
    out = tmp_path / "out"
    _write(out)
    with pytest.raises(FluxbridgeError, match="earlier `task` output; pass --force"):
        _write(out, name="b.txt")
    _write(out, replace=True, name="b.txt")
    assert sorted(_tree(out)) == [MARKER, "b.txt"]
    (out / "mine.txt").write_text("user")
    with pytest.raises(FluxbridgeError, match=r"files `task` did not write \(mine\.txt\)"):
        _write(out, replace=True)
    assert (out / "mine.txt").read_text() == "user"
    with pytest.raises(FluxbridgeError, match="holds the output of `task`, not `other`"):
        _write(out, task="other", replace=True)


def test_unmarked_folder_is_never_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(FluxbridgeError, match="not empty and was not written by fluxbridge"):
        _write(out, replace=True)
    assert _tree(out) == {"thesis.tex": b"years of work"}
    (out / "thesis.tex").unlink()
    _write(out)  # an empty folder is fine


@pytest.mark.parametrize(
    ("where", "relation"), [("data", "is"), ("data/sub", "lies inside"), (".", "contains")]
)
def test_output_overlapping_an_input_is_refused(tmp_path, where, relation):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.nc").write_text("input")
    with pytest.raises(FluxbridgeError, match=f"{relation} the input"):
        check_output(tmp_path / where, "task", [data], replace=True)
    assert _tree(data) == {"in.nc": b"input"}


def test_staging_of_a_killed_run_is_removed(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = int(gone.stdout)
    stale = tmp_path / f".out.tmp-{dead}"
    stale.mkdir()
    (stale / "half.nc").write_text("partial")
    alive = tmp_path / f".out.tmp-{os.getppid()}"  # a running process: not ours to remove
    alive.mkdir()
    _write(tmp_path / "out")
    assert not stale.exists() and alive.exists()


def test_failure_leaves_the_earlier_output(tmp_path):
    out = tmp_path / "out"
    _write(out)
    before = _tree(out)
    with pytest.raises(RuntimeError), staged_directory(out, "task", [], True) as tmp:
        (tmp / "half.txt").write_text("partial")
        raise RuntimeError("killed halfway")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# -- the tasks (analyze: tests/analysis/test_run.py) ---------------------------------------


def test_twin_force_replaces_only_its_own_output(tmp_path):
    from fluxbridge.data.twin import run_twin

    out = tmp_path / "world"
    out.mkdir()
    (out / "field_notes.csv").write_text("mine")
    for force in (False, True):
        with pytest.raises(FluxbridgeError, match="not empty and was not written by fluxbridge"):
            run_twin(TINY_SCENARIO, out, force=force)
        assert _tree(out) == {"field_notes.csv": b"mine"}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]  # no staging left
    (out / "field_notes.csv").unlink()
    assert run_twin(TINY_SCENARIO, out, force=False) == 0
    first = (out / "truth.nc").stat().st_mtime_ns
    assert run_twin(TINY_SCENARIO, out, force=True) == 0
    assert (out / "truth.nc").stat().st_mtime_ns != first
    assert json.loads((out / MARKER).read_text())["task"] == "twin"
