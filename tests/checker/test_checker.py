"""The gradient checker: every classic bug is caught and named, and right code passes.

The user implementations live in ``checker_gallery.py`` (importable by the CLI as
``checker_gallery:NAME``).  Each gallery test states exactly which checks and input
families must fail and what the diagnosis must say, so a checker that fails everything,
or names the wrong cause, fails here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import checker_gallery as G
import numpy as np
import pytest
import sympy as sp
from conftest import registry_params, require
from shared import ROOT

import symloss
from symloss.checker import CheckFailed, Report, check
from symloss.cli.check import add_cli, run_cli
from symloss.testing import assert_gradient_matches

TESTS = Path(__file__).parent
BCE_LOGITS_FAMILIES = {"interior", "edges", "hard", "smoothed", "soft"}
CCE_FAMILIES = {"interior", "edges", "one-hot", "smoothed", "soft", "unnormalised"}


def failing(report: Report) -> set[tuple[str, str]]:
    return {(f.check, f.family) for f in report.failures()}


def diagnoses(report: Report) -> set[str]:
    return {f.diagnosis for f in report.failures()}


# ------------------------------------------------------------------ the gallery
@dataclass
class Bug:
    id: str
    loss: object
    value: object = None
    grad: object = None
    fails: frozenset = frozenset()  # exactly these (check, family) pairs fail
    says: tuple[str, ...] = ()  # every failing diagnosis contains each of these


def on(check_name, families):
    return {(check_name, f) for f in families}


GALLERY = [
    Bug("softmax_minus_t_shortcut", "cce_logits", grad=G.cce_logits_grad_shortcut,
        fails=on("gradient", {"unnormalised"}),
        says=("(softmax(z, i, j) - t[i, j])/n, which assumes each target row sums to 1",
              "(softmax(z, i, j)*Sum(t[i, k], (k, 1, m)) - t[i, j])/n")),
    Bug("missing_1_over_n", "bce_logits", grad=G.bce_logits_grad_no_mean,
        fails=on("gradient", BCE_LOGITS_FAMILIES),
        says=("your gradient is 7.0× the truth at n = 7 (n× at every size tried: n = 3, 5, 7)",
              "did you forget the 1/n of the mean reduction?")),
    Bug("flipped_sign", "bce", grad=G.bce_grad_flipped,
        fails=on("gradient", BCE_LOGITS_FAMILIES),
        says=("your gradient is -1.0× the truth: flipped sign",)),
    Bug("log_without_clipping", "bce", value=G.bce_value_unclipped,
        fails=on("value", {"edges"}),
        says=("returns NaN at y[", "log (or a division) without clipping?")),
    Bug("naive_sigmoid_bce_overflows", "bce_logits", value=G.bce_logits_value_naive,
        fails=on("value", {"edges"}),
        says=("at z[", "= 10000", "at a large logit: use a stable form")),
    Bug("sse_without_the_half", "sse", value=G.sse_value_no_half, grad=G.sse_grad_no_half,
        fails=on("value", {"interior", "edges"}) | on("gradient", {"interior", "edges"}),
        says=("2.0× the truth: did you drop the ½ factor?",)),
    Bug("sum_instead_of_mean", "bce_logits", value=G.bce_logits_value_sum,
        fails=on("value", BCE_LOGITS_FAMILIES),
        says=("your loss value is 7.0× the truth", "a sum instead of the mean (over n)?")),
    Bug("softmax_over_the_wrong_axis", "cce_logits", grad=G.cce_logits_grad_axis0,
        fails=on("gradient", CCE_FAMILIES),
        says=("changes when another sample's inputs change", "over the wrong axis")),
    Bug("label_smoothing_on_the_wrong_axis", G.SMOOTHED_CE,
        value=G.smoothed_ce_value_wrong_axis, grad=G.smoothed_ce_grad_wrong_axis,
        fails=on("value", CCE_FAMILIES) | on("gradient", CCE_FAMILIES),
        says=("matches the loss with m replaced by n: a size read from the wrong axis",)),
    Bug("huber_wrong_only_outside_delta", G.HUBER, grad=G.huber_grad_wrong_outside,
        fails=on("gradient", {"interior", "edges", "kinks"}),
        says=("wrong only where Abs(t[i] - y[i]) > 1.0 (branch 2 of the Piecewise)",)),
    Bug("focal_without_gammas_derivative", G.FOCAL, grad=G.focal_grad_no_gamma_term,
        fails=on("gradient", BCE_LOGITS_FAMILIES),
        says=("equals the truth without the term(s) (2 - 2*y[i])*log(y[i])*t[i]/n and "
              "-2*(1 - t[i])*log(1 - y[i])*y[i]/n", "missing")),
    Bug("mean_over_every_element", "cce_logits", grad=G.cce_logits_grad_mean_all,
        fails=on("gradient", CCE_FAMILIES),
        says=("(1/m× at every size tried: m = 4, 6)", "did you divide by m?")),
]  # fmt: skip


@pytest.mark.parametrize("bug", GALLERY, ids=[b.id for b in GALLERY])
def test_each_bug_is_caught_with_its_diagnosis(bug):
    report = check(bug.loss, value=bug.value, grad=bug.grad)
    assert not report.ok
    assert failing(report) == set(bug.fails), str(report)
    for diagnosis in diagnoses(report):
        for phrase in bug.says:
            assert phrase in diagnosis, f"{phrase!r} not in {diagnosis!r}"
    for f in report.failures():
        assert f.worst.endswith(f"{f.family})"), f.worst  # the worst input names its family


def test_the_gallery_has_at_least_ten_bugs():
    assert len(GALLERY) >= 10


def test_nan_is_located_at_an_endpoint_the_loss_handles():
    report = check("bce", value=G.bce_value_unclipped)
    (diagnosis,) = diagnoses(report)
    where = re.search(r"returns NaN at y\[(\d+)\] = (\S+) \(t\[\d+\] = (\S+);", diagnosis)
    assert where is not None, diagnosis
    y, t = float(where.group(2)), float(where.group(3))
    assert y in (0.0, 1.0) and t == y  # 0 log 0: the loss is finite, the naive code is not


CORRECT = [
    ("bce", G.bce_value, G.bce_grad),
    ("bce_logits", G.bce_logits_value, G.bce_logits_grad),
    ("cce", G.cce_value, G.cce_grad),
    ("cce_logits", G.cce_logits_value, G.cce_logits_grad),
    ("sse", G.sse_value, G.sse_grad),
    (G.MAE, G.mae_value, G.mae_grad),
    (G.HUBER, G.huber_value, G.huber_grad),
    (G.FOCAL, G.focal_value, G.focal_grad),
    (G.SMOOTHED_CE, G.smoothed_ce_value, G.smoothed_ce_grad),
]
CORRECT_IDS = [c[0] if isinstance(c[0], str) else c[0].name for c in CORRECT]


@pytest.mark.parametrize("loss, value, grad", CORRECT, ids=CORRECT_IDS)
def test_correct_code_passes_every_family(loss, value, grad):
    report = check(loss, value=value, grad=grad)
    assert report.ok, str(report)
    assert all(f.verdict == "ok" or f.family == "labels" for f in report.findings)
    assert {f.family for f in report.findings} >= {"interior", "edges"}


@pytest.mark.parametrize("loss, value, grad", CORRECT, ids=CORRECT_IDS)
def test_no_false_alarms_over_100_seeds(loss, value, grad):
    alarms = [s for s in range(100) if not check(loss, value=value, grad=grad, samples=2, seed=s)]
    assert alarms == []


@registry_params()
def test_every_registered_loss_passes_its_own_check(loss):
    # symloss's own functions as the "user" code: a false alarm here is a checker bug
    # (or a kernel bug).  They refuse unnormalised targets (ValueError): refused, not failed.
    report = check(loss, value=loss, grad=loss.grad, samples=4)
    assert report.ok, str(report)
    assert all(k.ok for k in report.kinks)


# ------------------------------------------------------- what finite differences miss
def central_differences(f, x, t, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up, t) - f(down, t)) / (2 * h)
    return g


def test_shortcut_passes_finite_differences_but_not_symloss():
    rng = np.random.default_rng(1)
    z, t = rng.normal(size=(5, 4)), np.eye(4)[rng.integers(0, 4, 5)]
    # What gradcheck, check_grads and check_grad do: the code against its own differences.
    fd = central_differences(G.cce_logits_value, z, t)
    np.testing.assert_allclose(G.cce_logits_grad_shortcut(z, t), fd, rtol=1e-6, atol=1e-9)
    report = check("cce_logits", value=G.cce_logits_value, grad=G.cce_logits_grad_shortcut)
    assert failing(report) == {("gradient", "unnormalised")}


def test_torch_gradcheck_passes_the_shortcut_with_one_hot_targets():
    require("torch")
    report = check(
        "cce_logits", value=G.torch_cce_logits_value, grad=G.torch_cce_logits_grad_shortcut,
        torch=True, samples=5,
    )  # fmt: skip
    assert report.gradcheck["one-hot"] is True  # torch's own checker is satisfied
    assert failing(report) == {("gradient", "unnormalised")}
    assert "gradcheck" in str(report)


def test_torch_autograd_of_a_correct_loss_passes_including_labels():
    require("torch")
    report = check("cce_logits", value=G.torch_cross_entropy, torch=True, samples=3)
    assert report.ok, str(report)
    rows = {(f.check, f.family): f.verdict for f in report.findings}
    assert rows[("gradient (autograd)", "labels")] == "ok"
    assert rows[("gradient (autograd)", "unnormalised")] == "ok"


def test_torch_autograd_of_a_naive_loss_overflows_at_the_edges():
    require("torch")
    report = check("bce_logits", value=G.torch_bce_logits_value_naive, torch=True, samples=10)
    assert failing(report) == {("value", "edges"), ("gradient (autograd)", "edges")}
    assert all("large logit" in d for d in diagnoses(report))


# ----------------------------------------------------------------------- kinks
def test_kinks_are_derived_from_the_expression():
    from symloss.checker.inputs import kink_solutions

    where = [w for w, _ in kink_solutions(G.HUBER)]
    assert any("y[i] = t[i] - 1.0" in w for w in where)
    assert any("y[i] = t[i] + 1.0" in w for w in where)


@pytest.mark.parametrize(
    "grad, choice",
    [(G.mae_grad, "the midpoint"), (G.mae_grad_right, "the right derivative")],
    ids=["sign(0)=0", "right"],
)
def test_at_a_kink_the_chosen_subgradient_is_reported_not_failed(grad, choice):
    report = check(G.MAE, value=G.mae_value, grad=grad)
    assert report.ok, str(report)
    (kink,) = report.kinks
    assert kink.where.startswith("y[i] = t[i]")
    assert set(kink.choices) == {choice} and kink.choices[choice] > 10
    assert f"your gradient chose {choice}" in str(report)


def test_a_value_outside_the_subdifferential_fails():
    report = check(G.MAE, grad=G.mae_grad_outside)
    assert not report.ok and failing(report) == set()
    (kink,) = report.kinks
    assert not kink.ok and "outside the subdifferential" in str(report)


@pytest.mark.parametrize("loss, grad", [(G.HUBER, G.huber_grad), (G.SQUARED_RELU, G.squared_relu_grad)],
                         ids=["huber", "squared_relu"])  # fmt: skip
def test_a_continuous_gradient_has_no_kink_to_report(loss, grad):
    # |r| = δ, r = 0 and max(0, r) appear in the expressions, but both gradients are
    # continuous there (for max(0, r)², one side of the gradient is exactly zero).
    report = check(loss, grad=grad)
    assert report.ok and report.kinks == [], str(report)
    assert any(f.family == "kinks" for f in report.findings)


# ------------------------------------------------------------------- tolerance
@pytest.mark.parametrize("c", [1e-6, 1.0, 1e6])
def test_tolerance_is_relative_to_the_loss_scale(c):
    # SciPy's check_grad reports 2.6e-13, 2.1e-7 and 0.23 for these three: one absolute
    # number cannot judge them all.  A relative error of 1e-5 is caught at every scale.
    y, t = symloss.array("y"), symloss.array("t")
    i = symloss.index("i")
    L = symloss.Loss("scaled", "scaled", (y[i] - t[i]) ** 2, sp.Float(c) / 2, ((i, symloss.n),),
                     y, t, reduction="sum")  # fmt: skip
    assert check(L, grad=lambda p, q: c * (p - q))
    assert not check(L, grad=lambda p, q: c * (p - q) * (1 + 1e-5))


def test_float32_code_is_judged_by_float32_precision():
    def grad32(z, t):
        z, t = z.astype(np.float32), t.astype(np.float32)
        return ((1 / (1 + np.exp(-np.clip(z, -80, 80)))) - t) / np.float32(len(z))

    from symloss.checker.diagnose import rtol_for

    assert rtol_for(np.float64) == 1e-7 and rtol_for(np.float32) == pytest.approx(3.45e-4, rel=1e-2)
    assert check("bce_logits", grad=grad32, families=("interior", "soft"))
    assert not check("bce_logits", grad=grad32, families=("interior",), rtol=1e-12)


def test_params_bind_through_the_registry():
    # The gradient without the 1/n is exactly right for the sum reduction.
    assert check("bce_logits", grad=G.bce_logits_grad_no_mean, params={"reduction": "sum"})
    with pytest.raises(TypeError, match="unexpected option"):
        check("bce", grad=G.bce_grad, params={"delta": 1.0})
    with pytest.raises(TypeError, match="not a registered loss"):
        check(G.MAE, grad=G.mae_grad, params={"reduction": "sum"})


# ---------------------------------------------------------------------- report
def test_report_api():
    report = check("bce_logits", value=G.bce_logits_value, grad=G.bce_logits_grad_no_mean)
    assert report.ok is False and not report
    text = str(report)
    assert "max rel err" in text and "verdict: FAIL" in text
    with pytest.raises(AssertionError, match="did you forget the 1/n") as info:
        report.raise_if_failed()
    assert isinstance(info.value, CheckFailed) and info.value.report is report
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["ok"] is False and data["loss"] == "sigmoid_binary_cross_entropy"
    worst = next(f for f in data["findings"] if f["verdict"] == "FAIL")["worst_input"]
    z, t = np.array(worst["pred"]), np.array(worst["target"])
    assert not np.allclose(G.bce_logits_grad_no_mean(z, t), symloss.get("bce_logits").grad(z, t))
    passed = check("bce_logits", grad=G.bce_logits_grad)
    assert passed and "verdict: ok" in str(passed)
    passed.raise_if_failed()


def test_same_seed_same_report_and_families_filter():
    a = check("cce_logits", grad=G.cce_logits_grad_shortcut, seed=3, samples=4)
    b = check("cce_logits", grad=G.cce_logits_grad_shortcut, seed=3, samples=4)
    assert a.to_dict() == b.to_dict()
    only = check("cce_logits", grad=G.cce_logits_grad_shortcut, families=("one-hot",))
    assert only.ok and [f.family for f in only.findings] == ["one-hot"]


def test_raising_wrong_shapes_and_unreduced_values_are_failures():
    boom = check("cce_logits", value=G.cce_logits_value_raises)
    assert "raised RuntimeError: boom" in str(boom) and not boom
    shape = check("bce_logits", grad=lambda z, t: (G.bce_logits_grad(z, t))[:-1])
    assert "returns shape" in shape.failures()[0].diagnosis
    per_sample = check("bce_logits", value=lambda z, t: np.logaddexp(0, z) - t * z)
    assert "per-sample values, not reduced" in per_sample.failures()[0].diagnosis


def test_argument_errors():
    with pytest.raises(ValueError, match="value=, grad= or both"):
        check("bce")
    with pytest.raises(ValueError, match="choose from interior, edges, hard"):
        check("bce", grad=G.bce_grad, families=("one-hot",))
    with pytest.raises(ValueError, match="samples must be at least 1"):
        check("bce", grad=G.bce_grad, samples=0)


def test_assert_gradient_matches():
    assert assert_gradient_matches("cce_logits", G.cce_logits_grad, G.cce_logits_value) is None
    with pytest.raises(AssertionError, match="which assumes each target row sums to 1"):
        assert_gradient_matches("cce_logits", G.cce_logits_grad_shortcut, samples=5)


# -------------------------------------------------------------------------- CLI
def cli(*argv):
    parser = argparse.ArgumentParser(prog="symloss")
    add_cli(parser.add_subparsers(dest="command", required=True))
    return run_cli(parser.parse_args(list(argv)))


def test_cli_exit_codes_and_report(capsys):
    assert cli("check", "cce_logits", "checker_gallery:cce_logits_value",
               "--grad", "checker_gallery:cce_logits_grad", "--samples", "3") == 0  # fmt: skip
    assert "verdict: ok" in capsys.readouterr().out
    assert cli("check", "cce_logits", "--grad", "checker_gallery:cce_logits_grad_shortcut") == 1
    assert "which assumes each target row sums to 1" in capsys.readouterr().out


def test_cli_json(capsys):
    rc = cli("check", "bce_logits", "--grad", "checker_gallery:bce_logits_grad_no_mean",
             "--json", "--seed", "2", "--samples", "3")  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert rc == 1 and data["ok"] is False and data["seed"] == 2
    assert "did you forget the 1/n" in data["findings"][1]["diagnosis"]


def test_cli_params(capsys):
    rc = cli("check", "bce_logits", "--grad", "checker_gallery:bce_logits_grad_no_mean",
             "--param", "reduction=sum", "--samples", "3")  # fmt: skip
    assert rc == 0, capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope", "checker_gallery:bce_value"], "unknown loss 'nope'"),
        (["bce", "no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
        (["bce", "checker_gallery:missing"], "has no attribute 'missing'"),
        (["bce", "checker_gallery:NOT_CALLABLE"], "is not callable"),
        (["bce", "checker_gallery"], "expected MODULE:FUNCTION"),
        (["bce"], "check needs your loss function"),
        (["bce", "checker_gallery:bce_value", "--param", "delta=1"], "unexpected option"),
        (["bce", "checker_gallery:bce_value", "--param", "delta"], "expects NAME=VALUE"),
    ],
    ids=["loss", "module", "attribute", "callable", "spec", "nothing", "param", "param-form"],
)
def test_cli_usage_errors_print_one_line_and_exit_2(capsys, argv, message):
    assert cli("check", *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("symloss: error: ")


def env_with_tests_on_path() -> dict:
    """The environment with tests/ on PYTHONPATH, so that checker_gallery imports."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_python(code: str):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env_with_tests_on_path(), cwd=ROOT)  # fmt: skip


HARNESS = """
import argparse, sys
from symloss.cli.check import add_cli, run_cli
p = argparse.ArgumentParser(prog="symloss")
add_cli(p.add_subparsers(dest="command"))
sys.exit(run_cli(p.parse_args(sys.argv[1:])))
"""


def test_cli_in_a_fresh_process_imports_by_path_and_never_shows_a_traceback():
    out = run_python(HARNESS.replace("sys.argv[1:]", "['check', 'bce', 'checker_gallery:nope']"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0
    out = run_python(HARNESS.replace(
        "sys.argv[1:]", "['check', 'sse', 'checker_gallery:sse_value_no_half', '--samples', '3']"
    ))  # fmt: skip
    assert out.returncode == 1 and "did you drop the ½ factor" in out.stdout


def test_symloss_check_command():
    # Through the real entry point; passes once symloss.cli wires add_cli/run_cli.
    from symloss.cli import main

    assert main(["check", "cce_logits", "--grad", "checker_gallery:cce_logits_grad",
                 "--samples", "3"]) == 0  # fmt: skip
    assert main(["check", "cce_logits", "--grad", "checker_gallery:cce_logits_grad_shortcut",
                 "--samples", "3"]) == 1  # fmt: skip
    assert main(["check", "cce_logits", "checker_gallery:nope"]) == 2
    out = subprocess.run(
        [sys.executable, "-m", "symloss", "check", "sse", "checker_gallery:sse_value_no_half"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env_with_tests_on_path(),
    )  # fmt: skip
    assert out.returncode == 1 and "did you drop the ½ factor" in out.stdout
