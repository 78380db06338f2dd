"""What CI runs: the README's test command, every framework required, nothing skipped.

Issue 20: CI skipped all the torch and dask tests because ``.ci/run`` installed an extra
without them, and a skip looks like a pass.  These tests pin the contract down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    (line,) = [x for x in quick.splitlines() if "pytest" in x]
    return line.strip()


def test_ci_runs_the_readme_test_command_verbatim():
    command = _readme_test_command()
    run = (ROOT / ".ci" / "run").read_text()
    assert command in run.splitlines(), f"{command!r} is not a line of .ci/run"
    # ... and the extras it installs carry the frameworks.
    extras = re.search(r'"\.\[([^\]]*)\]"', command)[1].split(",")
    assert "frameworks" in extras and "test" in extras


def test_ci_requires_every_optional_framework_and_tool():
    run = (ROOT / ".ci" / "run").read_text()
    for name in ("TORCH", "DASK", "JAX", "BROWSER", "PDFLATEX", "CC"):
        assert re.search(rf"export .*\bSYMLOSS_REQUIRE_{name}=1\b", run), name
    # No marker is deselected: the slow tests run in CI too.
    assert "-m " not in run and "not slow" not in run


def test_frameworks_extra_pins_the_cpu_builds():
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)

    def extra(name):
        return re.findall(r'"([^"]+)"', re.search(rf"^{name} = \[(.*)\]$", text, re.M)[1])

    frameworks = extra("frameworks")
    # torch==2.13.0: the CPU wheel CI has; jax[cpu]; dask[array] (tests/test_dask.py).
    assert "torch==2.13.0" in frameworks
    assert "jax[cpu]" in frameworks
    assert "dask[array]" in frameworks
    test = " ".join(extra("test"))
    for needed in (
        "pytest",
        "pytest-xdist",
        "hypothesis",
        "mpmath",
        "matplotlib",
        "pymdown-extensions",
    ):
        assert needed in test


_PROBE = textwrap.dedent(
    """
    import sys
    sys.modules["jax"] = None  # import jax -> ImportError, as when it is not installed

    def test_needs_jax():
        from conftest import require

        require("jax")
    """
)


@pytest.mark.parametrize("required", [False, True])
def test_a_missing_framework_skips_unless_required(required, tmp_path):
    """``conftest.require``: a skip on a developer's machine, a failure in CI."""
    (tmp_path / "test_probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYMLOSS_REQUIRE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests"), str(ROOT)])
    if required:
        env["SYMLOSS_REQUIRE_JAX"] = "1"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    if required:
        assert out.returncode == 1, out.stdout
        assert "SYMLOSS_REQUIRE_JAX=1 but jax cannot be imported" in out.stdout
    else:
        assert out.returncode == 0, out.stdout
        assert "1 skipped" in out.stdout and "SYMLOSS_REQUIRE_JAX=1" in out.stdout


def test_every_mutant_of_the_mutation_check_still_applies():
    """tests/mutation/run.py patches source text at exact anchors; when code moves
    (symloss/_core.py -> a subpackage) its FILES and TESTS tables must follow, or the
    mutation check would quietly test nothing."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "mutation" / "run.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"(\d+) of \1 mutants apply\n", out.stdout), out.stdout
