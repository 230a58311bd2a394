"""Score an ILAMB export with ilamb3 (run by test_ilamb.py in the ilamb3 venv, not the main one).

Usage: python _ilamb_score.py EXPORT_DIR CONFIG_YAML OUTPUT_DIR RESULT_JSON

EXPORT_DIR is what ``run_export`` wrote (``models.csv``, ``reference/``).
ilamb3 runs the benchmark study of CONFIG_YAML exactly as its ``ilamb run``
command does after parsing its options (same ``ilamb3.conf`` settings, same
``run_study``): the 2026.4.20 command line stops before that when a config
names only local reference files (its registry lookup builds an empty table
and fails on ``set_index("key")``). The scalars ilamb3 wrote (one CSV per
block and model) are collected into RESULT_JSON as
``{block: {model: {"<analysis>/<name>": value}}}``.

Offline by construction: any pooch download, name lookup or outgoing socket
connection raises, so a reference that is not a local file fails the run
instead of being fetched. The scores come from ilamb3's first phase; its
second phase (map plots, HTML page) needs cartopy's Natural Earth coastlines,
which cartopy downloads on first use: offline it fails, ilamb3 logs that in
``post.log`` and the scores are unaffected.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path


def _forbid_network() -> None:
    import pooch

    def no_fetch(self, fname, *args, **kwargs):
        raise RuntimeError(f"ilamb3 tried to download {fname!r}; the test must stay offline")

    def no_connect(self, address):
        raise RuntimeError(f"ilamb3 tried to connect to {address!r}; the test must stay offline")

    def no_lookup(host, *args, **kwargs):
        raise OSError(f"name lookup of {host!r} refused; the test must stay offline")

    pooch.Pooch.fetch = no_fetch
    socket.socket.connect = no_connect
    socket.getaddrinfo = no_lookup


def main(export: Path, config: Path, output: Path, result: Path) -> int:
    # ILAMB_ROOT makes the config's reference paths relative to EXPORT/reference;
    # ILAMB3_CONFIGURATION keeps ilamb3's settings file out of the home directory.
    os.environ["ILAMB_ROOT"] = str(export / "reference")
    os.environ["ILAMB3_CONFIGURATION"] = str(output / "ilamb3_conf.yaml")
    os.environ.setdefault("MPLBACKEND", "Agg")
    _forbid_network()

    import ilamb3
    import pandas as pd
    from ilamb3.run import run_study

    ilamb3.conf.reset()
    # The settings `ilamb run` applies (ilamb3/cli/__init__.py), caching off.
    ilamb3.conf.set(
        regions=[None],
        use_cached_results=False,
        use_uncertainty=True,
        comparison_groupby=["source_id", "grid_label"],
        model_name_facets=["source_id"],
    )
    models = pd.read_csv(export / "models.csv")
    run_study(str(config), models, output_path=output)

    scores: dict[str, dict[str, dict[str, float]]] = {}
    for csv in sorted(output.rglob("*.csv")):
        block = str(csv.parent.relative_to(output))
        table = pd.read_csv(csv)
        for _, row in table.iterrows():
            if row["source"] == "Reference" or str(row["region"]) not in ("None", "nan"):
                continue
            name = str(row["name"]).split(" [")[0]
            key = f"{row['analysis']}/{name}"
            scores.setdefault(block, {}).setdefault(str(row["source"]), {})[key] = float(
                row["value"]
            )
    logs = {str(p.relative_to(output)): p.read_text()[-4000:] for p in output.rglob("*.log")}
    result.write_text(json.dumps({"scores": scores, "logs": logs}, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    export_dir, config_yaml, output_dir, result_json = map(Path, sys.argv[1:5])
    sys.exit(main(export_dir, config_yaml, output_dir, result_json))
