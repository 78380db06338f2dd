"""``symloss check`` cannot be fooled by the code it checks (issue 19).

Each case writes a small module into a fresh directory and runs ``symloss check`` there
in a new process, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from shared import ROOT

GOOD_GRAD = """
import numpy as np
def grad(y, t):
    y, t = np.asarray(y, float), np.asarray(t, float)
    return (y - t) / (y * (1 - y)) / y.size
"""


def run_check(tmp_path, source: str, *argv: str, module: str = "user"):
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # As the installed `symloss` command runs: the current directory is not put first on
    # sys.path by Python itself (-P), as `python -m` would (Python 3.11+).
    return subprocess.run(
        [sys.executable, "-P", "-m", "symloss", "check", *argv],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip


def test_the_reference_gradient_passes(tmp_path):
    out = run_check(tmp_path, GOOD_GRAD, "bce", "--grad", "user:grad", "--samples", "3")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("code", ["0", "None", "1"])
def test_a_function_that_exits_fails_the_check_with_a_report(tmp_path, code):
    source = GOOD_GRAD + f"\nimport sys\ndef grad(y, t):\n    sys.exit({code})\n"
    out = run_check(tmp_path, source, "bce", "--grad", "user:grad", "--samples", "3")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "SystemExit" in out.stdout


def test_a_module_that_exits_on_import_is_a_usage_error(tmp_path):
    out = run_check(tmp_path, "import sys\nsys.exit(0)\n", "bce", "--grad", "user:grad")
    assert out.returncode == 2
    assert "cannot import 'user': SystemExit" in out.stderr and out.stderr.count("\n") == 1


def test_an_unknown_loss_is_refused_before_the_module_runs(tmp_path):
    source = "import pathlib\npathlib.Path('ran').write_text('side effect')\ndef grad(y, t): pass\n"
    out = run_check(tmp_path, source, "no_such_loss", "--grad", "user:grad")
    assert out.returncode == 2 and "unknown loss 'no_such_loss'" in out.stderr
    assert not (tmp_path / "ran").exists()


def test_a_bad_option_is_refused_before_the_module_runs(tmp_path):
    source = "import pathlib\npathlib.Path('ran').write_text('side effect')\ndef grad(y, t): pass\n"
    out = run_check(tmp_path, source, "huber", "--grad", "user:grad", "--param", "delta=-1")
    assert out.returncode == 2 and not (tmp_path / "ran").exists()


def test_a_file_named_like_a_standard_module_is_named_not_imported(tmp_path):
    out = run_check(tmp_path, GOOD_GRAD, "bce", "--grad", "json:grad", module="json")
    assert out.returncode == 2
    assert "json.py has the name of a standard-library module" in out.stderr
