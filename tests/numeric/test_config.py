"""The evaluation settings: an API, the environment variables, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from shared import ROOT

import symloss
from symloss.numeric import config


def test_backend_context_manager_sets_and_restores():
    before = symloss.get_backend()
    with symloss.backend("fused"):
        assert symloss.get_backend() == "fused"
        with symloss.backend("lambdify"):
            assert symloss.get_backend() == "lambdify"
        assert symloss.get_backend() == "fused"
    assert symloss.get_backend() == before


def test_backend_is_restored_when_the_block_raises():
    before = symloss.get_backend()
    with pytest.raises(ZeroDivisionError), symloss.backend("lambdify"):
        1 / 0  # noqa: B018
    assert symloss.get_backend() == before


def test_every_backend_gives_the_same_numbers():
    L = symloss.get("cce_logits")
    rng = np.random.default_rng(0)
    z, labels = rng.normal(size=(40, 5)), rng.integers(0, 5, 40)
    results = {}
    for name in config.BACKENDS:
        with symloss.backend(name):
            results[name] = L.value_and_grad(z, labels)
    for name, (value, grad) in results.items():
        assert value == pytest.approx(results["lambdify"][0], rel=1e-13), name
        np.testing.assert_allclose(grad, results["lambdify"][1], rtol=1e-12, atol=1e-16)


def test_configure_returns_the_previous_settings_and_validates(configure):
    configure(threads=1, block_elements=64)
    assert config.settings().threads == 1 and config.settings().block_elements == 64
    with pytest.raises(symloss.SettingError, match="threads=0 is not accepted: .* 1 to 1,024"):
        symloss.configure(threads=0)
    with pytest.raises(symloss.SettingError, match="block_elements=-5 is not accepted"):
        symloss.configure(block_elements=-5)
    with pytest.raises(symloss.SettingError, match="must be an int"):
        symloss.configure(threads=1.5)
    with pytest.raises(symloss.BackendError, match="not one of auto, c, fused, lambdify"):
        symloss.configure(backend="gpu")
    with pytest.raises(TypeError, match="unknown setting"):
        symloss.configure(thread=2)
    assert config.settings().threads == 1  # a refused change leaves the settings alone


def test_blocks_and_threads_from_the_api_give_the_same_numbers(configure):
    L = symloss.get("huber", delta=0.5)
    rng = np.random.default_rng(1)
    y, t = rng.normal(size=5000), rng.normal(size=5000)
    want = L.value_and_grad(y, t)
    configure(block_elements=64, threads=2)
    got = L.value_and_grad(y, t)
    assert got[0] == pytest.approx(want[0], rel=1e-14)
    np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SYMLOSS_BACKEND", "C", "SYMLOSS_BACKEND='C' is not one of auto, c, fused, lambdify"),
        ("SYMLOSS_BLOCK_ELEMENTS", "-5", "SYMLOSS_BLOCK_ELEMENTS='-5' is not accepted"),
        ("SYMLOSS_BLOCK_ELEMENTS", "1e5", "SYMLOSS_BLOCK_ELEMENTS='1e5' is not accepted"),
        ("SYMLOSS_NUM_THREADS", "0", "SYMLOSS_NUM_THREADS='0' is not accepted"),
        ("SYMLOSS_COMPILE_MIN_ELEMENTS", "many", "SYMLOSS_COMPILE_MIN_ELEMENTS='many' is not"),
        ("SYMLOSS_COMPILE_AFTER_CALLS", "-1", "SYMLOSS_COMPILE_AFTER_CALLS='-1' is not accepted"),
    ],
)
def test_a_bad_environment_variable_is_named_at_first_use_not_at_import(variable, value, message):
    code = (
        "import numpy as np, symloss\n"
        "print('imported')\n"
        "symloss.get('mse')(np.ones(3), np.zeros(3))\n"
    )
    env = {**os.environ, variable: value, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "imported"
    assert out.returncode == 1 and message in out.stderr


def test_the_cli_reports_a_bad_environment_variable_in_one_line():
    """One line naming the variable, exit status 1 (an error, not a command-line slip)."""
    env = {**os.environ, "SYMLOSS_BLOCK_ELEMENTS": "1e5", "PYTHONPATH": str(ROOT)}
    code = "import sys; from symloss.cli import main; sys.exit(main(['table', 'bce']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "SYMLOSS_BLOCK_ELEMENTS" in out.stderr


def test_an_explicit_setting_replaces_a_bad_environment_value():
    env = {**os.environ, "SYMLOSS_BACKEND": "nope", "PYTHONPATH": str(ROOT)}
    code = (
        "import numpy as np, symloss\n"
        "symloss.set_backend('fused')\n"
        "print(symloss.get('mse')(np.ones(3), np.zeros(3)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 1.0
