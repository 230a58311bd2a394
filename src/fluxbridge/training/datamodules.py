"""Data modules: tower site-days for EC, and inversion years for the ATM term of EC-ATM.

Kept apart from the LightningModules (torchgeo style). One :class:`FluxDataModule`
serves one member: the sites of one held-out fold are its validation set, the
other folds its training set. Tower days with a NaN observation or driver are
dropped before batching, so a gap never reaches the loss.

For the ATM term a sample is one **year**: the drivers at the integration cells
(the bridges' contributing cells, or every land cell of every region in
``exact`` mode) for every day, the (month, day) averaging matrix, and the
inversions' regional monthly integrals (member, region, month) in PgC month-1.
Two years (seeded) are held out for ATM validation (Upton §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import xarray as xr
from pytorch_lightning.utilities import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from fluxbridge.data.canonical import DRIVER_NAMES, CanonicalDataset, open_canonical
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.integrate import region_land_area_m2, regional_integral_pgc
from fluxbridge.models.network import BridgeIntegral, BridgeLike, ExactIntegral
from fluxbridge.plausibility import Dropped, complete_years
from fluxbridge.schema import GRAMS_PER_PETAGRAM
from fluxbridge.training.folds import SiteSplit, check_no_leakage, split_sites


class EpochBatches(Sampler[Any]):
    """Seeded, per-epoch shuffled global batches, each split evenly across DDP ranks.

    The permutation depends only on (seed, epoch), so a resumed run sees the same
    batches as an uninterrupted one. With ``batch_size`` each item is a list of
    indices: the global batch is cut into ``world_size`` equal strided shares, so N
    processes with averaged gradients see the same global batch as one process; the
    last incomplete global batch is dropped when ``drop_last``. With ``batch_size``
    None each item is one index and every rank sees all of them.
    """

    def __init__(
        self,
        n: int,
        batch_size: int | None,
        seed: int,
        *,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size is not None and batch_size % world_size:
            raise ConfigError(
                f"batch_size={batch_size} must be a multiple of the {world_size} processes "
                "so that every process gets an equal share of each global batch"
            )
        self.n, self.seed, self.shuffle, self.drop_last = n, seed, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.batch_size = batch_size
        if batch_size is not None and drop_last:
            # Fewer samples than one batch: one batch of all of them (a multiple of the ranks).
            self.batch_size = min(batch_size, n - n % world_size)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(self.n)

    def __iter__(self):  # type: ignore[no-untyped-def]
        order = self._order()
        if self.batch_size is None:
            yield from (int(i) for i in order)
            return
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            share = order[start : start + self.batch_size][self.rank :: self.world_size]
            if share.size:
                yield share.tolist()

    def __len__(self) -> int:
        if self.batch_size is None:
            return self.n
        if self.drop_last:
            return self.n // self.batch_size if self.batch_size else 0
        return -(-self.n // self.batch_size)


#: |latitude| below which a tower counts as tropical (the Tropics of Cancer and Capricorn)
TROPICS_LAT = 23.44


class SiteDays(Dataset[dict[str, Tensor]]):
    """Tower site-days: drivers x (n, driver), observed NEE y (n,) in gC m-2 d-1, and
    ``tropical`` (n,) 1.0 for a tower within ±``TROPICS_LAT``° (the EC-ATM tower offset)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, tropical: np.ndarray) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        self.tropical = torch.from_numpy(np.ascontiguousarray(tropical, dtype=np.float32))

    def __len__(self) -> int:
        return self.y.shape[0]

    def __getitem__(self, idx: list[int]) -> dict[str, Tensor]:
        return {"x": self.x[idx], "y": self.y[idx], "tropical": self.tropical[idx]}


class Years(Dataset[dict[str, Any]]):
    """ATM samples, one per year (see the module docstring for the keys)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]


@dataclass(frozen=True)
class ATMSpec:
    """What the ATM side needs: integral mode, bridges, inversion subset, held-out years.

    ``train`` is false for EC, which only scores the held-out years (``val/loss_atm``).
    """

    integral: Literal["bridge", "exact"]
    bridges: BridgeLike | None = None
    inversions: list[str] | None = None
    val_years: int = 2
    train: bool = True


class FluxDataModule(pl.LightningDataModule):
    """Site-days of one fold split, and (with ``atm``) inversion years, for one member."""

    def __init__(
        self,
        data: Path,
        held_out: int,
        *,
        batch_size: int = 10000,
        seed: int = 0,
        num_workers: int = 0,
        atm: ATMSpec | None = None,
    ) -> None:
        super().__init__()
        self.data, self.held_out = Path(data), held_out
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.atm = atm
        self._ready = False

    # -- loading ---------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        self.canonical = open_canonical(self.data, validate=False)
        self._setup_sites(self.canonical)
        if self.atm is not None:
            self._setup_atm(self.canonical, self.atm)
        self._ready = True

    def _setup_sites(self, canonical: CanonicalDataset) -> None:
        path = canonical.path("sites")
        sites = canonical.open("sites")
        x = np.stack([sites[n].values for n in DRIVER_NAMES], axis=-1)  # (site, time, driver)
        y = sites["nee_obs"].values
        valid = np.isfinite(y) & np.isfinite(x).all(axis=-1)
        observed = int(np.isfinite(y).sum())
        Dropped(
            f"tower-days with NEE in {path.name}",
            observed - int(valid.sum()),
            observed,
            "a driver is NaN there",
        ).log()
        fold = sites["fold"].values
        check_no_leakage(sites, canonical.grid_ds, path)
        self.split: SiteSplit = split_sites(fold, self.held_out, valid.sum(axis=1), path)
        train, val = self.split.train, self.split.val
        tropical = np.broadcast_to(
            (np.abs(sites["site_lat"].values) < TROPICS_LAT)[:, None], y.shape
        )
        self.train_sites = SiteDays(
            x[train][valid[train]], y[train][valid[train]], tropical[train][valid[train]]
        )
        self.val_sites = SiteDays(x[val][valid[val]], y[val][valid[val]], tropical[val][valid[val]])
        xt = self.train_sites.x.double()
        self.input_mean = xt.mean(dim=0).float()
        self.input_std = xt.std(dim=0).float()

    def _setup_atm(self, canonical: CanonicalDataset, atm: ATMSpec) -> None:
        grid = canonical.grid_ds
        abbrs = [str(a) for a in grid["region_abbr"].values]
        if atm.integral == "bridge":
            if atm.bridges is None:
                raise ConfigError("integral='bridge' needs bridge models (run `invoke bridges`)")
            self.regions = [str(r) for r in atm.bridges.regions]
            unknown = sorted(set(self.regions) - set(abbrs))
            if unknown:
                raise SchemaError(
                    canonical.path("grid"),
                    "region_abbr",
                    f"bridge regions {unknown} are not regions of this dataset ({abbrs})",
                )
        else:
            self.regions = abbrs
        order = [abbrs.index(r) for r in self.regions]
        region_fraction = grid["region_fraction"].isel(region=order)
        land_area = (grid["cell_area"] * grid["land_fraction"]).sum().item()
        self.land_weight = torch.tensor(
            region_land_area_m2(grid["cell_area"], grid["land_fraction"], region_fraction).values
            / land_area,
            dtype=torch.float32,
        )
        self._drivers = canonical.open("drivers")
        ilat, ilon = self._drivers["cell_ilat"].values, self._drivers["cell_ilon"].values
        weight = grid["cell_area"] * grid["land_fraction"] * region_fraction
        weight = weight.transpose("region", "lat", "lon").values
        # (region, cell) Pg m2 g-1 over every land cell of drivers.nc
        self.area_weight = torch.tensor(weight[:, ilat, ilon] / GRAMS_PER_PETAGRAM)
        self._targets = self._inversion_targets(canonical, grid, region_fraction, atm.inversions)
        self.years = self._common_years()
        if len(self.years) <= atm.val_years:
            raise ConfigError(
                f"{canonical.root}: {len(self.years)} complete years {self.years} in both "
                f"drivers.nc and inversions.nc; need more than the {atm.val_years} held out"
            )
        rng = np.random.default_rng(self.seed)
        self.val_years = sorted(int(y) for y in rng.choice(self.years, atm.val_years, False))
        self.train_years = [y for y in self.years if y not in self.val_years]
        if atm.integral == "bridge":
            self.cells = np.asarray(atm.bridges.all_cells, dtype=np.int64)  # type: ignore[union-attr]
        else:
            self.cells = np.flatnonzero(self.area_weight.sum(dim=0).numpy() > 0)
        self.regional = (
            BridgeIntegral(atm.bridges)  # type: ignore[arg-type]
            if atm.integral == "bridge"
            else ExactIntegral(self.area_weight[:, self.cells].float())
        )
        self.train_atm = Years([self.year_batch(y, self.cells) for y in self.train_years])
        self.val_atm = Years([self.year_batch(y, self.cells) for y in self.val_years])

    def _inversion_targets(
        self,
        canonical: CanonicalDataset,
        grid: xr.Dataset,
        region_fraction: xr.DataArray,
        subset: list[str] | None,
    ) -> xr.DataArray:
        inv = canonical.open("inversions")
        nee = inv["nee"]
        names = canonical.inversion_members()
        nee = nee.assign_coords(member=names)
        if subset is not None:
            missing = [m for m in subset if m not in names]
            if missing or not subset:
                raise ConfigError(
                    f"inversions={subset}: unknown member(s) {missing} in "
                    f"{canonical.path('inversions')}; available: {names}"
                )
            nee = nee.sel(member=list(subset))
        integral = regional_integral_pgc(
            nee, grid["cell_area"], grid["land_fraction"], region_fraction
        )
        return integral.transpose("member", "region", "time")

    def _common_years(self) -> list[int]:
        years, dropped = complete_years(
            pd.DatetimeIndex(self._drivers["time"].values),
            pd.DatetimeIndex(self._targets["time"].values),
        )
        dropped.log()
        return years

    def year_batch(self, year: int, cells: np.ndarray | None = None) -> dict[str, Any]:
        """One ATM sample: drivers of ``year`` at ``cells`` (all land cells if None)."""
        days = pd.DatetimeIndex(self._drivers["time"].values)
        in_year = np.flatnonzero(days.year == year)
        sel = self._drivers.isel(time=slice(in_year[0], in_year[-1] + 1))
        if cells is not None:
            sel = sel.isel(cell=cells)
        # filled driver by driver: at 0.5° a year of every land cell is 1.4 GB, and a stack
        # of ten loaded arrays plus a cast would hold three of those at once
        x = np.empty((sel.sizes["time"], sel.sizes["cell"], len(DRIVER_NAMES)), np.float32)
        for k, name in enumerate(DRIVER_NAMES):
            x[..., k] = sel[name].transpose("time", "cell").values
        month = days[in_year].month.to_numpy() - 1
        days_in_month = np.bincount(month, minlength=12).astype(np.float32)
        month_mean = (month[None, :] == np.arange(12)[:, None]) / days_in_month[:, None]
        months = pd.DatetimeIndex(self._targets["time"].values)
        target = self._targets.isel(time=np.flatnonzero(months.year == year)).values
        return {
            "x": torch.from_numpy(x),
            "month_mean": torch.from_numpy(month_mean.astype(np.float32)),
            "days_in_month": torch.from_numpy(days_in_month),
            "target": torch.from_numpy(target.astype(np.float32)),
            "land_weight": self.land_weight,
            "year": year,
        }

    # -- loaders ---------------------------------------------------------------------
    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, dataset: Dataset[Any], sampler: EpochBatches) -> DataLoader[Any]:
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _site_loader(self, dataset: SiteDays, train: bool) -> DataLoader[Any]:
        rank, world = self._rank()
        sampler = EpochBatches(
            len(dataset),
            self.batch_size,
            self.seed,
            shuffle=train,
            drop_last=train,
            rank=rank,
            world_size=world,
        )
        return self._loader(dataset, sampler)

    def _year_loader(self, years: Years, train: bool) -> DataLoader[Any]:
        # Every rank sees the same year: its ATM gradient is then the same on each rank.
        return self._loader(years, EpochBatches(len(years), None, self.seed + 1, shuffle=train))

    def train_dataloader(self) -> DataLoader[Any] | CombinedLoader:
        ec = self._site_loader(self.train_sites, train=True)
        if self.atm is None or not self.atm.train:
            return ec
        atm = self._year_loader(self.train_atm, train=True)
        return CombinedLoader({"ec": ec, "atm": atm}, mode="max_size_cycle")

    def val_dataloader(self) -> list[DataLoader[Any]]:
        loaders = [self._site_loader(self.val_sites, train=False)]
        if self.atm is not None:
            loaders.append(self._year_loader(self.val_atm, train=False))
        return loaders
