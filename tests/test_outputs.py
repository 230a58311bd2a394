"""Output folders: never replace what the project did not write (issue 13's data-loss cases)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fluxbridge.errors import FluxbridgeError
from fluxbridge.outputs import (
    MARKER,
    check_inputs,
    check_output,
    content_hash,
    file_digest,
    remove_stale_temporaries,
    reuse_part,
    stage_lock,
    staged_directory,
    tree_digest,
    work_directory,
)

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
    assert (marker["task"], marker["files"]) == ("task", ["a.txt"])
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


# -- fingerprints and provenance ------------------------------------------------------


def test_content_hash_changes_with_bytes_and_settings(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("x")
    h1 = content_hash([f], {"k": 1})
    assert h1 == content_hash([f], {"k": 1})
    assert h1 != content_hash([f], {"k": 2})
    f.write_text("y")
    assert h1 != content_hash([f], {"k": 1})


def test_file_digest_is_sha256_of_the_bytes(tmp_path):
    import hashlib

    f = tmp_path / "a.bin"
    f.write_bytes(b"abc" * 1000)
    assert file_digest(f) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_marker_records_digests_and_tree_digest_uses_them(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _write(out)
    marker = json.loads((out / MARKER).read_text())
    assert marker["sha256"]["a.txt"]["sha256"] == file_digest(out / "a.txt")
    first = tree_digest(out)
    # unchanged size and mtime: the recorded digest is used, the file is not read again
    import fluxbridge.outputs as outputs

    monkeypatch.setattr(outputs, "file_digest", lambda path: pytest.fail(f"read {path}"))
    assert tree_digest(out) == first
    monkeypatch.undo()
    # a changed file (new size and mtime) is hashed again and changes the digest
    (out / "a.txt").write_text("another result")
    assert tree_digest(out) != first


def test_tree_digest_of_an_unmarked_folder_hashes_content(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.nc").write_bytes(b"1")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.nc").write_bytes(b"1")
    assert tree_digest(tmp_path / "d") == tree_digest(tmp_path / "e")
    (tmp_path / "e" / "x.nc").write_bytes(b"2")
    assert tree_digest(tmp_path / "d") != tree_digest(tmp_path / "e")


@pytest.mark.parametrize(
    ("recorded", "current", "message"),
    [
        ({"dataset": "a"}, {"dataset": "b"}, "dataset changed since it was made"),
        ({"dataset": "a"}, {"dataset": "a", "fold_1": "c"}, "fold_1 is new since it was made"),
        ({"dataset": "a", "fold_1": "c"}, {"dataset": "a"}, "fold_1 is gone"),
        (None, {"dataset": "a"}, "records no inputs"),
    ],
)
def test_check_inputs_refuses_stale_products(recorded, current, message):
    with pytest.raises(FluxbridgeError, match=message) as err:
        check_inputs("run/forward/EC.nc", recorded, current, "rerun `forward --force`")
    assert "run/forward/EC.nc" in str(err.value)
    assert "\n" not in str(err.value)


def test_check_inputs_accepts_current_products():
    check_inputs("p", {"dataset": "a", "k": "b"}, {"k": "b", "dataset": "a"}, "fix")


def test_work_directory_keeps_only_the_same_fingerprint(tmp_path):
    root = tmp_path / "work"
    assert work_directory(root, "one") is False
    (root / "part.nc").write_text("x")
    assert work_directory(root, "one") is True
    assert (root / "part.nc").exists()
    assert work_directory(root, "two") is False
    assert not (root / "part.nc").exists()


def test_damaged_part_is_removed_for_recomputation(tmp_path):
    part = tmp_path / "part.nc"
    assert reuse_part(part, lambda p: None) is False
    part.write_text("good")
    assert reuse_part(part, lambda p: p.read_text() == "good" or 1 / 0) is True

    def unreadable(path):
        raise OSError("truncated")

    assert reuse_part(part, unreadable) is False
    assert not part.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporaries_of_dead_writers_are_removed(tmp_path):
    dead = tmp_path / "sub" / f".drivers.nc.tmp-{_dead_pid()}"
    dead.parent.mkdir()
    dead.write_text("half")
    alive = tmp_path / f".sites.nc.tmp-{os.getpid()}"
    alive.write_text("being written")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert alive.exists() and not dead.exists()


_HOLD = """
import sys, time
from pathlib import Path
from fluxbridge.outputs import stage_lock
with stage_lock(Path(sys.argv[1]), "forward"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_stage_lock_refuses_a_second_process_and_is_freed_by_kill(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FluxbridgeError, match=r"`forward` is already running on .*pid"):
            with stage_lock(tmp_path, "forward"):
                pass
        with stage_lock(tmp_path, "evaluate"):  # another stage is not blocked
            pass
    finally:
        holder.kill()
        holder.wait()
    with stage_lock(tmp_path, "forward"):  # the kernel released the killed holder's lock
        pass


def test_a_refused_first_run_leaves_no_folder_made_only_for_the_lock(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError), stage_lock(run, "bridges"):
        raise RuntimeError("bad input")
    assert not run.exists()
    run.mkdir()
    (run / "keep.txt").write_text("user")
    with pytest.raises(RuntimeError), stage_lock(run, "bridges"):
        raise RuntimeError("bad input")
    assert sorted(p.name for p in run.iterdir()) == [".lock-bridges", "keep.txt"]
