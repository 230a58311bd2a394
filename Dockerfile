# fluxbridge on a GPU: `docker build -t fluxbridge .`, then
# `docker run --gpus all fluxbridge` (runs `invoke demo`); see docs/container.md.
#
# The base only has to provide a glibc >= 2.28 userland with Python 3.11 in its
# apt sources and the NVIDIA container-runtime settings. torch's PyPI wheel for
# Linux x86_64 brings its own CUDA 13.0 libraries (cuBLAS, cuDNN, NCCL, ...), so
# the CUDA "base" flavour suffices: "runtime" or "cudnn-runtime" would add a second,
# unused copy of those libraries. Ubuntu 22.04 rather than 24.04 because 22.04
# ships python3.11 (universe) and 24.04 only 3.12, while requirements.lock is
# resolved for 3.11. Any Debian-like base with python3.11 and python3.11-venv
# works, e.g. Debian bookworm for a CPU-only build.
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu22.04
FROM ${BASE_IMAGE}

ARG DEBIAN_FRONTEND=noninteractive
# Package versions differ between the bases BASE_IMAGE may name, so apt packages
# are not pinned (DL3008); the base tag and requirements.lock pin what matters.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/*

# A fixed UID/GID so that files written to bind-mounted run directories belong
# to the usual first user on the host; override with --build-arg USER_UID=...
ARG USER_UID=1000
ARG USER_GID=1000
RUN groupadd --gid "${USER_GID}" fluxbridge \
    && useradd --uid "${USER_UID}" --gid "${USER_GID}" --create-home --shell /bin/bash fluxbridge \
    && install -d -o fluxbridge -g fluxbridge /opt/venv /app

USER ${USER_UID}:${USER_GID}
WORKDIR /app
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1
RUN python3.11 -m venv "${VIRTUAL_ENV}"

# Only what scripts/install.sh reads, so that edits elsewhere (tests, docs,
# tasks.py) reuse the cached dependency layer; an edit under src/ re-runs it.
COPY --chown=fluxbridge:fluxbridge pyproject.toml README.md requirements.lock ./
COPY --chown=fluxbridge:fluxbridge scripts/install.sh scripts/
COPY --chown=fluxbridge:fluxbridge src/ src/
# The one install step that CI runs too; no pip cache in the image.
RUN PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 bash scripts/install.sh

COPY --chown=fluxbridge:fluxbridge . .

CMD ["fluxbridge", "demo"]
