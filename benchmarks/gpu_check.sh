#!/usr/bin/env bash
# GPU check (issue 14, item 6): exact-integral EC-ATM step at 0.5°, forward throughput and
# the training step, each on CUDA and on the CPU in the same run, printed as ratios.
# Runs unchanged after the README's install (python3 -m venv .venv && . .venv/bin/activate
# && bash scripts/install.sh): it uses .venv/bin/python when there, else `python`.
# Without CUDA it prints "no CUDA device: GPU timings skipped", measures the CPU side at a
# reduced size and exits 0. Time limit 300 s. Environment: GPU_CHECK_SCALE,
# GPU_CHECK_REPEATS (see benchmarks/gpu_check.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then
  PYTHON=.venv/bin/python
else
  PYTHON=python
fi
exec timeout 300 "$PYTHON" benchmarks/gpu_check.py
