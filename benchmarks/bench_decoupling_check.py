"""Benchmark: the bridge-decoupling check's monthly NEE over every land cell.

At each validation epoch EC-ATM's decoupling check (``BridgeDecoupling.integrals``)
runs the network on every land cell and day of the held-out years; at 1° it was
~76 % of an EC-ATM epoch (docs/scaling.md, "Training: where an epoch goes"). The
baseline is the check as it was: the plain ``NEENetwork`` on each month's days;
fluxbridge now runs the forward run's fast path (``FoldedMember``). Both run on the
same year batches of a canonical dataset, interleaved, best of ``--repeat``; printed:
seconds per held-out year, rows per second, the ratio and the largest difference.

    .venv/bin/python benchmarks/bench_decoupling_check.py DATA [--years 2004 2005] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from fluxbridge.inference.fast import FoldedMember
from fluxbridge.models.network import NEENetwork
from fluxbridge.training.callbacks import _monthly_nee
from fluxbridge.training.datamodules import ATMSpec, FluxDataModule


def plain_monthly_nee(net: NEENetwork, batch: dict[str, Any]) -> torch.Tensor:
    """The baseline: the check before the fast path (the plain network, month by month)."""
    rows = []
    for m in range(batch["month_mean"].shape[0]):
        days = batch["month_mean"][m].nonzero().squeeze(1)
        rows.append(net(batch["x"][days]).double().mean(dim=0))
    return torch.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a canonical dataset folder")
    parser.add_argument("--years", type=int, nargs="+", help="default: the dataset's last two")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    dm = FluxDataModule(args.data, 0, atm=ATMSpec("exact"))
    dm.setup()
    years = args.years or dm.years[-2:]
    torch.manual_seed(0)
    net = NEENetwork()
    net.set_standardisation(dm.input_mean, dm.input_std)
    net.eval()
    batches = [dm.year_batch(y) for y in years]
    rows = sum(b["x"].shape[0] * b["x"].shape[1] for b in batches)
    cpu = torch.device("cpu")

    best = {"plain": float("inf"), "fast": float("inf")}
    diff = 0.0
    for _ in range(args.repeat):
        with torch.no_grad():
            start = time.perf_counter()
            plain = [plain_monthly_nee(net, b) for b in batches]
            best["plain"] = min(best["plain"], time.perf_counter() - start)
            start = time.perf_counter()
            member = FoldedMember(net)
            fast = [_monthly_nee(member, b, cpu) for b in batches]
            best["fast"] = min(best["fast"], time.perf_counter() - start)
        diff = max(float((p - f).abs().max()) for p, f in zip(plain, fast, strict=True))
    cells = batches[0]["x"].shape[1]
    print(f"{cells} land cells, years {years}: {rows} cell-days, best of {args.repeat}")
    for name, seconds in best.items():
        print(
            f"  {name}: {seconds:.2f} s ({seconds / len(years):.2f} s per year, "
            f"{rows / seconds / 1e6:.2f} M cell-days/s)"
        )
    print(f"  ratio plain / fast: {best['plain'] / best['fast']:.2f}x")
    print(f"  largest |difference| of monthly NEE: {diff:.3g} gC m-2 d-1")


if __name__ == "__main__":
    main()
