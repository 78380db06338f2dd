"""The benchmark scripts run (their timings are not asserted: they live in benchmarks/)."""

from __future__ import annotations

import subprocess
import sys

from shared import ROOT

BENCH = ROOT / "benchmarks"


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
    assert out.stdout.count("symloss vag, lambdify") == 2
    assert out.stdout.count("symloss vag, NumPy code") == 2
    assert "x\n" in out.stdout


def _run(script, *args, timeout=300):  # a first run compiles every C kernel
    out = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_catalog_benchmark_runs_every_loss_and_prints_its_table():
    import symloss

    stdout = _run("catalog.py", "--quick")
    for column in (
        "default",
        "numpy s",
        "lambdify",
        "L+grad s",
        "torch s",
        "copy s",
        "d/torch",
        "d/copy",
        "np/copy",
        "x10",
    ):
        assert column in stdout
    rows = [line.split()[0] for line in stdout.splitlines() if line and line[0].isalpha()]
    for name in symloss.names():
        assert name in rows, name


def test_catalog_benchmark_picks_losses():
    stdout = _run("catalog.py", "--quick", "--losses", "bce_logits", "mse", "--no-scaling")
    assert "sigmoid_binary_cross_entropy" in stdout
    assert "mean_squared_error" in stdout
    assert "huber" not in stdout


def test_derivation_benchmark_runs_and_prints_its_ratios():
    stdout = _run("derivation.py", "--quick")
    assert "Cold build of the full catalog" in stdout
    assert "symloss show bce" in stdout
    assert "x\n" in stdout
    for name in ("bce_logits", "cce_logits"):
        assert name in stdout


def test_numexpr_probe_runs():
    """With numexpr installed it compares (and first checks numexpr's results equal
    symloss's); without it, it says so and exits cleanly."""
    stdout = _run("numexpr_probe.py", "--quick")
    try:
        import numexpr  # noqa: F401
    except ImportError:
        assert "numexpr is not installed" in stdout
    else:
        for name in ("bce_logits", "huber", "mse"):
            assert f"{name}: numexpr / symloss" in stdout


def test_small_benchmark_prints_ratios_side_by_side_and_the_first_use_cost():
    stdout = _run("small.py", "--quick")
    for column in ("symloss", "hand np", "torch", "/hand", "/torch", "float32", "f32/f64"):
        assert column in stdout
    rows = [line for line in stdout.splitlines() if line.startswith(("bce_logits", "cce_logits"))]
    assert [r.split()[:2] for r in rows] == [
        ["bce_logits", "10"],
        ["bce_logits", "1000"],
        ["cce_logits", "16x10"],
        ["cce_logits", "256x10"],
    ]
    assert all(r.count("x") >= 3 for r in rows)  # the ratios
    assert "first large call, empty cache (gcc)" in stdout
    assert "first large call, cache filled" in stdout


def test_frameworks_benchmark_runs_and_prints_its_ratios():
    """benchmarks/frameworks.py --quick: every row measured (each one first checked to
    agree with the framework's own loss), and the ratio printed; no time is asserted."""
    stdout = _run("frameworks.py", "--quick", timeout=900)
    for case in ("bce_logits", "cce_logits, labels", "cce_logits, one-hot", "huber", "mse",
                 "sigmoid_focal"):  # fmt: skip
        for framework in ("torch cpu", "jax cpu"):
            try:
                __import__(framework.split()[0])
            except ImportError:
                assert f"{framework.split()[0]} is not installed" in stdout
                continue
            assert any(
                line.startswith(framework) and case in line for line in stdout.splitlines()
            ), (framework, case)
    assert "x\n" in stdout or "x " in stdout


def test_float32_benchmark_prints_float64_and_float32_side_by_side():
    stdout = _run("float32.py", "--quick", "--threads", "1")
    assert "f32/f64" in stdout and "mem32" in stdout
    rows = [line.split() for line in stdout.splitlines()[2:] if line.strip()]
    assert [r[0] for r in rows][:2] == ["bce_logits", "mse"] and len(rows) == 8
    assert all(r[3].endswith("x") for r in rows)
