"""``symloss build``, the remembered toolchain failure, and libmvec's names (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from shared import ROOT

from symloss.numeric import compiled


def _run(args, env_extra, code=None, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "symloss", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


#: A large first call of each loss, in a process whose compiler must never run.
_NO_COMPILER_NEEDED = """
import numpy as np, symloss
from symloss.numeric import compiled
def refuse(code):
    raise AssertionError("compiled on first use: " + code[:200])
compiled._compile_object = refuse
z = np.random.default_rng(0).normal(size=100_000)
L = symloss.get("bce_logits")
L.value_and_grad(z, (z > 0) * 1.0); L(z, (z > 0) * 1.0); L.grad(z, (z > 0) * 1.0)
C = symloss.get("cce_logits")
zz = z.reshape(-1, 10); labels = np.arange(10_000) % 10
C.value_and_grad(zz, np.eye(10)[labels]); C(zz, labels); C.grad(zz, labels)
assert not compiled.environment_failed(), compiled.environment_error()
print("ok")
"""


@pytest.mark.usefixtures("backend_c")  # needs a working compiler
def test_build_fills_the_cache_so_that_first_use_compiles_nothing(tmp_path):
    env = {"SYMLOSS_CACHE_DIR": str(tmp_path)}
    done = _run(["build", "bce_logits", "cce_logits", "--quiet"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert any(p.name.endswith(".so") for p in (tmp_path / "kernels").iterdir())
    used = _run([], env, _NO_COMPILER_NEEDED)
    assert used.returncode == 0 and used.stdout.strip() == "ok", used.stderr
    # Without the build, the same process does compile: the check above can fail.
    cold = _run([], {"SYMLOSS_CACHE_DIR": str(tmp_path / "empty")}, _NO_COMPILER_NEEDED)
    assert cold.returncode != 0 and "compiled on first use" in cold.stderr


@pytest.mark.slow  # two builds and three processes: 10 to 30 s
@pytest.mark.usefixtures("backend_c")
def test_build_float32_fills_the_cache_for_float32_inputs(tmp_path):
    """--float32 builds the float32 loops too: a float32 first call compiles nothing;
    without it, the float64 build leaves the float32 call to compile."""
    code = _NO_COMPILER_NEEDED.replace("size=100_000)", "size=100_000).astype(np.float32)")
    code = code.replace("np.eye(10)[labels]", "np.eye(10, dtype=np.float32)[labels]")
    code = code.replace("(z > 0) * 1.0", "(z > 0).astype(np.float32)")
    env = {"SYMLOSS_CACHE_DIR": str(tmp_path / "f32")}
    done = _run(["build", "bce_logits", "cce_logits", "--float32", "--quiet"], env)
    assert done.returncode == 0, done.stderr
    used = _run([], env, code)
    assert used.returncode == 0 and used.stdout.strip() == "ok", used.stderr
    env = {"SYMLOSS_CACHE_DIR": str(tmp_path / "f64")}
    assert _run(["build", "bce_logits", "cce_logits", "--quiet"], env).returncode == 0
    cold = _run([], env, code)
    assert cold.returncode != 0 and "compiled on first use" in cold.stderr


@pytest.mark.usefixtures("backend_c")
def test_build_reports_progress_and_its_cache(tmp_path):
    done = _run(["build", "mse"], {"SYMLOSS_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "[1/1] mean_squared_error" in done.stderr
    assert "built the kernels of 1 loss(es)" in done.stdout and str(tmp_path) in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give loss names, or --all"),
        (["bce", "--all"], "not both"),
        (["no_such_loss"], "no_such_loss"),
        (["cce", "--classes", "0"], "class counts"),
    ],
)
def test_build_usage_errors_exit_2(tmp_path, args, message):
    done = _run(["build", *args], {"SYMLOSS_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 2 and message in done.stderr


_FIRST_CALL = """
import numpy as np, symloss
from symloss.numeric import compiled
z = np.random.default_rng(0).normal(size=100_000)
symloss.get("bce_logits").value_and_grad(z, (z > 0) * 1.0)
print(compiled.environment_error())
"""


def test_a_toolchain_failure_is_remembered_on_disk_until_build_retries(tmp_path):
    log = tmp_path / "runs"
    cc = tmp_path / "badcc"
    cc.write_text(f'#!/bin/sh\necho run >> "{log}"\necho "error: no C headers" >&2\nexit 1\n')
    cc.chmod(0o755)
    env = {"SYMLOSS_CACHE_DIR": str(tmp_path / "cache"), "CC": str(cc)}
    runs = lambda: len(log.read_text().splitlines()) if log.exists() else 0  # noqa: E731

    first = _run([], env, _FIRST_CALL)
    assert first.returncode == 0 and "cannot build kernels here" in first.stdout, first.stderr
    assert runs() == 2  # the kernel, then the empty kernel that blames the toolchain
    second = _run([], env, _FIRST_CALL)
    assert second.returncode == 0 and "remembered from an earlier process" in second.stdout
    assert runs() == 2  # not run again
    built = _run(["build", "bce_logits", "--quiet"], env)
    assert built.returncode == 1 and "no kernels can be compiled here" in built.stderr
    assert runs() == 4  # build tries again
    # Another compiler (or C library) is another key: tried afresh.
    other = tmp_path / "othercc"
    other.write_text(cc.read_text())
    other.chmod(0o755)
    _run([], {**env, "CC": str(other)}, _FIRST_CALL)
    assert runs() == 6


def test_a_single_kernels_compile_error_is_not_remembered_as_the_toolchains(tmp_path, monkeypatch):
    """Only an environment failure that an empty kernel confirms is written down."""
    monkeypatch.setattr(compiled, "cache_dir", lambda: tmp_path)
    folder, real = compiled._open_cache()
    os.close(folder)
    monkeypatch.setattr(
        compiled, "_compile_object", lambda code: (_ for _ in ()).throw(compiled.Unavailable("x"))
    )
    with pytest.raises(compiled.Unavailable):
        compiled._build("int f(void) { return 1; }\n")
    assert not [p for p in (tmp_path / "kernels").iterdir() if p.name.startswith("toolchain-")]


@pytest.mark.parametrize(
    "machine, prefix",
    [
        ("x86_64", "_ZGVbN2"),
        ("AMD64", "_ZGVbN2"),
        ("aarch64", "_ZGVnN2"),
        ("arm64", "_ZGVnN2"),
        ("ppc64le", None),
        ("riscv64", None),
    ],
)
def test_libmvec_names_are_those_of_the_machines_vector_abi(machine, prefix):
    assert compiled._vector_prefix(machine) == prefix
