"""run_dataset: a run folder that is copied or moved reads its own dataset, never another.

Every test works on a copy of the session's demo run (tests/conftest.py::tiny_demo).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fluxbridge.errors import FluxbridgeError
from fluxbridge.evaluation.run import evaluate_run
from fluxbridge.inference.forward import run_forward
from fluxbridge.inference.members import run_dataset
from fluxbridge.outputs import tree_digest
from fluxbridge.training.run import run_train

LEFT_OUT = shutil.ignore_patterns("analysis_china", "evaluation", "report")


def _copy(src: Path, dst: Path, with_data: bool = True) -> Path:
    ignore = LEFT_OUT if with_data else shutil.ignore_patterns("data", "analysis_china")
    shutil.copytree(src, dst, ignore=ignore)
    return dst


def _configs(run: Path) -> list[Path]:
    return sorted(run.glob("train/*/config.yaml"))


def _set_data(run: Path, data: Path, models: tuple[str, ...] = ("ec", "ec-atm")) -> None:
    """Rewrite the training configs as `train` wrote them before run-relative paths:
    the absolute path the dataset had then."""
    for model in models:
        path = run / "train" / model / "config.yaml"
        content = yaml.safe_load(path.read_text())
        content["data"] = str(data)
        path.write_text(yaml.safe_dump(content, sort_keys=False))


@contextlib.contextmanager
def _renamed_away(folder: Path) -> Iterator[None]:
    """``folder`` is absent for the duration (so reading it fails), then put back."""
    away = folder.with_name(folder.name + ".away")
    folder.rename(away)
    try:
        yield
    finally:
        away.rename(folder)


def test_demo_records_its_dataset_relative_to_the_run(tiny_demo: Path) -> None:
    assert [yaml.safe_load(p.read_text())["data"] for p in _configs(tiny_demo)] == ["data"] * 2


def test_copied_run_evaluates_the_copys_dataset(tiny_demo: Path, tmp_path: Path) -> None:
    copy = _copy(tiny_demo, tmp_path / "copy")
    with _renamed_away(tiny_demo / "data"):  # the original's dataset cannot be read
        assert run_dataset(copy) == copy / "data"
        metrics = evaluate_run(copy)
    assert metrics["inputs"]["dataset"] == tree_digest(copy / "data")
    assert (copy / "evaluation" / "metrics.json").exists()


@pytest.mark.parametrize("relocate", [shutil.move, shutil.copytree])
def test_relocated_run_with_an_absolute_dataset_path_reads_its_own(
    tiny_demo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, relocate
) -> None:
    """A run trained before paths were stored relative: its configs hold the absolute path
    of RUN/data. Moved: that path is gone; copied: it is the original's. Either way the
    relocated run reads its own RUN/data, which has the digest the members were trained on,
    and says so in one line."""
    original = _copy(tiny_demo, tmp_path / "original")
    _set_data(original, original / "data")
    relocated = tmp_path / "archive" / "run"
    relocated.parent.mkdir()
    relocate(original, relocated)
    with caplog.at_level(logging.INFO, logger="fluxbridge"):
        assert run_dataset(relocated) == relocated / "data"
    (line,) = [r.getMessage() for r in caplog.records if "using" in r.getMessage()]
    assert str(original / "data") in line and f"using {relocated / 'data'}" in line
    # forward reads the dataset the same way: its outputs are current, so they are kept
    before = {p: p.stat().st_mtime_ns for p in (relocated / "forward").glob("*.nc")}
    assert run_forward(relocated) == 0
    assert {p: p.stat().st_mtime_ns for p in (relocated / "forward").glob("*.nc")} == before


def test_model_trained_in_a_copy_of_an_old_run_joins_its_models(
    tiny_demo: Path, tmp_path: Path
) -> None:
    """The scorecard's case: a new model trained in the copy of a run whose configs name
    the original's dataset by its absolute path; the run still has one dataset."""
    original = _copy(tiny_demo, tmp_path / "original")
    _set_data(original, original / "data")
    copy = _copy(original, tmp_path / "copy")
    config = tmp_path / "train.yaml"
    config.write_text("max_epochs: 1\nprogress_bar: false\n")
    run_train(
        model="ec-atm", data=copy / "data", run=copy, folds=1, integral="exact", config=config
    )
    assert yaml.safe_load((copy / "train/ec-atm-exact/config.yaml").read_text())["data"] == "data"
    shutil.rmtree(original / "data")
    assert run_dataset(copy) == copy / "data"


def test_members_trained_on_datasets_of_different_digests_are_refused(
    tiny_demo: Path, tmp_path: Path
) -> None:
    run = _copy(tiny_demo, tmp_path / "run")
    other = tmp_path / "other"
    shutil.copytree(run / "data", other)
    with (other / "reference.nc").open("ab") as fh:  # any change of content
        fh.write(b"\0")
    path = run / "train" / "ec-atm" / "config.yaml"
    content = yaml.safe_load(path.read_text())
    content.update(data=str(other), inputs={**content["inputs"], "dataset": tree_digest(other)})
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    with pytest.raises(FluxbridgeError) as info:
        run_dataset(run)
    message = str(info.value)
    assert "\n" not in message
    assert str(run / "data") in message and str(other) in message
    assert "trained on different datasets" in message and "separate run folders" in message


def test_own_dataset_of_another_digest_is_never_chosen(tiny_demo: Path, tmp_path: Path) -> None:
    """The configs name a folder that is gone; RUN/data was changed since training."""
    run = _copy(tiny_demo, tmp_path / "run")
    _set_data(run, tmp_path / "gone" / "data")
    with (run / "data" / "reference.nc").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(
        FluxbridgeError,
        match=r"gone/data not found\).*run/data holds another dataset \(digest [0-9a-f]{12}\) "
        r"than the members were trained on",
    ):
        run_dataset(run)


def test_copy_without_its_dataset_names_where_to_put_it(tiny_demo: Path, tmp_path: Path) -> None:
    run = _copy(tiny_demo, tmp_path / "run", with_data=False)
    with pytest.raises(
        FluxbridgeError, match=r"run/data holds no dataset; put the one the members were trained"
    ):
        run_dataset(run)
