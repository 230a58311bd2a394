"""Benchmark: EC-ATM training steps — Lightning overhead, and bridge vs exact ATM integrals.

1. Lightning vs a raw torch loop of the same math (EC MSE + ATM ℓ3 term +
   uncertainty weighting + Adam, same batches): prints the overhead ratio
   (Lightning time / raw time − 1; goal ≤ 10 %).
2. One ATM step (a year of drivers → network → monthly means → regional NEE →
   loss → backward) with the bridges (contributing cells only) vs the exact
   integral (every land cell) at the demo resolution (4°), and an estimate at
   0.5° by scaling the exact step with the land-cell count (the bridge step does
   not grow: its cells are the same few per region). Printed as ratios. Both
   steps use the same (region × cell) matrix head, so the difference is the
   network and its backward over 365 days × cells, which is what the bridge saves.

Synthetic drivers of the real shapes; no dataset needed. Usage:

    .venv/bin/python benchmarks/bench_training.py [--steps 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader

from fluxbridge.models import losses
from fluxbridge.models.modules import ECATMModule
from fluxbridge.models.network import ExactIntegral, NEENetwork
from fluxbridge.training.datamodules import EpochBatches, SiteDays, Years

N_REGIONS = 18
LAND_CELLS_4DEG = 1400  # cells with land_fraction > 0 on the global 4° grid (approx.)
LAND_CELLS_05DEG = 67000  # same at 0.5° (docs/canonical_dataset.md)
BRIDGE_CELLS = 180  # ~10 contributing cells per RECCAP2 region


def _year(n_cells: int, rng: np.random.Generator, n_members: int = 5) -> dict:
    month = np.repeat(np.arange(12), [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    days = np.bincount(month).astype(np.float32)
    return {
        "x": torch.tensor(rng.normal(size=(365, n_cells, 10)), dtype=torch.float32),
        "month_mean": torch.tensor(
            (month[None] == np.arange(12)[:, None]) / days[:, None], dtype=torch.float32
        ),
        "days_in_month": torch.tensor(days),
        "target": torch.tensor(rng.normal(size=(n_members, N_REGIONS, 12)), dtype=torch.float32),
        "land_weight": torch.full((N_REGIONS,), 1.0 / N_REGIONS),
        "year": 2001,
    }


def _module(n_cells: int, seed: int = 0) -> ECATMModule:
    torch.manual_seed(seed)
    weight = torch.rand(N_REGIONS, n_cells) * 1e-5
    return ECATMModule(NEENetwork(), regional=ExactIntegral(weight))


def _loaders(steps: int, n_cells: int, batch: int) -> tuple[DataLoader, DataLoader]:
    rng = np.random.default_rng(0)
    sites = SiteDays(rng.normal(size=(steps * batch, 10)), rng.normal(size=steps * batch))
    years = Years([_year(n_cells, rng) for _ in range(3)])
    ec = DataLoader(sites, sampler=EpochBatches(len(sites), batch, 0), batch_size=None)
    atm = DataLoader(years, sampler=EpochBatches(len(years), None, 1), batch_size=None)
    return ec, atm


def time_lightning(steps: int, n_cells: int, batch: int) -> float:
    module = _module(n_cells)
    ec, atm = _loaders(steps, n_cells, batch)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        deterministic=True,
        use_distributed_sampler=False,
    )
    start = time.perf_counter()
    trainer.fit(module, CombinedLoader({"ec": ec, "atm": atm}, mode="max_size_cycle"))
    return time.perf_counter() - start


def time_raw(steps: int, n_cells: int, batch: int) -> float:
    module = _module(n_cells)
    ec, atm = _loaders(steps, n_cells, batch)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.003)
    start = time.perf_counter()
    atm_iter = iter(atm)
    for ec_batch in ec:
        try:
            atm_batch = next(atm_iter)
        except StopIteration:
            atm_iter = iter(atm)
            atm_batch = next(atm_iter)
        loss_ec = losses.mse(module.net(ec_batch["x"]), ec_batch["y"])
        loss_atm = module.atm_term(atm_batch)
        total, _ = losses.uncertainty_weighted(torch.stack([loss_ec, loss_atm]), module.log_var)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    return time.perf_counter() - start


def time_atm_step(n_cells: int, repeats: int) -> float:
    """Seconds per ATM forward + backward for one year at ``n_cells`` cells."""
    module = _module(n_cells)
    batch = _year(n_cells, np.random.default_rng(1))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        module.atm_term(batch).backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    time_lightning(3, BRIDGE_CELLS, args.batch)  # warm-up (imports, first-call allocations)
    raw = time_raw(args.steps, BRIDGE_CELLS, args.batch)
    lit = time_lightning(args.steps, BRIDGE_CELLS, args.batch)
    print(
        f"EC-ATM step ({args.steps} steps, batch {args.batch}, {BRIDGE_CELLS} bridge cells): "
        f"raw torch {raw / args.steps * 1e3:.1f} ms/step, Lightning "
        f"{lit / args.steps * 1e3:.1f} ms/step; overhead ratio Lightning/raw - 1 = "
        f"{lit / raw - 1:+.1%} (goal <= +10%)"
    )

    bridge = time_atm_step(BRIDGE_CELLS, 5)
    exact = time_atm_step(LAND_CELLS_4DEG, 5)
    exact_05 = exact * LAND_CELLS_05DEG / LAND_CELLS_4DEG
    print(
        f"ATM step at 4 deg: bridge ({BRIDGE_CELLS} cells) {bridge * 1e3:.1f} ms, exact "
        f"({LAND_CELLS_4DEG} land cells) {exact * 1e3:.1f} ms; ratio exact/bridge = "
        f"{exact / bridge:.1f}"
    )
    print(
        f"ATM step at 0.5 deg (estimate, exact scaled by land cells x"
        f"{LAND_CELLS_05DEG / LAND_CELLS_4DEG:.0f}): exact {exact_05:.2f} s; ratio "
        f"exact/bridge = {exact_05 / bridge:.0f}"
    )


if __name__ == "__main__":
    main()
