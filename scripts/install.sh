#!/usr/bin/env bash
# The one install step, shared by the README, CI, the Dockerfile and the devcontainer.
# torch is pinned in the same pip command as everything else so that pip never
# pulls an unpinned (multi-GB CUDA) torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --upgrade "pip==26.3"
python -m pip install -r requirements.lock
python -m pip install --no-deps -e .
