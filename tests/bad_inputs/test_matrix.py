"""The bad-input matrix: hostile inputs through the real ``fluxbridge`` command (issue 13).

Each case is data (:class:`~tests.bad_inputs.harness.Case`): an id, the command
line, a setup that builds the case folder (copies of the session's tiny world
and run where the case changes them), the exit code, a regex the one ``error:``
line must match, and the files the command may add or change. The harness
asserts the code, the single error line, no traceback, and that nothing else in
the folder was added, changed or removed. docs/run_layout.md ("Bad input") says
how to add a case.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr

from tests.bad_inputs import setups as s
from tests.bad_inputs.harness import Case, Inputs, Setup, run_case

# Paths every train/forward/evaluate case may write: its log and stage locks (harness.LOGS).
TRAIN = "train --model ec --data world --run r --folds 1 --max-epochs 1"


def case(
    id: str,
    argv: str,
    message: str | None,
    setup: Setup | None = None,
    *,
    code: int = 2,
    allowed: tuple[str, ...] = (),
    output: str | None = None,
    note: str = "",
    marks: tuple[Any, ...] = (),
) -> Case:
    return Case(id, tuple(shlex.split(argv)), setup, code, message, allowed, output, note, marks)


def cfg(rel: str, body: str) -> Setup:
    return s.text(rel, body)


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")

# --------------------------------------------------------------------------- CLI options
CLI = [
    case(
        "cli-unknown-task",
        "nosuchtask",
        None,
        code=1,
        output="No idea what 'nosuchtask' is",
        note="invoke's parser: exit 1 and its own message",
    ),
    case(
        "cli-train-max-epochs-abc",
        f"{TRAIN.replace('--max-epochs 1', '--max-epochs abc')}",
        r"--max-epochs 'abc': expected an integer",
    ),
    case(
        "cli-train-max-epochs-float",
        "train --model ec --data w --run r --max-epochs 1.5",
        r"--max-epochs '1.5': expected an integer",
    ),
    case(
        "cli-train-max-epochs-negative",
        "train --model ec --data w --run r --max-epochs -1",
        r"max_epochs=-1 must be >= 1",
    ),
    case(
        "cli-train-max-epochs-zero",
        "train --model ec --data w --run r --max-epochs 0",
        r"max_epochs=0 must be >= 1",
    ),
    case(
        "cli-train-folds-abc",
        "train --model ec --data w --run r --folds abc",
        r"--folds 'abc': expected an integer",
    ),
    case(
        "cli-train-folds-zero",
        "train --model ec --data world --run r --folds 0",
        r"folds.*0",
        s.world(),
    ),
    case(
        "cli-train-folds-negative",
        "train --model ec --data world --run r --folds -2",
        r"folds.*-2",
        s.world(),
    ),
    case(
        "cli-train-folds-too-many",
        "train --model ec --data world --run r --folds 99",
        r"folds.*99",
        s.world(),
    ),
    case(
        "cli-train-unknown-model",
        "train --model foo --data w --run r",
        r"model='foo' is not one of \['ec', 'ec-atm'\]",
    ),
    case(
        "cli-train-unknown-integral",
        "train --model ec-atm --data w --run r --integral fast",
        r"integral='fast' is not one of",
    ),
    case(
        "cli-train-unknown-on-decoupling",
        "train --model ec --data w --run r --on-decoupling x",
        r"on_decoupling='x' is not one of",
    ),
    case(
        "cli-train-accelerator-gpu-no-cuda",
        "train --model ec --data w --run r --accelerator gpu",
        r"accelerator='gpu': no CUDA device",
        marks=(NO_CUDA,),
    ),
    case(
        "cli-train-accelerator-cuda-no-cuda",
        "train --model ec --data w --run r --accelerator cuda",
        r"accelerator='cuda': no CUDA device",
        marks=(NO_CUDA,),
    ),
    case(
        "cli-train-accelerator-unknown",
        f"{TRAIN} --accelerator tpu2",
        r"accelerator.*tpu2",
        s.world(),
        allowed=("r/**",),
    ),
    case(
        "cli-train-num-nodes-zero",
        "train --model ec --data w --run r --num-nodes 0",
        r"num_nodes=0 must be >= 1",
    ),
    case(
        "cli-train-num-nodes-abc",
        "train --model ec --data w --run r --num-nodes abc",
        r"--num-nodes 'abc': expected an integer",
    ),
    case("cli-train-data-missing", "train --model ec --data nowhere --run r", r"nowhere"),
    case(
        "cli-train-data-is-file",
        "train --model ec --data f.txt --run r",
        r"f\.txt",
        cfg("f.txt", "not a dataset\n"),
    ),
    case(
        "cli-train-config-missing",
        "train --model ec --data w --run r --config none.yaml",
        r"none\.yaml",
    ),
    case(
        "cli-train-unknown-inversion",
        "train --model ec-atm --integral exact --data world --run r --inversions NOPE",
        r"NOPE",
        s.world(),
    ),
    case(
        "cli-train-ec-atm-without-bridges",
        "train --model ec-atm --data world --run r",
        r"r/bridges\.nc not found",
        s.world(),
    ),
    case("cli-forward-run-missing", "forward --run nowhere", r"nowhere"),
    case(
        "cli-forward-unknown-model",
        "forward --run run --data run/data --model FOO",
        r"FOO",
        s.run(),
    ),
    case(
        "cli-forward-dask-unreachable",
        "forward --run run --data run/data --dask tcp://127.0.0.1:1",
        r"tcp://127\.0\.0\.1:1",
        s.chain(s.run(), s.remove("run/forward/EC.nc")),
    ),
    case(
        "cli-forward-dask-malformed",
        "forward --run run --data run/data --dask 'not a host'",
        r"--dask 'not a host'|not a host",
        s.chain(s.run(), s.remove("run/forward/EC.nc")),
    ),
    case("cli-evaluate-run-missing", "evaluate --run nowhere", r"nowhere"),
    case(
        "cli-evaluate-dask-unreachable",
        "evaluate --run run --dask tcp://127.0.0.1:1",
        r"tcp://127\.0\.0\.1:1",
        s.run(),
    ),
    case("cli-evaluate-dask-malformed", "evaluate --run run --dask ::::", r"::::", s.run()),
    case(
        "cli-bridges-dask-malformed", "bridges --data world --run r --dask 'x y'", r"x y", s.world()
    ),
    case(
        "cli-bridges-dask-unreachable",
        "bridges --data world --run r --dask tcp://127.0.0.1:1",
        r"tcp://127\.0\.0\.1:1",
        s.world(),
    ),
    case("cli-bridges-data-missing", "bridges --data nowhere --run r", r"nowhere"),
    case(
        "cli-bridges-config-missing",
        "bridges --data world --run r --config none.yaml",
        r"none\.yaml",
        s.world(),
    ),
    case(
        "cli-sensitivity-subsets-abc",
        "sensitivity --run run --subsets a,b",
        r"subsets.*'a'",
        s.run(),
    ),
    case(
        "cli-sensitivity-subsets-zero", "sensitivity --run run --subsets 0", r"subsets.*0", s.run()
    ),
    case("cli-sensitivity-subsets-too-many", "sensitivity --run run --subsets 99", r"99", s.run()),
    case("cli-sensitivity-run-missing", "sensitivity --run nowhere", r"nowhere"),
    case(
        "cli-sensitivity-seed-abc",
        "sensitivity --run run --seed abc",
        r"--seed 'abc': expected an integer",
        s.run(),
    ),
    case("cli-export-unknown-format", "export --run run --format csv", r"csv", s.run()),
    case("cli-export-run-missing", "export --run nowhere", r"nowhere"),
    case(
        "cli-twin-unknown-scenario",
        "twin --scenario configs/twin/none.yaml --out w",
        r"configs/twin/none\.yaml",
    ),
    case("cli-twin-scenario-is-folder", "twin --scenario sc --out w", r"sc", s.mkdir("sc")),
    case(
        "cli-demo-unknown-scenario",
        "demo --scenario none.yaml --out d",
        r"none\.yaml",
        allowed=("d/fluxbridge.log",),
    ),
    case(
        "cli-integrate-input-missing",
        "integrate --input none.nc --variable nee --out o.nc",
        r"none\.nc",
    ),
    case(
        "cli-integrate-unknown-variable",
        "integrate --input world/reference.nc --variable gpp --out o.nc",
        r"world/reference\.nc.*'gpp'",
        s.world(),
    ),
    case(
        "cli-integrate-unknown-regions",
        "integrate --input world/reference.nc --variable nee --regions mars --out o.nc",
        r"mars",
        s.world(),
    ),
    case(
        "cli-integrate-not-netcdf",
        "integrate --input x.nc --variable nee --out o.nc",
        r"x\.nc",
        cfg("x.nc", "plain text\n"),
    ),
    case(
        "cli-integrate-out-exists",
        "integrate --input world/reference.nc --variable nee --out o.nc",
        r"o\.nc exists",
        s.chain(s.world(), cfg("o.nc", "mine\n")),
    ),
    case(
        "cli-scorecard-unknown-scenario",
        "scorecard --scenarios none.yaml --out sc",
        r"none\.yaml",
        allowed=("sc/fluxbridge.log",),
    ),
    case(
        "cli-scorecard-exact-folds-negative",
        "scorecard --scenarios configs/twin/tiny.yaml --out sc --exact-folds -1",
        r"exact_folds.*-1",
        allowed=("sc/fluxbridge.log",),
    ),
    case("cli-analyze-config-missing", "analyze --config none.yaml", r"none\.yaml"),
    case("cli-prepare-config-missing", "prepare --config none.yaml --out ds", r"none\.yaml"),
    case("cli-sites-folder-missing", "sites --fluxnet nowhere --out s.nc", r"nowhere"),
    case("cli-sites-empty-folder", "sites --fluxnet flux --out s.nc", r"flux", s.mkdir("flux")),
    case("cli-fetch-manifest-missing", "fetch --manifest none.yaml", r"none\.yaml"),
]

# --------------------------------------------------------------------------- config files
TWIN = "twin --scenario sc.yaml --out w"


def scenario(id: str, body: str, message: str) -> Case:
    """A twin scenario ``sc.yaml`` (the tiny one with ``body`` appended / replaced)."""
    return case(f"twin-{id}", TWIN, message, cfg("sc.yaml", body))


TINY = "seed: 0\nresolution_deg: 10.0\nyears: [2003, 2005]\ngeography: synthetic\n"
SCENARIOS = [
    scenario("unknown-key", TINY + "colour: blue\n", r"sc\.yaml.*colour"),
    scenario(
        "nested-unknown-key", TINY + "sites: {count: 40, colour: 1}\n", r"sc\.yaml.*sites.*colour"
    ),
    scenario("seed-string", TINY.replace("seed: 0", "seed: abc"), r"sc\.yaml.*seed"),
    scenario("seed-negative", TINY.replace("seed: 0", "seed: -1"), r"sc\.yaml.*seed.*-1"),
    scenario("resolution-negative", TINY.replace("10.0", "-10.0"), r"resolution_deg.*-10"),
    scenario("resolution-zero", TINY.replace("10.0", "0.0"), r"resolution_deg.*0"),
    scenario(
        "resolution-not-dividing",
        TINY.replace("10.0", "7.0"),
        r"7\.0° × 7\.0° does not tile the globe",
    ),
    scenario("years-reversed", TINY.replace("[2003, 2005]", "[2005, 2003]"), r"years.*2005"),
    scenario(
        "years-string",
        TINY.replace("[2003, 2005]", "recent"),
        r"sc\.yaml\.years: expected a list, got str",
    ),
    scenario("geography-unknown", TINY.replace("synthetic", "atlantis"), r"geography.*atlantis"),
    scenario("sites-count-zero", TINY + "sites: {count: 0}\n", r"count=0"),
    scenario("sites-folds-one", TINY + "sites: {count: 40, folds: 1}\n", r"folds=1"),
    scenario("sites-folds-too-many", TINY + "sites: {count: 4, folds: 9}\n", r"folds=9"),
    scenario(
        "sites-record-years-zero", TINY + "sites: {record_years_min: 0}\n", r"record_years_min=0"
    ),
    scenario("sites-density-negative", TINY + "sites: {density: {NA: -1}}\n", r"density"),
    scenario("inversions-members-zero", TINY + "inversions: {members: 0}\n", r"members=0"),
    scenario("inversions-members-string", TINY + "inversions: {members: many}\n", r"members.*many"),
    scenario(
        "drought-year-outside", TINY + "drought: {year: 1990, region: CHN}\n", r"drought.year=1990"
    ),
    scenario(
        "drought-months-13",
        TINY + "drought: {year: 2004, region: CHN, months: [6, 13]}\n",
        r"months",
    ),
    scenario("yaml-syntax", TINY + "sites: {count: [\n", r"sc\.yaml"),
    scenario("empty-file", "", r"sc\.yaml"),
    scenario("top-level-list", "- 1\n- 2\n", r"sc\.yaml"),
    scenario(
        "tower-bias-string", TINY + "tower_bias: {tropics_gc_m2_d: lots}\n", r"tropics_gc_m2_d"
    ),
    scenario("products-negative", TINY + "products: {satellite: -1}\n", r"satellite.*-1"),
]

TRAIN_CFG = "train --model ec --data world --run r --folds 1 --config t.yaml"


def train_cfg(id: str, body: str, message: str) -> Case:
    return case(f"train-config-{id}", TRAIN_CFG, message, s.chain(s.world(), cfg("t.yaml", body)))


TRAIN_CONFIGS = [
    train_cfg("unknown-key", "epochs: 3\n", r"t\.yaml.*epochs"),
    train_cfg("latent-zero", "latent: 0\n", r"latent=0 must be >= 1"),
    train_cfg("latent-string", "latent: big\n", r"t\.yaml.*latent"),
    train_cfg("lr-negative", "lr: -0.01\n", r"lr=-0.01 must be > 0"),
    train_cfg("lr-zero", "lr: 0\n", r"lr=0.* must be > 0"),
    train_cfg("lr-string", "lr: fast\n", r"t\.yaml.*lr"),
    train_cfg("lr-nan", "lr: .nan\n", r"lr=nan"),
    train_cfg("batch-size-zero", "batch_size: 0\n", r"batch_size=0 must be >= 1"),
    train_cfg("batch-size-float", "batch_size: 10.5\n", r"t\.yaml.*batch_size"),
    train_cfg("max-epochs-zero", "max_epochs: 0\n", r"max_epochs=0 must be >= 1"),
    train_cfg("max-epochs-negative", "max_epochs: -1\n", r"max_epochs=-1 must be >= 1"),
    train_cfg("num-workers-negative", "num_workers: -1\n", r"num_workers=-1 must be >= 0"),
    train_cfg("seed-negative", "seed: -1\n", r"seed=-1"),
    train_cfg("seed-string", "seed: x\n", r"t\.yaml.*seed"),
    train_cfg("atm-val-years-negative", "atm_val_years: -1\n", r"atm_val_years=-1"),
    train_cfg("selection-unknown", "selection: best\n", r"selection='best' is not one of"),
    train_cfg("selection-weights-one", "selection_weights: [1.0]\n", r"selection_weights"),
    train_cfg(
        "selection-weights-negative", "selection_weights: [1.0, -1.0]\n", r"selection_weights"
    ),
    train_cfg("decoupling-min-corr-2", "decoupling_min_corr: 2\n", r"decoupling_min_corr=2"),
    train_cfg("uncertainty-lr-scale-zero", "uncertainty_lr_scale: 0\n", r"uncertainty_lr_scale=0"),
    train_cfg(
        "tower-offset-lr-scale-negative", "tower_offset_lr_scale: -1\n", r"tower_offset_lr_scale=-1"
    ),
    train_cfg("progress-bar-string", "progress_bar: maybe\n", r"t\.yaml.*progress_bar"),
    train_cfg("top-level-list", "- 1\n", r"t\.yaml"),
    train_cfg("yaml-syntax", "lr: [\n", r"t\.yaml"),
]

BRIDGES_CFG = "bridges --data world --run r --config b.yaml"


def bridge_cfg(id: str, body: str, message: str) -> Case:
    return case(
        f"bridges-config-{id}", BRIDGES_CFG, message, s.chain(s.world(), cfg("b.yaml", body))
    )


BRIDGE_CONFIGS = [
    bridge_cfg("unknown-key", "runs: 4\n", r"b\.yaml.*runs"),
    bridge_cfg("r2-above-one", "r2_threshold: 2\n", r"r2_threshold=2"),
    bridge_cfg("n-runs-zero", "n_runs: 0\n", r"n_runs=0"),
    bridge_cfg("n-jobs-zero", "n_jobs: 0\n", r"n_jobs=0"),
    bridge_cfg("k-folds-one", "k_folds: 1\n", r"k_folds=1"),
    bridge_cfg("alpha-ratio-above-one", "alpha_ratio: 1.5\n", r"alpha_ratio=1.5"),
    bridge_cfg("overwrite-unknown", "overwrite: sometimes\n", r"overwrite.*sometimes"),
    bridge_cfg("seed-string", "seed: x\n", r"b\.yaml.*seed"),
    bridge_cfg(
        "candidate-fraction-negative", "candidate_fraction: -0.5\n", r"candidate_fraction=-0.5"
    ),
    bridge_cfg(
        "min-above-max-candidates", "min_candidates: 50\nmax_candidates: 5\n", r"candidates"
    ),
]


def analysis(
    id: str, change: Any, message: str, extra: Setup | None = None, allowed: tuple[str, ...] = ()
) -> Case:
    """``analyze`` on the tiny world with configs/analysis/twin_china.yaml changed by ``change``."""

    def edit(m: dict[str, Any]) -> None:
        m["base_dir"] = "world"
        m["output"] = "analysis"
        m["period"] = {"start": 2003, "end": 2005, "policy": "require"}  # the tiny world's
        change(m)

    steps = [s.world(), s.derived_yaml("a.yaml", "configs/analysis/twin_china.yaml", edit)]
    if extra is not None:
        steps.append(extra)
    return case(
        f"analyze-{id}", "analyze --config a.yaml", message, s.chain(*steps), allowed=allowed
    )


def _set(key: str, value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        node = m
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = value

    return change


ANALYSES = [
    analysis("unknown-key", _set("colour", "blue"), r"a\.yaml.*colour"),
    analysis("base-dir-missing", _set("base_dir", "nowhere"), r"nowhere"),
    analysis(
        "period-reversed",
        _set("period", {"start": 2005, "end": 2003}),
        r"period.*2005|end 2003 is before start 2005",
    ),
    analysis("peak-months-13", _set("peak_months", [7, 13]), r"peak_months"),
    analysis("event-months-zero", _set("anomalies.event_months", [0]), r"event_months"),
    analysis("region-unknown", _set("domain.region", "ATLANTIS"), r"ATLANTIS"),
    analysis("grid-file-missing", _set("grid.file", "none.nc"), r"none\.nc"),
    analysis(
        "product-dir-missing",
        _set("product_dirs", [{"directory": "nope", "variable": "nee"}]),
        r"nope",
    ),
    analysis(
        "partition-variable-missing",
        _set(
            "partitions",
            [{"name": "zones", "file": "grid.nc", "variable": "nothing", "kind": "classes"}],
        ),
        r"nothing",
    ),
    analysis(
        "output-is-base-dir", _set("output", "."), r"output .*world (is|contains) the input .*world"
    ),
    analysis(
        "output-inside-base-dir", _set("output", "sub/analysis"), r"output .* lies inside the input"
    ),
    analysis("output-contains-base-dir", _set("output", ".."), r"output .* contains the input"),
    analysis(
        "output-foreign-folder",
        _set("output", "../mine"),
        r"output .*mine is not empty and was not written by fluxbridge",
        cfg("mine/notes.txt", "my notes\n"),
    ),
    analysis(
        "output-other-task",
        _set("output", "../other"),
        r"holds the output of `twin`",
        s.world("other"),
    ),
    analysis(
        "output-is-a-file",
        _set("output", "../file.txt"),
        r"file\.txt is a file",
        cfg("file.txt", "x\n"),
    ),
    analysis(
        "overwrite-false-existing",
        lambda m: (_set("output", "../done")(m), _set("overwrite", False)(m)),
        r"done holds an earlier `analyze` output",
        s.chain(
            s.mkdir("done"),
            cfg("done/.fluxbridge-output.json", '{"task": "analyze", "files": ["x.md"]}\n'),
            cfg("done/x.md", "old\n"),
        ),
    ),
]

PREPARE = "prepare --config p.yaml --out ds --data-dir raw"


def prepare_cfg(id: str, change: Any, message: str) -> Case:
    return case(
        f"prepare-{id}",
        PREPARE,
        message,
        s.chain(s.mkdir("raw"), s.derived_yaml("p.yaml", "configs/prepare/upton2024.yaml", change)),
    )


PREPARES = [
    prepare_cfg("unknown-key", _set("colour", 1), r"p\.yaml.*colour"),
    prepare_cfg("years-reversed", _set("years", [2010, 2001]), r"years"),
    prepare_cfg("resolution-negative", _set("resolution_deg", -0.5), r"resolution"),
    prepare_cfg("manifest-missing", lambda m: None, r"data_manifest\.yaml: config file not found"),
]


def manifest(
    id: str,
    body: str,
    message: str,
    argv: str = "fetch --manifest m.yaml --check",
    extra: Setup | None = None,
) -> Case:
    steps = [cfg("m.yaml", body)] + ([extra] if extra else [])
    return case(f"fetch-{id}", argv, message, s.chain(*steps))


ENTRY = (
    "entries:\n- name: {name}\n  description: test\n  url: {url}\n  access: open\n"
    "  licence: CC0\n  citation: '{doi}'\n  sha256: {sha}\n  target: {target}\n"
)


def entry(
    name: str = "a",
    url: str = "http://127.0.0.1:1/a.bin",
    doi: str = "10.1234/x",
    sha: str = "null",
    target: str = "a",
) -> str:
    return ENTRY.format(name=name, url=url, doi=doi, sha=sha, target=target)


MANIFESTS = [
    manifest("not-a-list", "entries: 3\n", r"m\.yaml.*entries"),
    manifest("empty", "", r"m\.yaml"),
    manifest("yaml-syntax", "entries: [\n", r"m\.yaml"),
    manifest("bad-name", entry(name="Bad Name"), r"name.*Bad Name"),
    manifest("bad-doi", entry(doi="doi"), r"citation.*'doi'"),
    manifest("bad-sha", entry(sha="abc"), r"sha256.*'abc'"),
    manifest("ftp-url", entry(url="ftp://example/a"), r"url.*ftp://"),
    manifest("target-dotdot", entry(target="../up"), r"target.*\.\./up"),
    manifest("target-absolute", entry(target="/etc"), r"target.*/etc"),
    manifest("duplicate-names", entry() + entry().split("entries:\n", 1)[1], r"'a'|a"),
    manifest("unknown-field", entry() + "  colour: blue\n", r"colour"),
    manifest("only-unknown", entry(), r"zzz", "fetch --manifest m.yaml --only zzz"),
    manifest("attempts-zero", "download: {attempts: 0}\n" + entry(), r"attempts"),
    manifest(
        "registration-no-instructions",
        entry().replace("access: open", "access: registration"),
        r"instructions",
    ),
]

FETCH_FILES = [
    manifest(
        "check-corrupt",
        entry(sha="'" + "ab" * 32 + "'"),
        None,
        "fetch --manifest m.yaml --data-dir raw --check",
        cfg("raw/a", "wrong bytes\n"),
    ),
    manifest(
        "check-missing",
        entry(sha="'" + "ab" * 32 + "'"),
        None,
        "fetch --manifest m.yaml --data-dir raw --check",
    ),
]
# fetch --check reports per entry in a table and exits 1 when something is corrupt
FETCH_FILES[0] = Case(
    **{
        **FETCH_FILES[0].__dict__,
        "code": 1,
        "output": r"a\s.*corrupt",
        "note": "fetch reports a table, exit 1",
    }
)
FETCH_FILES[1] = Case(
    **{
        **FETCH_FILES[1].__dict__,
        "code": 0,
        "output": r"a\s.*missing",
        "note": "missing is not corrupt: exit 0",
    }
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def served(
    id: str, body: bytes, sha: str, unpack: str | None, output: str, path: str = "a.bin"
) -> Case:
    """``fetch`` of one entry served on 127.0.0.1: a per-entry report and exit 1."""

    def manifest_text(url: str) -> str:
        text = "download: {attempts: 1, backoff_s: 0.01, max_backoff_s: 0.02, timeout_s: 5}\n"
        text += entry(url=f"{url}/{path}", sha=f"'{sha}'", target="pkg")
        return text + (f"  unpack: {unpack}\n" if unpack else "")

    return case(
        f"fetch-{id}",
        "fetch --manifest m.yaml --data-dir raw",
        None,
        s.http_files({"a.bin": body}, manifest_text),
        code=1,
        output=output,
        # the verified download of an archive that cannot be unpacked safely is kept
        allowed=("raw", "raw/pkg.tar.gz") if unpack else ("raw",),
        note="fetch reports each entry's failure and exits 1",
    )


SLIP = s.tar_gz({"../evil.txt": b"x"})
ABSOLUTE = s.tar_gz({"/tmp/evil.txt": b"x"})
SERVED = [
    served("checksum-mismatch", b"served bytes", "ab" * 32, None, r"(?i)checksum|sha256"),
    served("archive-tar-slip", SLIP, _sha(SLIP), "tar.gz", r"\.\./evil\.txt"),
    served("archive-absolute-member", ABSOLUTE, _sha(ABSOLUTE), "tar.gz", r"/tmp/evil\.txt"),
    served("archive-not-an-archive", b"plain text", _sha(b"plain text"), "tar.gz", r"(?i)a\]"),
    served("http-404", b"", "ab" * 32, None, r"404", path="missing.bin"),
]

# --------------------------------------------------------------------------- canonical dataset
CHECK = "train --model ec-atm --data world --run r"  # validates the dataset, then wants bridges.nc


def dataset(id: str, change: Setup, message: str, argv: str = CHECK) -> Case:
    return case(f"canonical-{id}", argv, message, s.chain(s.world(), change))


def _lon360(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(lon=(ds["lon"] % 360).assign_attrs(ds["lon"].attrs))


def _lat_descending(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lat=slice(None, None, -1))


def _nan_lat(ds: xr.Dataset) -> xr.Dataset:
    lat = ds["lat"].values.copy()
    lat[3] = np.nan
    return ds.assign_coords(lat=("lat", lat, ds["lat"].attrs))


def _transpose(var: str) -> Any:
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds[var] = ds[var].transpose(*reversed(ds[var].dims))
        return ds

    return change


def _rename_dim(var: str, old: str, new: str) -> Any:
    def change(ds: xr.Dataset) -> xr.Dataset:
        da = ds[var].rename({old: new})
        return ds.drop_vars(var).assign({var: da})

    return change


CANONICAL = [
    dataset("grid-missing", s.remove("world/grid.nc"), r"world/grid\.nc"),
    dataset("drivers-missing", s.remove("world/drivers.nc"), r"world/drivers\.nc"),
    dataset("sites-missing", s.remove("world/sites.nc"), r"world/sites\.nc"),
    dataset("canonical-json-missing", s.remove("world/canonical.json"), r"canonical\.json"),
    dataset(
        "canonical-json-garbage", s.text("world/canonical.json", "{not json"), r"canonical\.json"
    ),
    dataset(
        "drivers-no-tair", s.netcdf("world/drivers.nc", s.drop_var("Tair")), r"drivers\.nc.*Tair"
    ),
    dataset(
        "sites-no-nee", s.netcdf("world/sites.nc", s.drop_var("nee_obs")), r"sites\.nc.*nee_obs"
    ),
    dataset(
        "grid-no-cell-area",
        s.netcdf("world/grid.nc", s.drop_var("cell_area")),
        r"grid\.nc.*cell_area",
    ),
    dataset(
        "grid-no-land-fraction",
        s.netcdf("world/grid.nc", s.drop_var("land_fraction")),
        r"grid\.nc.*land_fraction",
    ),
    dataset(
        "inversions-no-nee",
        s.netcdf("world/inversions.nc", s.drop_var("nee")),
        r"inversions\.nc.*nee",
    ),
    dataset(
        "reference-no-nee", s.netcdf("world/reference.nc", s.drop_var("nee")), r"reference\.nc.*nee"
    ),
    dataset(
        "drivers-tair-units",
        s.netcdf("world/drivers.nc", s.set_attr("Tair", "units", "K")),
        r"drivers\.nc.*Tair.*units",
    ),
    dataset(
        "sites-nee-units",
        s.netcdf("world/sites.nc", s.set_attr("nee_obs", "units", "umol m-2 s-1")),
        r"sites\.nc.*nee_obs.*units",
    ),
    dataset(
        "inversions-units",
        s.netcdf("world/inversions.nc", s.set_attr("nee", "units", "kg m-2 s-1")),
        r"inversions\.nc.*nee.*units",
    ),
    dataset(
        "grid-area-units",
        s.netcdf("world/grid.nc", s.set_attr("cell_area", "units", "km2")),
        r"grid\.nc.*cell_area.*units",
    ),
    dataset(
        "drivers-tair-transposed",
        s.netcdf("world/drivers.nc", _transpose("Tair")),
        r"drivers\.nc.*Tair.*dim",
    ),
    dataset(
        "inversions-wrong-dims",
        s.netcdf("world/inversions.nc", _rename_dim("nee", "member", "ensemble")),
        r"inversions\.nc.*nee",
    ),
    dataset("grid-lon-0-360", s.netcdf("world/grid.nc", _lon360), r"grid\.nc.*lon"),
    dataset(
        "inversions-lon-0-360", s.netcdf("world/inversions.nc", _lon360), r"inversions\.nc.*lon"
    ),
    dataset("reference-lon-0-360", s.netcdf("world/reference.nc", _lon360), r"reference\.nc.*lon"),
    dataset("grid-lat-descending", s.netcdf("world/grid.nc", _lat_descending), r"grid\.nc.*lat"),
    dataset(
        "inversions-lat-descending",
        s.netcdf("world/inversions.nc", _lat_descending),
        r"inversions\.nc.*lat",
    ),
    dataset("grid-lat-nan", s.netcdf("world/grid.nc", _nan_lat), r"grid\.nc.*lat"),
    dataset("reference-lat-nan", s.netcdf("world/reference.nc", _nan_lat), r"reference\.nc.*lat"),
    dataset("drivers-truncated", s.truncate("world/drivers.nc"), r"drivers\.nc"),
    dataset("grid-truncated", s.truncate("world/grid.nc"), r"grid\.nc"),
    dataset("sites-truncated", s.truncate("world/sites.nc"), r"sites\.nc"),
    dataset("inversions-truncated", s.truncate("world/inversions.nc"), r"inversions\.nc"),
    dataset("sites-not-netcdf", s.text("world/sites.nc", "site,nee\nA,1\n"), r"sites\.nc"),
    dataset("grid-not-netcdf", s.text("world/grid.nc", "hello\n"), r"grid\.nc"),
    dataset("grid-empty-file", s.text("world/grid.nc", ""), r"grid\.nc"),
    dataset(
        "drivers-is-folder",
        s.chain(s.remove("world/drivers.nc"), s.mkdir("world/drivers.nc")),
        r"drivers\.nc",
    ),
    dataset("train-drivers-truncated", s.truncate("world/drivers.nc"), r"drivers\.nc", argv=TRAIN),
    dataset(
        "train-sites-lon-0-360",
        s.netcdf(
            "world/sites.nc",
            lambda ds: ds.assign(
                site_lon=(ds["site_lon"] % 360).assign_attrs(ds["site_lon"].attrs)
            ),
        ),
        r"sites\.nc.*site_lon",
        argv=TRAIN,
    ),
    dataset(
        "forward-grid-truncated",
        s.chain(s.run(), s.truncate("run/data/grid.nc")),
        r"grid\.nc",
        argv="forward --run run --data run/data --force",
    ),
]

# --------------------------------------------------------------------------- output folders
TWIN_TINY = "twin --scenario configs/twin/tiny.yaml --out"
OUTPUTS = [
    case(
        "twin-force-over-foreign-files",
        f"{TWIN_TINY} mine --force",
        r"output mine is not empty and was not written by fluxbridge",
        cfg("mine/a.txt", "mine\n"),
    ),
    case(
        "twin-over-foreign-files",
        f"{TWIN_TINY} mine",
        r"output mine is not empty",
        cfg("mine/a.txt", "mine\n"),
    ),
    case(
        "twin-force-over-world-plus-user-file",
        f"{TWIN_TINY} world --force",
        r"output world holds files `twin` did not write \(notes\.txt\)",
        s.chain(s.world(), cfg("world/notes.txt", "mine\n")),
    ),
    case(
        "twin-existing-without-force",
        f"{TWIN_TINY} world",
        r"output world holds an earlier `twin` output; pass --force",
        s.world(),
    ),
    case("twin-out-is-file", f"{TWIN_TINY} f.txt", r"output f\.txt is a file", cfg("f.txt", "x\n")),
    case("twin-over-run-folder", f"{TWIN_TINY} run --force", r"output run is not empty", s.run()),
    case(
        "twin-force-over-analysis",
        f"{TWIN_TINY} an --force",
        r"holds the output of `analyze`",
        s.chain(
            s.mkdir("an"),
            cfg("an/.fluxbridge-output.json", '{"task": "analyze", "files": ["x.md"]}'),
            cfg("an/x.md", "x\n"),
        ),
    ),
    case(
        "export-existing-without-force",
        "export --run run",
        r"exists; pass --force",
        s.chain(s.run(), s.text("run/export/ilamb/models.csv", "old\n")),
    ),
    case(
        "train-existing-checkpoints",
        "train --model ec --data run/data --run run --folds 1",
        r"already holds checkpoints",
        s.run(),
    ),
    case(
        "sites-out-exists",
        "sites --fluxnet flux --out s.nc",
        r"s\.nc exists",
        s.chain(s.mkdir("flux"), cfg("s.nc", "mine\n")),
    ),
]

# --------------------------------------------------------------------------- stale inputs
FWD = "forward --run run --data run/data"
STALE = [
    case(
        "forward-after-checkpoint-changed",
        FWD,
        r"forward/EC(-ATM)?\.nc.*stale|--force",
        s.chain(s.run(), s.touch_checkpoint("run/train/ec/fold_0/best.ckpt")),
    ),
    case(
        "forward-other-dataset",
        "forward --run run --data world",
        r"stale|--force|world",
        s.chain(s.run(), s.world(), s.netcdf("world/drivers.nc", s.add_var("Tair", 0.5))),
    ),
    case(
        "forward-unfinished-member",
        FWD,
        r"fold_1|finished",
        s.chain(
            s.run(), s.remove("run/train/ec/fold_1/finished.json"), s.remove("run/forward/EC.nc")
        ),
    ),
    case(
        "forward-no-members",
        FWD,
        r"run/train|member|trained",
        s.chain(s.run(), s.remove("run/train")),
    ),
    case(
        "evaluate-after-checkpoint-changed",
        "evaluate --run run",
        r"EC\.nc.*stale|--force",
        s.chain(s.run(), s.touch_checkpoint("run/train/ec/fold_0/best.ckpt")),
    ),
    case(
        "evaluate-truncated-forward",
        "evaluate --run run",
        r"forward/EC\.nc",
        s.chain(s.run(), s.truncate("run/forward/EC.nc")),
    ),
    case(
        "evaluate-renamed-forward",
        "evaluate --run run",
        r"forward/EC\.nc",
        s.chain(s.run(), s.rename("run/forward/EC.nc", "run/forward/EC-old.nc")),
    ),
    case(
        "evaluate-forward-swapped",
        "evaluate --run run",
        r"forward/EC(-ATM)?\.nc",
        s.chain(
            s.run(),
            s.rename("run/forward/EC.nc", "run/x.nc"),
            s.rename("run/forward/EC-ATM.nc", "run/forward/EC.nc"),
            s.rename("run/x.nc", "run/forward/EC-ATM.nc"),
        ),
    ),
    case(
        "evaluate-forward-not-netcdf",
        "evaluate --run run",
        r"forward/EC\.nc",
        s.chain(s.run(), s.text("run/forward/EC.nc", "not netcdf\n")),
    ),
    case(
        "evaluate-dataset-changed",
        "evaluate --run run",
        r"stale|--force|data",
        s.chain(s.run(), s.netcdf("run/data/drivers.nc", s.add_var("Tair", 0.5))),
    ),
    case(
        "export-truncated-forward",
        "export --run run",
        r"forward/EC\.nc",
        s.chain(s.run(), s.truncate("run/forward/EC.nc")),
    ),
    case(
        "export-stale-forward",
        "export --run run",
        r"stale|--force",
        s.chain(s.run(), s.touch_checkpoint("run/train/ec/fold_0/best.ckpt")),
    ),
    case(
        "resume-on-changed-dataset",
        "train --model ec --data run/data --run run --folds 2 --resume",
        r"changed|stale|dataset",
        s.chain(s.run(), s.netcdf("run/data/drivers.nc", s.add_var("Tair", 0.5))),
    ),
    case(
        "bridges-dataset-truncated-in-run",
        "bridges --data run/data --run run",
        r"data/reference\.nc",
        s.chain(s.run(), s.truncate("run/data/reference.nc")),
    ),
]

# --------------------------------------------------------------------------- silent nonsense
# The lead's plausibility checks: "outside the physical range", "outside the plausible",
# "opposite sign", "no value", each ending in "pass --allow-implausible if this is intended".
IMPLAUSIBLE = r"(outside the physical range|outside the plausible|opposite sign|no value)"
SILENT = [
    case(
        "sites-tair-kelvin-allowed",
        TRAIN + " --allow-implausible",
        None,
        s.chain(s.world(), s.netcdf("world/sites.nc", s.add_var("Tair", 273.15))),
        code=0,
        output=rf"Tair.*{IMPLAUSIBLE}",
        allowed=("r/**",),
        note="--allow-implausible: a warning, and the run goes on",
    ),
    case(
        "sites-tair-kelvin-as-degc",
        TRAIN,
        rf"sites\.nc.*Tair.*{IMPLAUSIBLE}",
        s.chain(s.world(), s.netcdf("world/sites.nc", s.add_var("Tair", 273.15))),
    ),
    case(
        "drivers-tair-kelvin-as-degc",
        FWD + " --force",
        rf"drivers\.nc.*Tair.*{IMPLAUSIBLE}",
        s.chain(s.run(), s.netcdf("run/data/drivers.nc", s.add_var("Tair", 273.15))),
        # the parts are resumable work (docs/run_layout.md): an --allow-implausible rerun
        # reuses them; the earlier output must stay until a new one replaces it
        allowed=("run/forward/EC.nc.parts/*", "run/forward/EC-ATM.nc.parts/*"),
    ),
    case(
        "train-drivers-tair-kelvin-as-degc",
        TRAIN,
        rf"Tair.*{IMPLAUSIBLE}",
        s.chain(
            s.world(),
            s.netcdf("world/drivers.nc", s.add_var("Tair", 273.15)),
            s.netcdf("world/sites.nc", s.add_var("Tair", 273.15)),
        ),
    ),
    case(
        "inversions-times-1000",
        "evaluate --run run --force",
        rf"inversion.*{IMPLAUSIBLE}",
        s.chain(s.run(), s.netcdf("run/data/inversions.nc", s.scale_var("nee", 1000.0))),
    ),
    case(
        "inversions-sign-flipped",
        "evaluate --run run --force",
        rf"inversion.*{IMPLAUSIBLE}",
        s.chain(s.run(), s.netcdf("run/data/inversions.nc", s.scale_var("nee", -1.0))),
    ),
    case(
        "inversions-member-all-nan",
        "evaluate --run run --force",
        rf"inversion.*{IMPLAUSIBLE}",
        s.chain(s.run(), s.netcdf("run/data/inversions.nc", s.nan_member("nee", "member", 1))),
    ),
    case(
        "train-ec-atm-inversions-times-1000",
        "train --model ec-atm --data world --run r --folds 1 --max-epochs 1 --integral exact",
        rf"inversion.*{IMPLAUSIBLE}",
        s.chain(s.world(), s.netcdf("world/inversions.nc", s.scale_var("nee", 1000.0))),
    ),
    case(
        "residual-sink-sign-flipped",
        "evaluate --run run --force",
        rf"residual.*{IMPLAUSIBLE}",
        s.chain(s.run(), s.netcdf("run/data/residual_sink.nc", s.scale_var("nee_global", -1.0))),
    ),
    case(
        "sites-nan-drivers-at-towers",
        TRAIN,
        r"sites\.nc|tower",
        s.chain(s.world(), s.netcdf("world/sites.nc", s.scale_var("WAI2", np.nan))),
    ),
]


def _fluxnet_dd(rows: int, nee: float) -> str:
    cols = [
        "TIMESTAMP",
        "TA_F",
        "TA_F_QC",
        "SW_IN_F",
        "SW_IN_F_QC",
        "VPD_F",
        "VPD_F_QC",
        "P_F",
        "P_F_QC",
        "NEE_VUT_REF",
        "NEE_VUT_REF_QC",
    ]
    days = [f"200501{d:02d}" for d in range(1, rows + 1)]
    lines = [",".join(cols)]
    for day in days:
        lines.append(
            ",".join([day] + [str(v) for v in (nee, nee, nee, nee, nee, nee, nee, nee, nee, nee)])
        )
    return "\n".join(lines) + "\n"


DD = "flux/FLX_DE-Tha_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv"
HH = "flux/FLX_US-Ha1_FLUXNET2015_FULLSET_HH_2005-2005_1-4.csv"
FLUXNET = [
    case(
        "fluxnet-dd-all-minus-9999",
        "sites --fluxnet flux --out s.nc",
        r"DE-Tha|NEE_VUT_REF",
        cfg(DD, _fluxnet_dd(5, -9999)),
    ),
    case(
        "fluxnet-bad-name",
        "sites --fluxnet flux --out s.nc",
        r"not a FLUXNET file name",
        cfg("flux/fluxdata.csv", "a,b\n1,2\n"),
    ),
    case(
        "fluxnet-header-only",
        "sites --fluxnet flux --out s.nc",
        r"header but no data rows",
        cfg(DD, _fluxnet_dd(0, 1.0)),
    ),
    case("fluxnet-empty-file", "sites --fluxnet flux --out s.nc", r"empty file", cfg(DD, "")),
    case(
        "fluxnet-bad-timestamp",
        "sites --fluxnet flux --out s.nc",
        r"bad timestamp",
        cfg(DD, _fluxnet_dd(2, 1.0).replace("20050102", "2005-01-x")),
    ),
    case(
        "fluxnet-site-info-missing-column",
        "sites --fluxnet flux --out s.nc --site-info info.csv",
        r"info\.csv.*missing column",
        s.chain(cfg(DD, _fluxnet_dd(3, 1.0)), cfg("info.csv", "SITE_ID,IGBP\nDE-Tha,ENF\n")),
    ),
    case(
        "fluxnet-site-info-no-row",
        "sites --fluxnet flux --out s.nc --site-info info.csv",
        r"info\.csv.*DE-Tha",
        s.chain(
            cfg(DD, _fluxnet_dd(3, 1.0)),
            cfg("info.csv", "SITE_ID,LOCATION_LAT,LOCATION_LONG,IGBP\nUS-X,1,2,ENF\n"),
        ),
    ),
    case(
        "fluxnet-site-info-lat-out-of-range",
        "sites --fluxnet flux --out s.nc --site-info info.csv",
        r"info\.csv.*(LAT|lat).*95",
        s.chain(
            cfg(DD, _fluxnet_dd(3, 1.0)),
            cfg("info.csv", "SITE_ID,LOCATION_LAT,LOCATION_LONG,IGBP\nDE-Tha,95,2,ENF\n"),
        ),
    ),
]

# --------------------------------------------------------------------------- OS errors, locks
OS_ERRORS = [
    case(
        "twin-disk-full",
        f"{TWIN_TINY} small/world",
        r"not enough space in small for the twin dataset",
        s.tmpfs("small", "3m"),
    ),
    case(
        "twin-read-only-folder",
        f"{TWIN_TINY} ro/world",
        r"ro/world.*[Rr]ead-only",
        s.tmpfs("ro", "10m", read_only=True),
    ),
    case(
        "train-read-only-run",
        "train --model ec --data world --run ro/r --folds 1",
        r"ro.*[Rr]ead-only",
        s.chain(s.world(), s.tmpfs("ro", "10m", read_only=True)),
    ),
    case(
        "sites-read-only-out",
        "sites --fluxnet flux --out ro/s.nc",
        r"ro.*[Rr]ead-only",
        s.chain(cfg(DD, _fluxnet_dd(3, 1.0)), s.tmpfs("ro", "10m", read_only=True)),
    ),
    case(
        "forward-read-only-run",
        "forward --run ro/run --data ro/run/data --force",
        r"ro/run.*[Rr]ead-only",
        s.tmpfs("ro", "60m", read_only=True, fill=s.run("ro/run")),
    ),
    case(
        "forward-locked",
        FWD + " --force",
        r"`forward` is already running on run \(pid \d+",
        s.chain(s.run(), s.hold_lock("run", "forward")),
    ),
    case(
        "evaluate-locked",
        "evaluate --run run",
        r"`evaluate` is already running on run \(pid \d+",
        s.chain(s.run(), s.hold_lock("run", "evaluate")),
    ),
]

CASES: list[Case] = [
    *CLI,
    *SCENARIOS,
    *TRAIN_CONFIGS,
    *BRIDGE_CONFIGS,
    *ANALYSES,
    *PREPARES,
    *MANIFESTS,
    *FETCH_FILES,
    *SERVED,
    *CANONICAL,
    *OUTPUTS,
    *STALE,
    *SILENT,
    *FLUXNET,
    *OS_ERRORS,
]


def test_the_matrix_is_large_enough() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 150, len(ids)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("bad", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(
    bad: Case, inputs: Inputs, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    try:
        run_case(bad, tmp_path / "case", inputs, capfd)
    finally:
        s.cleanup()
