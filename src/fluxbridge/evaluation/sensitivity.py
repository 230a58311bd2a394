"""One-against-many inversion sensitivity (Upton §3.6, §5.1, Figs. C3–C5).

EC-ATM is retrained with its atmospheric constraint taken from a subset of the
inversion ensemble: every single inversion (zero spread), one random pair, one
random triple, ... The subset models are compared, as mean seasonal cycles
(MSC) of regional monthly NEE integrals in PgC month-1 (positive = source), with
the mean of their own inversions, with the full inversion mean and with the
full-ensemble EC-ATM.

Layout under the run directory (see docs/sensitivity.md)::

    RUN/train/ec-atm-inv-<A+B>/...        subset models (same folds, epochs, config)
    RUN/forward/EC-ATM-inv-<A+B>.nc       their forward runs
    RUN/evaluation/sensitivity.nc         msc(source, region, month), PgC month-1
    RUN/evaluation/sensitivity.json       MSC RMSEs per subset and region, PgC month-1
    RUN/report/figC3_one.png ...          one figure per subset size
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
import yaml

from fluxbridge import logs
from fluxbridge.config import to_mapping
from fluxbridge.data.canonical import (
    MONTHLY_INTEGRAL_UNITS,
    TROPICAL_REGIONS,
    CanonicalDataset,
    carbon_long_name,
)
from fluxbridge.errors import ConfigError, FluxbridgeError
from fluxbridge.evaluation import metrics
from fluxbridge.evaluation.regional import AGGREGATES, GLOBAL, integrate_field
from fluxbridge.inference.members import display_name
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.outputs import atomic_path
from fluxbridge.reporting import Figure, Section, Table
from fluxbridge.training.checkpoint import read_checkpoint
from fluxbridge.training.folds import folds_to_train
from fluxbridge.training.run import model_dir_name
from fluxbridge.training.run_config import RUN_CONFIG_FILE, TrainRunConfig

log = logs.get(__name__)

BASE_MODEL = "ec-atm"
#: Named in errors: the setup every subset model must share.
BASE_CONFIG = f"train/{BASE_MODEL}/{RUN_CONFIG_FILE}"
FULL_MODEL = display_name(BASE_MODEL)
FULL_INVERSION_MEAN = "inversion_mean"
FIGURE_NAMES = {1: "figC3_one.png", 2: "figC4_two.png", 3: "figC5_three.png"}


@dataclass(frozen=True)
class Subset:
    """Inversion members constraining one sensitivity model, in ensemble order."""

    members: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def label(self) -> str:
        return "+".join(self.members)

    def model_dir(self, integral: str) -> str:
        return model_dir_name(BASE_MODEL, integral, list(self.members))

    def model(self, integral: str) -> str:
        """Display name of the subset model, e.g. ``EC-ATM-inv-INV1+INV3``."""
        return display_name(self.model_dir(integral))

    @property
    def inversion_mean(self) -> str:
        """Source name of the subset's own inversion mean, e.g. ``inversion_mean:INV1+INV3``."""
        return f"{FULL_INVERSION_MEAN}:{self.label}"


def figure_name(size: int) -> str:
    """Figs. C3–C5 for sizes 1–3; ``figC_sensitivity_<k>.png`` for larger sizes."""
    return FIGURE_NAMES.get(size, f"figC_sensitivity_{size}.png")


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Distinct subset sizes in increasing order; refuses an empty list and sizes ≤ 0."""
    if not sizes:
        raise ConfigError("subsets=[]: give at least one subset size, e.g. 1,2,3")
    bad = [k for k in sizes if int(k) != k or k <= 0]
    if bad:
        raise ConfigError(
            f"subsets={list(sizes)}: subset size {bad[0]} is not a positive number of inversions"
        )
    return sorted({int(k) for k in sizes})


def draw_subsets(
    members: Sequence[str], sizes: Sequence[int], seed: int
) -> tuple[dict[int, list[Subset]], list[int]]:
    """The subsets to train per size, and the sizes skipped (≥ the ensemble size).

    Size 1 gives every single inversion (Fig. C3). A size k ≥ 2 gives one subset
    drawn without replacement by ``numpy.random.default_rng([seed, k])``, so the
    draw for k does not depend on which other sizes are asked for.
    """
    drawn: dict[int, list[Subset]] = {}
    skipped = []
    for k in check_sizes(sizes):
        if k >= len(members):
            skipped.append(k)
        elif k == 1:
            drawn[k] = [Subset((m,)) for m in members]
        else:
            picks = np.sort(np.random.default_rng([seed, k]).choice(len(members), k, replace=False))
            drawn[k] = [Subset(tuple(members[i] for i in picks))]
    return drawn, skipped


def base_setup(run: Path) -> TrainRunConfig:
    """The run's full-ensemble ``ec-atm`` setup; refuse a run without a trained one."""
    directory = run / "train" / BASE_MODEL
    if not (directory / RUN_CONFIG_FILE).exists() or not any(directory.glob("fold_*/best.ckpt")):
        raise FluxbridgeError(
            f"{directory}: no trained full-ensemble EC-ATM (config.yaml and fold_<k>/best.ckpt); "
            f"run `invoke train --model {BASE_MODEL} --data DATA --run {run}` first"
        )
    return TrainRunConfig.read(directory)


def subset_folds(base: TrainRunConfig, data: CanonicalDataset, max_folds: int | None) -> list[int]:
    """The base model's folds (the first ``max_folds`` of them if given)."""
    if max_folds is not None and not 1 <= max_folds <= len(base.folds):
        raise ConfigError(f"max_folds={max_folds}: choose 1..{len(base.folds)} ({BASE_CONFIG})")
    folds = base.folds[:max_folds]
    sites = data.path("sites")
    # run_train trains the first n folds of the dataset, so only a prefix can be reproduced
    prefix = folds_to_train(data.open("sites")["fold"].values, len(folds), sites)
    if prefix != folds:
        raise ConfigError(
            f"{BASE_CONFIG}: folds {folds} are not the first {len(folds)} folds {prefix} of {sites}"
        )
    return folds


def _is_complete(directory: Path, folds: Sequence[int], max_epochs: int) -> bool:
    for k in folds:
        last, best = directory / f"fold_{k}" / "last.ckpt", directory / f"fold_{k}" / "best.ckpt"
        if not (last.exists() and best.exists()):
            return False
        if int(read_checkpoint(last)["epoch"]) + 1 < max_epochs:
            return False
    return True


def _check_same_setup(directory: Path, base: TrainRunConfig, subset: Subset) -> None:
    """Refuse to extend a subset model trained with other settings than the base."""
    if not (directory / RUN_CONFIG_FILE).exists():
        return
    previous = TrainRunConfig.read(directory)
    expected = {
        "data": base.data,
        "integral": base.integral,
        "inversions": list(subset.members),
        "train": base.train,
    }
    for key, value in expected.items():
        if getattr(previous, key) != value:
            raise ConfigError(
                f"{directory / RUN_CONFIG_FILE}: {key}={getattr(previous, key)!r} differs from "
                f"{BASE_CONFIG} ({value!r}); remove {directory} to retrain it with the run's "
                "settings"
            )


def train_subset(run: Path, base: TrainRunConfig, subset: Subset, folds: list[int]) -> None:
    """Train (or finish) the subset model; nothing when it is already complete."""
    from fluxbridge.training.run import run_train

    directory = run / "train" / subset.model_dir(base.integral)
    max_epochs = base.train.max_epochs
    if _is_complete(directory, folds, max_epochs):
        log.info(f"{directory.name}: already trained, skipped")
        return
    _check_same_setup(directory, base, subset)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "train.yaml"
        config.write_text(yaml.safe_dump(to_mapping(base.train), sort_keys=False))
        run_train(
            model=BASE_MODEL,
            data=Path(base.data),
            run=run,
            folds=len(folds),
            integral=base.integral,
            inversions=list(subset.members),
            on_decoupling=base.on_decoupling,
            resume=True,  # finishes an interrupted fold; a fold without checkpoints starts fresh
            config=config,
            **asdict(base.trainer),
        )


def forward_models(run: Path, data: Path, models: Sequence[str]) -> None:
    """Forward every model whose RUN/forward/<model>.nc is missing or stale (provenance)."""
    from fluxbridge.inference.forward import run_forward

    run_forward(run, data=data, models=list(models), force=True)


def ordered_regions(regions: Sequence[str]) -> list[str]:
    """GLOBAL first, then the tropical regions, then the extratropical ones (dataset order);
    NO_REGION is left out, as no inversion subset constrains it."""
    tropical = [r for r in regions if r in TROPICAL_REGIONS]
    rest = [r for r in regions if r not in AGGREGATES and r not in TROPICAL_REGIONS]
    return [GLOBAL, *tropical, *rest]


def regional_msc(monthly: xr.DataArray) -> xr.DataArray:
    """(…, time) monthly integrals → (…, month) mean seasonal cycle, months 1..12 (units kept)."""
    msc = xr.apply_ufunc(
        metrics.mean_seasonal_cycle,
        monthly,
        kwargs={"months": monthly["time"].dt.month.values},
        input_core_dims=[["time"]],
        output_core_dims=[["month"]],
        vectorize=True,
    )
    return msc.assign_coords(month=np.arange(1, 13))


def sensitivity_msc(
    data: CanonicalDataset, forward: dict[str, Path], subsets: Sequence[Subset], integral: str
) -> xr.DataArray:
    """msc(source, region, month) in PgC month-1 of subset models, their inversion means, the
    full-ensemble EC-ATM and the full inversion mean, over the months they share."""
    inv = data.open("inversions")["nee"].assign_coords(member=data.inversion_members())
    inversions = integrate_field(inv, data)
    everyone = Subset(tuple(str(m) for m in inversions["member"].values))
    sources: list[tuple[str, Subset, xr.DataArray]] = []  # (name, its inversions, series)
    for subset, model in [*((s, s.model(integral)) for s in subsets), (everyone, FULL_MODEL)]:
        with xr.open_dataset(forward[model], engine=ENGINE) as ds:
            sources.append((model, subset, integrate_field(ds["nee_mean"], data)))
        mean = inversions.sel(member=list(subset.members)).mean("member")
        name = FULL_INVERSION_MEAN if subset is everyone else subset.inversion_mean
        sources.append((name, subset, mean))
    names = [name for name, _, _ in sources]
    aligned = xr.align(*(series for _, _, series in sources), join="inner")
    if aligned[0].sizes["time"] == 0:
        raise FluxbridgeError(
            f"{data.path('inversions')} and the forward runs {sorted(map(str, forward.values()))} "
            "share no month; the MSC needs common months"
        )
    monthly = xr.concat(aligned, dim="source").assign_coords(source=names)
    msc = regional_msc(monthly.drop_vars("member", errors="ignore"))
    msc = msc.sel(region=ordered_regions([str(r) for r in msc["region"].values]))
    msc = msc.assign_coords(
        n_inversions=("source", [subset.size for _, subset, _ in sources]),
        subset=("source", ["all" if sub is everyone else sub.label for _, sub, _ in sources]),
        kind=("source", ["model" if n in forward else FULL_INVERSION_MEAN for n in names]),
    )
    msc = msc.transpose("source", "region", "month").astype(np.float64)
    msc.name = "msc"
    msc.attrs = {
        "units": MONTHLY_INTEGRAL_UNITS,
        "long_name": carbon_long_name(
            "mean seasonal cycle of regional calendar-month totals of NEE (positive = source)"
        ),
        # CF's "within months ... over years" needs a climatological time axis; this one
        # is a plain month dimension, so the method names it.
        "cell_methods": "area: sum month: mean (comment: over years of calendar-month totals)",
    }
    msc["n_inversions"].attrs = {"long_name": "number of inversions constraining the source"}
    msc["subset"].attrs = {"long_name": "inversion members of the source, joined by '+'"}
    msc["kind"].attrs = {"long_name": "model (EC-ATM forward run) or inversion_mean"}
    return msc


def _json_float(x: float) -> float | None:
    return None if not np.isfinite(x) else float(f"{x:.6g}")


def subset_scores(
    msc: xr.DataArray, subsets: Sequence[Subset], integral: str
) -> dict[str, dict[str, Any]]:
    """Per subset and region: MSC RMSE (PgC month-1) of the subset model against its own
    inversion mean, the full inversion mean and the full-ensemble EC-ATM."""
    out: dict[str, dict[str, Any]] = {}
    for subset in subsets:
        model = msc.sel(source=subset.model(integral))
        refs = {
            "msc_rmse_vs_subset_inversion_mean_pgc_month": subset.inversion_mean,
            "msc_rmse_vs_full_inversion_mean_pgc_month": FULL_INVERSION_MEAN,
            "msc_rmse_vs_full_ec_atm_pgc_month": FULL_MODEL,
        }
        out[subset.label] = {
            "size": subset.size,
            "members": list(subset.members),
            "model": subset.model(integral),
            "regions": {
                str(r): {
                    key: _json_float(
                        metrics.rmse(model.sel(region=r).values, msc.sel(source=ref, region=r))
                    )
                    for key, ref in refs.items()
                }
                for r in msc["region"].values
            },
        }
    return out


def plot_size(msc: xr.DataArray, subsets: Sequence[Subset], integral: str, path: Path) -> Path:
    """Figs. C3–C5: MSC per region; solid = EC-ATM on the subset, dotted = the subset's mean."""
    regions = [str(r) for r in msc["region"].values]
    ncol = 5
    nrow = int(np.ceil(len(regions) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False)
    colours = plt.get_cmap("tab10")
    x = msc["month"].values
    for ax, region in zip(axes.ravel(), regions, strict=False):
        for i, subset in enumerate(subsets):
            colour = colours(i % 10)
            ax.plot(x, msc.sel(source=subset.model(integral), region=region), color=colour)
            ax.plot(x, msc.sel(source=subset.inversion_mean, region=region), ":", color=colour)
        ax.set_title(region, fontsize=9)
        ax.set_xticks([1, 4, 7, 10])
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(regions) :]:
        ax.axis("off")
    handles = [
        plt.Line2D([], [], color=colours(i % 10), label=s.label) for i, s in enumerate(subsets)
    ]
    handles += [
        plt.Line2D([], [], color="grey", label="EC-ATM on the subset"),
        plt.Line2D([], [], color="grey", ls=":", label="subset inversion mean"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    size = subsets[0].size
    fig.suptitle(f"One-against-many: EC-ATM constrained by {size} inversion(s); x = month")
    fig.supylabel(f"NEE ({MONTHLY_INTEGRAL_UNITS})")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def run_sensitivity(run: Path, subsets: list[int], seed: int, max_folds: int | None = None) -> int:
    """Entry point of `invoke sensitivity`; ``max_folds`` caps the folds (tests), else all of
    the base model's. Returns 0."""
    run = Path(run)
    check_sizes(subsets)
    base = base_setup(run)
    data = CanonicalDataset(Path(base.data))
    members = data.inversion_members()
    folds = subset_folds(base, data, max_folds)
    drawn, skipped = draw_subsets(members, subsets, seed)
    for k in skipped:
        log.info(
            f"subset size {k} skipped: the ensemble has {len(members)} inversions, and a subset "
            f"must be smaller (the full ensemble is {BASE_MODEL} itself)"
        )
    if not drawn:
        raise ConfigError(
            f"subsets={subsets}: every size is ≥ the {len(members)} inversions of "
            f"{data.path('inversions')}; choose sizes 1..{len(members) - 1}"
        )
    chosen = [s for group in drawn.values() for s in group]
    for subset in chosen:
        train_subset(run, base, subset, folds)
    models = [FULL_MODEL, *(s.model(base.integral) for s in chosen)]
    forward_models(run, Path(base.data), models)
    msc = sensitivity_msc(
        data, {m: run / "forward" / f"{m}.nc" for m in models}, chosen, base.integral
    )
    eval_dir = run / "evaluation"
    ds = msc.to_dataset()
    ds.attrs = {"title": "one-against-many inversion sensitivity (Upton §3.6)", "seed": seed}
    write_netcdf(ds, eval_dir / "sensitivity.nc", action="sensitivity MSC", overwrite=True)
    figures = {
        k: plot_size(msc, group, base.integral, run / "report" / figure_name(k)).name
        for k, group in drawn.items()
    }
    full = msc.sel(source=FULL_MODEL)
    summary = {
        "seed": seed,
        "units": MONTHLY_INTEGRAL_UNITS,
        "inversions": members,
        "folds": folds,
        "max_epochs": base.train.max_epochs,
        "sizes": sorted(drawn),
        "skipped_sizes": skipped,
        "figures": {str(k): name for k, name in figures.items()},
        "subsets": subset_scores(msc, chosen, base.integral),
        "full": {
            FULL_MODEL: {
                str(r): {
                    "msc_rmse_vs_full_inversion_mean_pgc_month": _json_float(
                        metrics.rmse(
                            full.sel(region=r).values,
                            msc.sel(source=FULL_INVERSION_MEAN, region=r).values,
                        )
                    )
                }
                for r in msc["region"].values
            }
        },
    }
    with atomic_path(eval_dir / "sensitivity.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    log.info(f"wrote {eval_dir / 'sensitivity.nc'}, {eval_dir / 'sensitivity.json'} and figures")
    return 0


def _region_mean(
    regions: dict[str, dict[str, float | None]], names: list[str], key: str
) -> float | None:
    values = [regions[r][key] for r in names if regions[r][key] is not None]
    return float(np.mean(values)) if values else None


def sensitivity_section(run: Path) -> Section | None:
    """Report section of RUN/evaluation/sensitivity.json and its figures; None if not run."""
    path = Path(run) / "evaluation" / "sensitivity.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    keys = [
        ("msc_rmse_vs_subset_inversion_mean_pgc_month", "own inv. mean"),
        ("msc_rmse_vs_full_inversion_mean_pgc_month", "all-inv. mean"),
        ("msc_rmse_vs_full_ec_atm_pgc_month", "EC-ATM"),
    ]
    rows = []
    for label, entry in summary["subsets"].items():
        regions = entry["regions"]
        groups = {
            GLOBAL: [GLOBAL],
            "tropics": [r for r in regions if r in TROPICAL_REGIONS],
            "extratropics": [r for r in regions if r != GLOBAL and r not in TROPICAL_REGIONS],
        }
        rows.append(
            [
                label,
                entry["size"],
                *[_region_mean(regions, names, k) for names in groups.values() for k, _ in keys],
            ]
        )
    header = [
        "subset",
        "k",
        *[
            f"{group} vs {name}"
            for group in (GLOBAL, "tropics", "extratropics")
            for _, name in keys
        ],
    ]
    report = Path(run) / "report"
    figures = [
        Figure(
            report / name,
            f"MSC per region ({MONTHLY_INTEGRAL_UNITS}) of EC-ATM trained on {k} inversion(s): "
            "solid = the model, dotted = the mean of its inversions.",
        )
        for k, name in summary["figures"].items()
        if (report / name).exists()
    ]
    skipped = summary["skipped_sizes"]
    return Section(
        "One-against-many inversion sensitivity (Upton §3.6, Figs. C3–C5)",
        [
            f"EC-ATM retrained on subsets of the {len(summary['inversions'])} inversions "
            f"({', '.join(summary['inversions'])}): every single inversion, and one random subset "
            f"per larger size (seed {summary['seed']}); folds {summary['folds']}, "
            f"{summary['max_epochs']} epochs."
            + (f" Sizes {skipped} skipped (not smaller than the ensemble)." if skipped else ""),
        ],
        [
            Table(
                header,
                rows,
                f"MSC RMSE ({MONTHLY_INTEGRAL_UNITS}) of each subset model against its own "
                "inversion mean, the full inversion mean and the full-ensemble EC-ATM; tropics "
                f"and extratropics = mean over their regions ({', '.join(TROPICAL_REGIONS)} are "
                "tropical).",
            )
        ],
        figures,
    )
