"""The benchmark scripts run (their timings are not asserted: they live in benchmarks/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_kernel_benchmark_runs_and_prints_ratios():
    out = subprocess.run(
        [sys.executable, str(BENCH / "kernels.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for name in ("bce_logits", "cce_logits"):
        assert name in out.stdout
    assert out.stdout.count("hand stable NumPy") == 2
    assert "x\n" in out.stdout
