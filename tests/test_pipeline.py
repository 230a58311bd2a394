import json

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

