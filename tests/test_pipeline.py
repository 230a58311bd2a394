import json

import pytest

from fluxbridge import logs, pipeline
from fluxbridge.data.canonical import open_canonical

from .conftest import TINY_SCENARIO, demo_settings


def test_demo_writes_every_stage(tiny_demo):
    open_canonical(tiny_demo / "data")
    for path in (
        "bridges.nc",
        "train/ec/fold_0/best.ckpt",
        "train/ec-atm/fold_1/best.ckpt",
        "train/ec-atm/decoupling.csv",
        "forward/EC.nc",
        "forward/EC-ATM.nc",
        "evaluation/regional_monthly.nc",
        "evaluation/metrics.json",
        "report/index.html",
        "report/report.md",
        "analysis_china/index.html",
        "analysis_china/summary.json",
        "timings.json",
    ):
        assert (tiny_demo / path).exists(), path
    metrics = json.loads((tiny_demo / "evaluation" / "metrics.json").read_text())
    assert metrics["models"] == ["EC", "EC-ATM"]
    assert set(metrics["truth"]) == {"EC", "EC-ATM", "inversion_mean"}
    report = (tiny_demo / "report" / "report.md").read_text()
    assert "2 of the 10 site folds" in report and "Truth scorecard" in report


def test_rerun_skips_unchanged_steps(tiny_demo, capsys, monkeypatch):
    for name, value in demo_settings(tiny_demo.parent).items():
        monkeypatch.setattr(pipeline, name, value)
    before = (tiny_demo / "forward" / "EC.nc").stat().st_mtime_ns
    with logs.session():  # the console lines a user sees
        assert pipeline.run_demo(TINY_SCENARIO, tiny_demo, force=False) == 0
    out = capsys.readouterr().out
    for step in ("twin", "bridges", "train-ec", "train-ec-atm", "forward", "evaluate", "analyze"):
        assert f"[demo] {step}: inputs unchanged, skipped" in out
    assert (tiny_demo / "forward" / "EC.nc").stat().st_mtime_ns == before


def test_profiles_name_their_settings():
    import yaml

    from fluxbridge.config import find_config
    from fluxbridge.errors import ConfigError

    with pytest.raises(ConfigError, match="profile='huge': expected one of demo, paper"):
        pipeline.profile_settings("huge")
    paper = pipeline.profile_settings("paper")
    assert paper.folds is None and paper.epochs == 100  # every fold; budget in docs/scaling.md
    assert find_config(paper.scenario).name == "full.yaml"
    cfg = yaml.safe_load(find_config(paper.train).read_text())
    # Upton et al. Table B1: latent 32, lr 0.003, EC batch 10000
    assert (cfg["latent"], cfg["lr"], cfg["batch_size"]) == (32, 0.003, 10000)
    assert pipeline.profile_settings("demo").folds == pipeline.DEMO_FOLDS


class Killed(Exception):
    """Stands for the kill of a run between two members."""


@pytest.mark.slow
def test_paper_profile_trains_every_fold_and_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    """The paper profile's structure on the tiny world (1 epoch): all its 10 folds per model;
    a run killed after 3 EC members keeps them, and a third run skips every step."""
    from fluxbridge.training import run as train_run

    settings = demo_settings(tmp_path)
    monkeypatch.setattr(pipeline, "PAPER_SCENARIO", TINY_SCENARIO)
    monkeypatch.setattr(pipeline, "PAPER_EPOCHS", 1)
    monkeypatch.setattr(pipeline, "PAPER_BRIDGES", settings["DEMO_BRIDGES"])
    monkeypatch.setattr(pipeline, "PAPER_TRAIN", settings["DEMO_TRAIN"])
    out = tmp_path / "paper"
    member = train_run.train_member
    trained: list[int] = []

    def killed_at_fold_3(setup, fold, bridges):
        if fold == 3:
            raise Killed
        trained.append(fold)
        member(setup, fold, bridges)

    monkeypatch.setattr(train_run, "train_member", killed_at_fold_3)
    with pytest.raises(Killed):
        pipeline.run_demo(None, out, profile="paper")
    assert trained == [0, 1, 2]
    ec = out / "train" / "ec"
    kept = {k: (ec / f"fold_{k}" / "best.ckpt").stat().st_mtime_ns for k in trained}

    monkeypatch.setattr(train_run, "train_member", member)
    with logs.session():
        assert pipeline.run_demo(None, out, profile="paper") == 0
    console = capsys.readouterr().out
    assert "[demo] train-ec: resuming the interrupted run on the same inputs" in console
    assert {k: (ec / f"fold_{k}" / "best.ckpt").stat().st_mtime_ns for k in trained} == kept
    for model in ("ec", "ec-atm"):
        folds = sorted(p.name for p in (out / "train" / model).glob("fold_*/finished.json"))
        assert len(folds) == 10, (model, folds)  # the tiny world has the paper's 10 folds
    report = (out / "report" / "report.md").read_text()
    assert "Paper-profile run" in report and "all 10 site folds" in report
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert metrics["models"] == ["EC", "EC-ATM"]

    before = (out / "forward" / "EC.nc").stat().st_mtime_ns
    with logs.session():
        assert pipeline.run_demo(None, out, profile="paper") == 0
    console = capsys.readouterr().out
    for step in ("twin", "bridges", "train-ec", "train-ec-atm", "forward", "evaluate", "analyze"):
        assert f"[demo] {step}: inputs unchanged, skipped" in console
    assert (out / "forward" / "EC.nc").stat().st_mtime_ns == before


@pytest.mark.parametrize("resumable", [True, False])
def test_a_killed_step_resumes_only_when_resumable_and_inputs_unchanged(tmp_path, resumable):
    """StepRunner: a step killed midway keeps its outputs for a resumable action on the same
    inputs; otherwise (not resumable, new inputs, or force) they are removed first."""
    source = tmp_path / "in.txt"
    source.write_text("a")
    out = tmp_path / "out"
    seen: list[list[str]] = []

    def action(kill: bool) -> None:
        seen.append(sorted(p.name for p in out.glob("*")))
        out.mkdir(exist_ok=True)
        (out / f"part{len(seen)}").write_text("x")
        if kill:
            raise Killed

    def step(kill: bool) -> pipeline.Step:
        return pipeline.Step("s", [source], {}, [out], lambda: action(kill), resumable)

    with pytest.raises(Killed):
        pipeline.StepRunner(tmp_path, force=False)(step(kill=True))
    pipeline.StepRunner(tmp_path, force=False)(step(kill=False))
    assert seen[1] == (["part1"] if resumable else [])
    pipeline.StepRunner(tmp_path, force=False)(step(kill=False))  # done: skipped
    assert len(seen) == 2
    with pytest.raises(Killed):  # killed again, then the inputs change: start afresh
        pipeline.StepRunner(tmp_path, force=True)(step(kill=True))
    assert seen[2] == []
    source.write_text("b")
    pipeline.StepRunner(tmp_path, force=False)(step(kill=False))
    assert seen[3] == []
