"""run_train end to end on the tiny dataset: layout, determinism, resume, errors, EC vs EC-ATM."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from fluxbridge.errors import ConfigError, FluxbridgeError, SchemaError
from fluxbridge.outputs import file_digest, tree_digest
from fluxbridge.training.callbacks import EpochLog
from fluxbridge.training.checkpoint import load_member, read_checkpoint
from fluxbridge.training.run import run_train
from fluxbridge.training.run_config import TrainRunConfig

KILL_SCRIPT = Path(__file__).with_name("_kill_script.py")


def _train(model, data, run, config, **kw):
    kw.setdefault("folds", 1)
    return run_train(model, data, run, accelerator="cpu", devices=1, config=config, **kw)


def _net_state(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in read_checkpoint(path)["state_dict"].items()}


def _last_val(run: Path, model: str) -> pd.Series:
    metrics = pd.read_csv(run / "train" / model / "fold_0" / "metrics.csv")
    return metrics.dropna(subset=["val/loss"]).iloc[-1]


def test_layout_and_decoupling_table(tiny_data, run_dir, tiny_config):
    assert _train("ec-atm", tiny_data, run_dir, tiny_config) == 0
    out = run_dir / "train" / "ec-atm"
    for name in ("config.yaml", "decoupling.csv", "fold_0/best.ckpt", "fold_0/last.ckpt"):
        assert (out / name).exists(), name
    metrics = pd.read_csv(out / "fold_0" / "metrics.csv")
    for column in (
        "train/loss_ec",
        "train/loss_atm",
        "train/loss",
        "train/w_ec",
        "train/w_atm",
        "val/loss",
        "val/rmse_sites",
        "val/loss_atm",
        "decoupling/BRA/rel_error",
    ):
        assert column in metrics.columns, column
    table = pd.read_csv(out / "decoupling.csv")
    assert list(table.region) == ["USA", "BRA", "EU"] and set(table.fold) == {0}
    years = json.loads((out / "fold_0" / "atm_years.json").read_text())
    inv_years = sorted(
        {int(y) for y in xr.open_dataset(tiny_data / "inversions.nc")["time.year"].values}
    )
    assert len(years["val"]) == 2 and sorted(years["train"] + years["val"]) == inv_years
    assert {"rel_error", "corr", "exact_pgc_yr", "bridge_pgc_yr"} <= set(table.columns)
    net = load_member(out / "fold_0" / "best.ckpt", "ec-atm")
    assert net.input_std.min() > 0
    with pytest.raises(SchemaError, match="checkpoint of model 'ec-atm', expected 'ec'"):
        load_member(out / "fold_0" / "best.ckpt", "ec")
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        _train("ec-atm", tiny_data, run_dir, tiny_config)


def test_bitwise_deterministic(tiny_data, tmp_path, tiny_config):
    states = []
    for name in ("a", "b"):
        _train("ec-atm", tiny_data, tmp_path / name, tiny_config, integral="exact")
        states.append(_net_state(tmp_path / name / "train/ec-atm-exact/fold_0/last.ckpt"))
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def _files(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_resume_after_kill_equals_uninterrupted(tiny_data, tiny_bridges, tmp_path, monkeypatch):
    """kill -9 in fold 1's epoch 1 (its rows written, its checkpoint not), then resume."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 2048\nmax_epochs: 3\nprogress_bar: false\n")
    full, cut = tmp_path / "full", tmp_path / "cut"
    for run in (full, cut):
        run.mkdir()
        (run / "bridges.nc").write_bytes(tiny_bridges.read_bytes())
    _train("ec-atm", tiny_data, full, cfg, folds=2)
    killed = subprocess.run(
        [sys.executable, str(KILL_SCRIPT), str(tiny_data), str(cut), str(cfg), "1", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    full, cut = full / "train/ec-atm", cut / "train/ec-atm"
    assert (cut / "fold_0/finished.json").exists()
    assert not (cut / "fold_1/finished.json").exists()
    assert read_checkpoint(cut / "fold_1/last.ckpt")["epoch"] == 0
    for name in ("metrics.csv", "decoupling_epochs.csv"):  # epoch 1's rows were written
        assert pd.read_csv(cut / "fold_1" / name)["epoch"].max() == 1, name
    killed_rows = (cut / "fold_1/metrics.csv").read_bytes().splitlines(keepends=True)
    epoch_0_rows = 1 + int((pd.read_csv(cut / "fold_1/metrics.csv")["epoch"] == 0).sum())
    fold_0 = _files(cut / "fold_0")

    started = []
    monkeypatch.setattr(
        EpochLog,
        "on_train_epoch_start",
        lambda self, trainer, module: started.append((self.label, trainer.current_epoch)),
    )
    _train("ec-atm", tiny_data, cut.parents[1], cfg, folds=2, resume=True)
    # the finished fold is not trained again, and none of its files is rewritten
    assert _files(cut / "fold_0") == fold_0
    # the killed fold runs only the epochs after its checkpoint (training is deterministic,
    # so a restart from epoch 0 would end with the same files: only this tells them apart)
    assert started == [("ec-atm fold 1", 1), ("ec-atm fold 1", 2)]
    # its epoch-0 rows are those written before the kill; epoch 1's are not doubled
    resumed_rows = (cut / "fold_1/metrics.csv").read_bytes().splitlines(keepends=True)
    assert resumed_rows[:epoch_0_rows] == killed_rows[:epoch_0_rows]
    for name in ("metrics.csv", "decoupling_epochs.csv", "decoupling.csv"):
        assert (cut / "fold_1" / name).read_bytes() == (full / "fold_1" / name).read_bytes(), name
    assert (cut / "decoupling.csv").read_bytes() == (full / "decoupling.csv").read_bytes()
    for name in ("best.ckpt", "last.ckpt"):
        a, b = _net_state(full / "fold_1" / name), _net_state(cut / "fold_1" / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_resume_refuses_another_models_checkpoint(tiny_data, tmp_path, tiny_config):
    _train("ec", tiny_data, tmp_path, tiny_config, integral="exact", max_epochs=1)
    ec_dir = tmp_path / "train/ec"
    atm_dir = tmp_path / "train/ec-atm-exact/fold_0"
    atm_dir.mkdir(parents=True)
    (atm_dir / "last.ckpt").write_bytes((ec_dir / "fold_0/last.ckpt").read_bytes())
    with pytest.raises(SchemaError, match="checkpoint of model 'ec', expected 'ec-atm'"):
        _train("ec-atm", tiny_data, tmp_path, tiny_config, integral="exact", resume=True)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"fluxbridge": {"model": "ec"}, "obj": Path("x")}, path)
    with pytest.raises(SchemaError, match="refusing to load"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "ecatm"}, r"model='ecatm' is not one of \['ec', 'ec-atm'\]"),
        ({"model": "ec", "integral": "fast"}, r"integral='fast' is not one of"),
        ({"model": "ec", "folds": 11}, r"folds=11: .* has 10 site folds"),
        ({"model": "ec-atm"}, r"bridges.nc not found: .*invoke bridges"),
        # --max-epochs -1 trained forever and 0 ended with no checkpoint (issue 13)
        ({"model": "ec", "max_epochs": 0}, r"max_epochs=0 must be >= 1"),
        ({"model": "ec", "max_epochs": -1}, r"max_epochs=-1 must be >= 1"),
        ({"model": "ec", "num_nodes": 0}, r"num_nodes=0 must be >= 1"),
        pytest.param(
            {"model": "ec", "accelerator": "gpu"},
            r"accelerator='gpu': no CUDA device on this machine",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here"),
        ),
    ],
)
def test_bad_configs_are_clear(tiny_data, tmp_path, tiny_config, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        run_train(data=tiny_data, run=tmp_path, config=tiny_config, **kwargs)
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("selection: best", r"selection='best' is not one of \['skill', 'eq14'\]"),
        ("tower_offset_lr_scale: 0", r"bad.yaml: tower_offset_lr_scale=0.0 must be > 0"),
        ("selection_weights: [1.0]", r"selection_weights=\[1.0\]: expected two weights"),
        ("batch_size: 0", r"bad.yaml: batch_size=0 must be >= 1"),
        ("lr: -0.01", r"bad.yaml: lr=-0.01 must be > 0"),
        ("latent: 0", r"bad.yaml: latent=0 must be >= 1"),
        ("num_workers: -2", r"bad.yaml: num_workers=-2 must be >= 0"),
        ("uncertainty_lr_scale: 0", r"bad.yaml: uncertainty_lr_scale=0.0 must be > 0"),
        ("decoupling_min_corr: 2", r"bad.yaml: decoupling_min_corr=2.0 must lie in \[-1, 1\]"),
    ],
)
def test_bad_selection_settings_are_clear(tiny_data, tmp_path, line, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(line + "\n")
    with pytest.raises(ConfigError, match=message):
        run_train("ec-atm", tiny_data, tmp_path, config=cfg)
    assert not (tmp_path / "train").exists()


def test_best_epoch_is_the_lowest_skill_score(tiny_data, run_dir, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 1024\nmax_epochs: 4\nprogress_bar: false\ntower_offset: true\n")
    _train("ec-atm", tiny_data, run_dir, cfg, integral="exact")
    fold = run_dir / "train" / "ec-atm-exact" / "fold_0"
    metrics = pd.read_csv(fold / "metrics.csv")
    val = metrics.dropna(subset=["val/skill"]).set_index("epoch")
    # the skill score is the two held-out losses over their first-epoch values
    first = val.iloc[0]
    rebuilt = val["val/rmse_sites"] ** 2 / first["val/rmse_sites"] ** 2
    rebuilt += val["val/loss_atm"] / first["val/loss_atm"]
    np.testing.assert_allclose(val["val/skill"], rebuilt, rtol=1e-4)
    assert (val["val/loss"] == val["val/skill"]).all() and "val/eq14" in val
    best_epoch = read_checkpoint(fold / "best.ckpt")["epoch"]
    assert best_epoch == int(val["val/skill"].idxmin())
    offsets = metrics["train/tower_offset"].dropna()
    assert len(offsets) == 4 and offsets.abs().max() > 0
    load_member(fold / "best.ckpt", "ec-atm")  # the map's network loads without the tower term


def test_unknown_config_key(tiny_data, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("latnet: 16\n")
    with pytest.raises(ConfigError, match=r"unknown key.*'latnet'"):
        run_train("ec", tiny_data, tmp_path, config=cfg)


def test_ec_atm_lowers_atm_loss_and_keeps_ec_loss(tiny_data, run_dir, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 1024\nmax_epochs: 4\nprogress_bar: false\nlr: 0.005\n")
    _train("ec", tiny_data, run_dir, cfg)
    _train("ec-atm", tiny_data, run_dir, cfg)
    ec, ecatm = _last_val(run_dir, "ec"), _last_val(run_dir, "ec-atm")
    assert ecatm["val/loss_atm"] < ec["val/loss_atm"]
    # the tiny world's BRA towers carry a +0.6 gC m-2 d-1 bias the inversions do not; bridges
    # that pass the model's changes through at their integral (no intercept, Σ w = land
    # area) let the ATM term pull that bias out, which costs site MSE (1.13× here)
    assert ecatm["val/rmse_sites"] ** 2 <= 1.2 * ec["val/rmse_sites"] ** 2


def test_resume_on_changed_inputs_is_refused(tiny_data, run_dir, tmp_path, tiny_config):
    """config.yaml records the digests of the dataset and bridges; a resume on others would
    mix members trained on different inputs."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    _train("ec-atm", data, run_dir, tiny_config, max_epochs=1)
    recorded = TrainRunConfig.read(run_dir / "train" / "ec-atm").inputs
    assert recorded == {
        "dataset": tree_digest(data),
        "bridges": file_digest(run_dir / "bridges.nc"),
    }
    finished = json.loads((run_dir / "train/ec-atm/fold_0/finished.json").read_text())
    assert finished["inputs"] == recorded
    _train("ec-atm", data, run_dir, tiny_config, max_epochs=1, resume=True)  # same inputs: fine
    with (data / "reference.nc").open("ab") as fh:  # any change of content
        fh.write(b"\0")
    with pytest.raises(FluxbridgeError, match=r"ec-atm is stale: dataset changed.*new run folder"):
        _train("ec-atm", data, run_dir, tiny_config, max_epochs=1, resume=True)
