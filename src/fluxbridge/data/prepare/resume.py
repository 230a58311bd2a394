"""Resumable work directory of one prepare run.

Everything is written under ``<out parent>/.<out name>.prepare/``: finished
canonical files in ``dataset/``, per-block part files (one year of drivers, one
inversion member, ...) in ``parts/``. Each file is written atomically, so a file
that exists is complete. A killed prepare, run again with the same config and
inputs (same fingerprint), reuses every finished file and block; a different
fingerprint discards the work directory. Temporary files of a killed writer are
removed when the work resumes, and a part that exists but cannot be read (damaged
on disk) is rebuilt. At the end ``dataset/`` is marked as prepare's output
(:func:`fluxbridge.outputs.mark`: files and digests), renamed to the output
directory, and the work directory removed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import xarray as xr

from fluxbridge.errors import ConfigError
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.outputs import mark, remove_stale_temporaries, reuse_part, work_directory

log = logging.getLogger(__name__)


def _readable(path: Path) -> None:
    xr.open_dataset(path, engine=ENGINE).close()


class Workspace:
    """The work directory of the prepare run that writes ``out``."""

    def __init__(self, out: Path, print_: str) -> None:
        self.out = Path(out)
        self.root = self.out.parent / f".{self.out.name}.prepare"
        self.dataset = self.root / "dataset"
        self.parts = self.root / "parts"
        existed = self.root.exists()
        if work_directory(self.root, print_):
            log.info("resuming the interrupted prepare in %s", self.root)
            for path in remove_stale_temporaries(self.root):
                log.info("removed %s, left by a killed prepare", path.name)
        elif existed:
            log.warning("%s held work for other inputs or config; started afresh", self.root)
        self.dataset.mkdir(parents=True, exist_ok=True)
        self.parts.mkdir(parents=True, exist_ok=True)
        #: Global attributes (provenance) added to every file written.
        self.attrs: dict[str, str] = {}

    def file(self, name: str, build: Callable[[], xr.Dataset], action: str) -> Path:
        """``dataset/<name>``: reused when it exists, else built and written atomically."""
        return self._cached(self.dataset / name, build, action)

    def part(self, name: str, build: Callable[[], xr.Dataset], action: str) -> Path:
        """``parts/<name>``: one block, reused when it exists."""
        return self._cached(self.parts / name, build, action)

    def _cached(self, path: Path, build: Callable[[], xr.Dataset], action: str) -> Path:
        if reuse_part(path, _readable):
            log.info("reusing %s", path.name)
            return path
        ds = build()
        ds.attrs.update(self.attrs)
        write_netcdf(ds, path, action=action)
        ds.close()
        return path

    def finish(self) -> Path:
        """Rename ``dataset/`` to the output directory and remove the work directory."""
        if self.out.exists():
            raise ConfigError(f"{self.out} appeared while preparing; refusing to overwrite it")
        mark(self.dataset, "prepare")
        os.replace(self.dataset, self.out)
        shutil.rmtree(self.root)
        return self.out
