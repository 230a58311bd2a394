"""fluxbridge tasks in a checkout: the pipeline (``fluxbridge.tasks``) plus developer tasks.

    invoke twin      → canonical dataset + truth from a twin-world scenario
    invoke bridges   → per-region Lasso bridge models
    invoke train     → EC and EC-ATM members over site folds
    invoke forward   → members over every land pixel and day
    invoke evaluate  → metrics.json + report
    invoke export    → forward runs as ILAMB model output
    invoke analyze   → inversion-ensemble analysis (He et al.)
    invoke demo      → all of the above on the demo twin world
    invoke test      → lint + the whole test suite (what CI runs)

The pipeline tasks are also the installed ``fluxbridge`` command, which runs from
any directory. `invoke --help TASK` documents every option.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from invoke import Collection, Context, Exit, task

from fluxbridge import tasks as pipeline_tasks

ROOT = Path(__file__).resolve().parent


@task
def lint(c: Context) -> None:
    """ruff (lint + format check) and hadolint on the Dockerfile."""
    c.run("ruff check src tests benchmarks tasks.py", echo=True)
    c.run("ruff format --check src tests benchmarks tasks.py", echo=True)
    c.run("hadolint Dockerfile", echo=True)


@task(help={"args": "extra pytest arguments, quoted"})
def test(c: Context, args: str = "") -> None:
    """Lint, then the whole test suite (what CI runs)."""
    lint(c)
    result = c.run(f"{sys.executable} -m pytest {args}", echo=True, warn=True, pty=False)
    code = result.exited if result is not None else 1
    if code == 5:
        raise Exit("pytest collected no tests", code=5)
    if code:
        raise Exit(code=code)


@task(help={"only": "run only benchmarks whose file name contains this"})
def bench(c: Context, only: str = "") -> None:
    """Run the benchmarks in benchmarks/ (each prints its ratio against its baseline)."""
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("bench_*.py") if only in p.name)
    if not scripts:
        raise Exit(f"no benchmark matches {only!r}", code=2)
    for script in scripts:
        c.run(f"{sys.executable} {script}", echo=True)


@task(help={"tag": "image tag", "base": "override the CUDA base image (build arg BASE_IMAGE)"})
def image(c: Context, tag: str = "fluxbridge:latest", base: str | None = None) -> None:
    """Build the CUDA Docker image where a Docker engine is available."""
    if shutil.which("docker") is None:
        raise Exit("no docker client on PATH; install Docker to build the image", code=3)
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise Exit("docker client found but no Docker engine answers; cannot build here", code=3)
    build_arg = f"--build-arg BASE_IMAGE={base} " if base else ""
    c.run(f"docker build {build_arg}-t {tag} {ROOT}", echo=True)


ns = Collection.from_module(pipeline_tasks)
for _dev in (lint, test, bench, image):
    ns.add_task(_dev)
