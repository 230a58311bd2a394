"""The pipeline runs unchanged on a dataset made by `invoke prepare` (fixture-sized)."""

from __future__ import annotations

import json
from pathlib import Path

from fluxbridge.bridge.build import run_bridges
from fluxbridge.evaluation.run import evaluate_run
from fluxbridge.inference.forward import run_forward
from fluxbridge.training.run import run_train

from .test_prepare import inputs, prepared  # noqa: F401  (the shared fixtures)


def test_bridges_train_forward_evaluate_on_prepared_data(prepared: Path, tmp_path: Path) -> None:  # noqa: F811
    run = tmp_path / "run"
    bridges_cfg = tmp_path / "bridges.yaml"
    bridges_cfg.write_text("n_runs: 2\nn_jobs: 1\nfigures: false\n")
    train_cfg = tmp_path / "train.yaml"
    # the fixture holds two years: one trains the ATM term, one validates it
    train_cfg.write_text("max_epochs: 1\natm_val_years: 1\nprogress_bar: false\n")
    assert run_bridges(prepared, run, bridges_cfg) == 0
    for model in ("ec", "ec-atm"):
        assert run_train(model=model, data=prepared, run=run, folds=1, config=train_cfg) == 0
    assert run_forward(run) == 0
    metrics = evaluate_run(run)
    assert metrics["models"] == ["EC", "EC-ATM"]
    assert "truth" not in metrics  # real data has no truth
    saved = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert (
        saved["global"]["EC"]["annual_mean_pgc_yr"] == metrics["global"]["EC"]["annual_mean_pgc_yr"]
    )
    assert (run / "report" / "index.html").exists()
