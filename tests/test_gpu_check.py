"""benchmarks/gpu_check.sh on a machine without CUDA: the clear line, CPU numbers, exit 0."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_gpu_check_without_cuda_says_so_and_still_measures_the_cpu() -> None:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",  # hides any GPU, so this runs the no-CUDA path everywhere
        "GPU_CHECK_SCALE": "0.002",  # 134 land cells: seconds, not minutes
        "GPU_CHECK_REPEATS": "1",
    }
    proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert "no CUDA device: GPU timings skipped" in lines
    assert "134 land cells" in lines[0]
    number = r"[0-9.]+(e[+-]?[0-9]+)?"
    for pattern in (
        rf"^exact ATM step, one year × 134 cells: CPU {number} ms$",
        rf"^forward, 10 members × 365 days × 134 cells: CPU {number} member cell-days/s$",
        rf"^training step .*: CPU {number} ms$",
    ):
        assert any(re.match(pattern, line) for line in lines), (pattern, lines)
    assert "GPU" not in proc.stdout.replace("GPU timings skipped", "")
