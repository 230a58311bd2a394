"""GPU check (issue 14, item 6): the three steps that a GPU should speed up, GPU vs CPU.

Synthetic inputs of the real shapes on a 0.5° world held in memory (no dataset):
``LAND_CELLS`` land cells with their true cell areas on the sphere, 18 regions.

1. **exact ATM step**: the EC-ATM atmospheric term with the exact integral, as
   ``train --integral exact`` runs it: one ATM batch (one year: 365 days × every
   land cell × 10 drivers) → network → monthly means (Eq. 6) → regional integrals
   over every land cell → ℓ3 loss against 5 inversion members → backward;
2. **forward throughput**: 10 folded members (the forward run's fast path) over a
   block of cell-days, in member cell-days per second (cell-days × members / s);
3. **training step**: one EC-ATM step of the default setup (bridge integral): an EC
   batch of 10 000 site-days plus one ATM year at 180 bridge cells, uncertainty
   weighting, backward and Adam.

Each is timed on the CPU and, when CUDA is there, on the GPU in the same run; the
ratio is CPU time / GPU time. The CPU side of step 1 at full size takes about a
minute per step on 2 cores, so it is measured on ``CPU_FRACTION`` of the cells and
scaled linearly (the network and the integral are linear in the cell count; the
output says so). Without CUDA the script prints "no CUDA device: GPU timings skipped",
runs the CPU measurements at ``GPU_CHECK_SCALE`` (default 0.05 there) and exits 0.

Environment: ``GPU_CHECK_SCALE`` (fraction of the 0.5° land cells, default 1 with
CUDA), ``GPU_CHECK_REPEATS`` (timed repeats after one warm-up, default 5).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from fluxbridge.geo.grid import Grid
from fluxbridge.inference.fast import FoldedMember
from fluxbridge.models import losses
from fluxbridge.models.modules import ECATMModule
from fluxbridge.models.network import BridgeIntegral, ExactIntegral, NEENetwork

LAND_CELLS = 67_000  # land cells of the 0.5° twin world (docs/canonical_dataset.md)
N_REGIONS = 18
N_MEMBERS_ATM = 5  # inversion members in the ATM target
BRIDGE_CELLS = 180  # ~10 contributing cells per RECCAP2 region
EC_BATCH = 10_000  # the default EC batch (site-days)
FORWARD_MEMBERS = 10
FORWARD_BLOCK = (365, 4096)  # (days, cells): the forward run's default cell block over a year
CPU_FRACTION = 1 / 8  # of the cells, for the CPU side of the exact step at full size
MONTH_LENGTHS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def synthetic_world(n_cells: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(region, cell) exact-integral weights (Pg m² g-1 … as ExactIntegral wants) and the
    cells' areas: the first ``n_cells`` cells of a 0.5° grid between 60° S and 75° N,
    each in one of 18 regions, land fraction 1."""
    rng = np.random.default_rng(seed)
    grid = Grid.global_regular(0.5)
    area = grid.cell_area().values  # m², on the sphere
    lat = grid.coords()["lat"].values
    band = np.nonzero((lat > -60) & (lat < 75))[0]
    cells = area[band].ravel()
    if n_cells > cells.size:
        raise SystemExit(f"n_cells={n_cells} > {cells.size} cells in the band")
    pick = np.sort(rng.choice(cells.size, n_cells, replace=False))
    region = rng.integers(0, N_REGIONS, n_cells)
    weight = np.zeros((N_REGIONS, n_cells), dtype=np.float32)
    weight[region, np.arange(n_cells)] = cells[pick] * 1e-15
    return torch.from_numpy(weight), torch.from_numpy(cells[pick].astype(np.float32))


def atm_year(n_cells: int, seed: int = 1) -> dict[str, object]:
    """One ATM batch (a year) as the data module builds it, random drivers."""
    rng = np.random.default_rng(seed)
    month = np.repeat(np.arange(12), MONTH_LENGTHS)
    days = np.asarray(MONTH_LENGTHS, dtype=np.float32)
    return {
        "x": torch.from_numpy(rng.normal(size=(365, n_cells, 10)).astype(np.float32)),
        "month_mean": torch.from_numpy(
            ((month[None] == np.arange(12)[:, None]) / days[:, None]).astype(np.float32)
        ),
        "days_in_month": torch.from_numpy(days),
        "target": torch.from_numpy(
            rng.normal(0, 0.05, size=(N_MEMBERS_ATM, N_REGIONS, 12)).astype(np.float32)
        ),
        "land_weight": torch.full((N_REGIONS,), 1.0 / N_REGIONS),
        "year": 2001,
    }


def to(batch: dict[str, object], device: torch.device) -> dict[str, object]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def timed(step: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median seconds of ``step`` over ``repeats`` runs after one warm-up."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class FixedBridges:
    """Bridges of fixed random weights at BRIDGE_CELLS cells: what BridgeIntegral needs."""

    def __init__(self, device: torch.device, seed: int = 2) -> None:
        g = torch.Generator().manual_seed(seed)
        self.regions = [f"R{r}" for r in range(N_REGIONS)]
        self.weight = (torch.rand(N_REGIONS, BRIDGE_CELLS, generator=g) * 1e-4).to(device)

    def apply_cells(self, nee_cells: torch.Tensor, days_in_month: torch.Tensor) -> torch.Tensor:
        """(month, cell) gC m-2 d-1 → (month, region) PgC month-1."""
        return (nee_cells @ self.weight.T) * days_in_month[:, None]


def exact_step(n_cells: int, device: torch.device, repeats: int) -> float:
    torch.manual_seed(0)
    weight, _ = synthetic_world(n_cells)
    module = ECATMModule(NEENetwork(), regional=ExactIntegral(weight)).to(device)
    batch = to(atm_year(n_cells), device)

    def step() -> None:
        module.zero_grad(set_to_none=True)
        module.atm_term(batch).backward()

    return timed(step, device, repeats)


def forward_throughput(device: torch.device, repeats: int, cells: int) -> float:
    """Member cell-days per second: 10 members each over ``days × cells`` cell-days."""
    rng = np.random.default_rng(3)
    members = []
    for k in range(FORWARD_MEMBERS):
        torch.manual_seed(k)
        members.append(FoldedMember(NEENetwork().to(device)))
    days = FORWARD_BLOCK[0]
    x = torch.from_numpy(rng.normal(size=(days * cells, 10)).astype(np.float32)).to(device)

    def step() -> None:
        with torch.inference_mode():
            for member in members:
                member(x)

    seconds = timed(step, device, repeats)
    return days * cells * FORWARD_MEMBERS / seconds


def training_step(device: torch.device, repeats: int) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    bridges = FixedBridges(device)
    module = ECATMModule(NEENetwork(), regional=BridgeIntegral(bridges)).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.003)
    ec = {
        "x": torch.from_numpy(rng.normal(size=(EC_BATCH, 10)).astype(np.float32)).to(device),
        "y": torch.from_numpy(rng.normal(size=EC_BATCH).astype(np.float32)).to(device),
        "tropical": torch.zeros(EC_BATCH, device=device),
    }
    atm = to(atm_year(BRIDGE_CELLS), device)

    def step() -> None:
        loss_ec = module.ec_term(ec)
        loss_atm = module.atm_term(atm)
        total, _ = losses.uncertainty_weighted(torch.stack([loss_ec, loss_atm]), module.log_var)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    return timed(step, device, repeats)


def main() -> int:
    cuda = torch.cuda.is_available()
    scale = float(os.environ.get("GPU_CHECK_SCALE", "1" if cuda else "0.05"))
    repeats = int(os.environ.get("GPU_CHECK_REPEATS", "5"))
    if not 0 < scale <= 1 or repeats < 1:
        raise SystemExit(
            f"GPU_CHECK_SCALE={scale} must be in (0, 1], GPU_CHECK_REPEATS={repeats} >= 1"
        )
    n_cells = max(1, round(LAND_CELLS * scale))
    cpu = torch.device("cpu")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"{n_cells} land cells ({scale:g} × the 0.5° world), {repeats} timed repeats"
    )
    if not cuda:
        print("no CUDA device: GPU timings skipped")
    gpu = torch.device("cuda") if cuda else None
    if gpu is not None:
        print(f"GPU: {torch.cuda.get_device_name(gpu)}")

    # 1. the exact-integral ATM step
    cpu_cells = n_cells if not cuda else max(1, round(n_cells * CPU_FRACTION))
    t_cpu = exact_step(cpu_cells, cpu, max(1, repeats // 2 if cuda else repeats))
    t_cpu_full = t_cpu * n_cells / cpu_cells
    how = "" if cpu_cells == n_cells else f" (measured on {cpu_cells} cells, scaled linearly)"
    line = f"exact ATM step, one year × {n_cells} cells: CPU {t_cpu_full * 1e3:.1f} ms{how}"
    if gpu is not None:
        t_gpu = exact_step(n_cells, gpu, repeats)
        peak = torch.cuda.max_memory_allocated(gpu) / 2**30
        line += (
            f"; GPU {t_gpu * 1e3:.1f} ms (peak {peak:.1f} GiB); ratio CPU/GPU "
            f"{t_cpu_full / t_gpu:.1f}× (goal: GPU <= 50 ms at 0.5°)"
        )
    print(line, flush=True)

    # 2. forward throughput
    block_cells = max(1, min(FORWARD_BLOCK[1], n_cells))
    f_cpu = forward_throughput(cpu, repeats, block_cells)
    line = (
        f"forward, {FORWARD_MEMBERS} members × {FORWARD_BLOCK[0]} days × {block_cells} cells: "
        f"CPU {f_cpu:.3g} member cell-days/s"
    )
    if gpu is not None:
        # a whole year of every land cell at once: the GPU needs large blocks to fill up
        f_gpu = forward_throughput(gpu, repeats, n_cells)
        line += f"; GPU {f_gpu:.3g} (block of {n_cells} cells); ratio GPU/CPU {f_gpu / f_cpu:.1f}×"
    print(line, flush=True)

    # 3. the training step (bridge integral, the default)
    s_cpu = training_step(cpu, repeats)
    line = (
        f"training step (EC batch {EC_BATCH} + ATM year at {BRIDGE_CELLS} bridge cells, Adam): "
        f"CPU {s_cpu * 1e3:.1f} ms"
    )
    if gpu is not None:
        s_gpu = training_step(gpu, repeats)
        line += f"; GPU {s_gpu * 1e3:.1f} ms; ratio CPU/GPU {s_cpu / s_gpu:.1f}×"
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
