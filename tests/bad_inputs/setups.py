"""Setup builders of the bad-input matrix: each returns ``setup(folder, inputs)``.

Builders compose (:func:`chain`), copy the session's read-only tiny world or run
into the case folder before changing anything, and register what must be undone
after the case (mounts, helper processes) for :func:`cleanup`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import yaml

from tests.bad_inputs.harness import Inputs, Setup

_UNDO: list[Callable[[], None]] = []


def cleanup() -> None:
    """Undo what the last case's setup registered (unmount, stop helper processes)."""
    while _UNDO:
        _UNDO.pop()()


def chain(*steps: Setup) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        for step in steps:
            step(folder, inputs)

    return setup


def world(name: str = "world") -> Setup:
    """A copy of the tiny twin world at ``name``."""

    def setup(folder: Path, inputs: Inputs) -> None:
        shutil.copytree(inputs.world, folder / name, symlinks=True)

    return setup


def run(name: str = "run") -> Setup:
    """A copy of the trained tiny run at ``name`` (its dataset in ``name/data``)."""

    def setup(folder: Path, inputs: Inputs) -> None:
        copy = folder / name
        shutil.copytree(inputs.run, copy, symlinks=True)
        # the members name the dataset they were trained on: point them at the copy's, so
        # that forward and evaluate read (and cases change) the copy, never the session's
        for config in copy.glob("train/*/config.yaml"):
            resolved = yaml.safe_load(config.read_text())
            resolved["data"] = str(copy / "data")
            config.write_text(yaml.safe_dump(resolved, sort_keys=False))

    return setup


def text(rel: str, content: str) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)

    return setup


def data(rel: str, content: bytes) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    return setup


def yaml_file(rel: str, mapping: Any) -> Setup:
    return text(rel, yaml.safe_dump(mapping, sort_keys=False))


def derived_yaml(rel: str, source: str, change: Callable[[dict[str, Any]], None]) -> Setup:
    """``rel``: the YAML ``source`` (a path in the checkout) with ``change`` applied."""

    def setup(folder: Path, inputs: Inputs) -> None:
        root = Path(__file__).resolve().parents[2]
        mapping = yaml.safe_load((root / source).read_text())
        change(mapping)
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(mapping, sort_keys=False))

    return setup


def netcdf(rel: str, change: Callable[[xr.Dataset], xr.Dataset]) -> Setup:
    """Rewrite the NetCDF ``rel`` (already in the case folder) as ``change`` returns it."""

    def setup(folder: Path, inputs: Inputs) -> None:
        path = folder / rel
        with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as ds:
            new = change(ds.load())
        path.unlink()
        new.to_netcdf(path, engine="h5netcdf")

    return setup


def truncate(rel: str, fraction: float = 0.5) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        path = folder / rel
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * fraction)])

    return setup


def remove(rel: str) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        path = folder / rel
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    return setup


def rename(rel: str, new: str) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        (folder / rel).rename(folder / new)

    return setup


def mkdir(rel: str) -> Setup:
    def setup(folder: Path, inputs: Inputs) -> None:
        (folder / rel).mkdir(parents=True, exist_ok=True)

    return setup


def touch_checkpoint(rel: str) -> Setup:
    """Change a checkpoint's weights (a retrained member): every tensor + 1e-3."""

    def setup(folder: Path, inputs: Inputs) -> None:
        import torch

        path = folder / rel
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        for key, value in ckpt["state_dict"].items():
            if value.is_floating_point():
                ckpt["state_dict"][key] = value + 1e-3
        torch.save(ckpt, path)

    return setup


def tmpfs(rel: str, size: str = "3m", read_only: bool = False, fill: Setup | None = None) -> Setup:
    """Mount a tmpfs at ``rel`` (``fill`` runs before a read-only remount).

    The case is skipped, with the reason, where mounting is not permitted.
    """

    def setup(folder: Path, inputs: Inputs) -> None:
        point = folder / rel
        point.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {proc.stderr.strip()}")
        _UNDO.append(lambda: subprocess.run(["umount", "-l", str(point)], check=False))
        if fill is not None:
            fill(folder, inputs)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    return setup


def hold_lock(run_rel: str, stage: str) -> Setup:
    """Another process holds ``stage``'s lock on the run folder (a second command running)."""

    def setup(folder: Path, inputs: Inputs) -> None:
        code = (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from fluxbridge.outputs import stage_lock\n"
            f"with stage_lock(Path({str(folder / run_rel)!r}), {stage!r}):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
        )

        def stop() -> None:
            proc.kill()
            proc.wait()

        _UNDO.append(stop)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "held", line
        time.sleep(0.1)

    return setup


def scale_var(var: str, factor: float) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        attrs = ds[var].attrs
        ds[var] = ds[var] * factor
        ds[var].attrs = attrs
        return ds

    return change


def add_var(var: str, offset: float) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        attrs = ds[var].attrs
        ds[var] = ds[var] + offset
        ds[var].attrs = attrs
        return ds

    return change


def set_attr(var: str, key: str, value: object) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds[var].attrs[key] = value
        return ds

    return change


def drop_var(var: str) -> Callable[[xr.Dataset], xr.Dataset]:
    return lambda ds: ds.drop_vars(var)


def nan_member(var: str, dim: str, index: int) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        values = ds[var].values.copy()
        axis = ds[var].dims.index(dim)
        sl = [slice(None)] * values.ndim
        sl[axis] = index
        values[tuple(sl)] = np.nan
        ds[var].values = values
        return ds

    return change


def http_files(files: dict[str, bytes], manifest: Callable[[str], str]) -> Setup:
    """Serve ``files`` on 127.0.0.1 for the case; write ``m.yaml`` = ``manifest(base_url)``."""

    def setup(folder: Path, inputs: Inputs) -> None:
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        root = folder / "srv"
        root.mkdir()
        for name, body in files.items():
            (root / name).write_bytes(body)

        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """No request lines in the case's output."""

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

        _UNDO.append(stop)
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        (folder / "m.yaml").write_text(manifest(url))

    return setup


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A tar.gz of regular files named exactly as given (also ``../x`` or ``/x``)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()
