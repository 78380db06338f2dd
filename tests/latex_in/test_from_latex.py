"""from_latex and identify: the article's formulas, the round trip over the registry, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from conftest import LOSSES
from shared import ARTICLE_FORMULAS

import symloss
from symloss.latex_in.convert import equivalent

NAMES = {
    "sse": "sum_squared_error",
    "bce": "binary_cross_entropy",
    "cce": "categorical_cross_entropy",
}


@pytest.mark.parametrize("alias", ARTICLE_FORMULAS)
def test_article_formulas_parse_to_the_registered_losses(alias):
    L = symloss.from_latex(ARTICLE_FORMULAS[alias])
    assert symloss.identify(L) == NAMES[alias]
    R = symloss.get(alias)
    assert sp.simplify(L.gradient() - R.gradient()) == 0


def test_parsed_bce_has_the_same_numbers_and_gradient():
    L = symloss.from_latex(ARTICLE_FORMULAS["bce"])
    y, t = np.array([0.2, 0.8, 0.2, 0.8]), np.array([0.0, 0.0, 1.0, 1.0])
    R = symloss.get("bce")
    assert L(y, t) == pytest.approx(R(y, t), rel=1e-15)
    np.testing.assert_allclose(L.grad(y, t), R.grad(y, t), rtol=1e-15)


def _params(L):
    present = {str(s) for s in L.term.free_symbols}
    return {str(p.symbol): p.default for p in L.params if str(p.symbol) in present}


@pytest.mark.parametrize("style", ["standard", "article"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda L: L.name)
def test_round_trip_through_latex(loss, style):
    parsed = symloss.from_latex(loss.latex(style=style), params=_params(loss))
    assert equivalent(parsed, loss), loss.latex(style=style)


def test_extra_inputs_and_row_maxima_parse():
    # Gaussian NLL's variance is an upright multi-letter array; \max_{j} binds j like a sum.
    L = symloss.from_latex(
        r"\frac{1}{2 n}\sum_{i=1}^{n}\left(\log{\left(\mathrm{var}_{i}\right)}"
        r" + \frac{\left(y_{i} - t_{i}\right)^{2}}{\mathrm{var}_{i}}\right)"
    )
    assert [str(b.label) for b in L.extra_inputs] == ["var"]
    # Hand value: (log 2 + 0.09 / 2) / 2.
    assert L(np.array([0.5]), np.array([0.2]), var=np.array([2.0])) == pytest.approx(
        (np.log(2.0) + 0.09 / 2) / 2, rel=1e-14
    )
    M = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n} \max_{j}\left(y_{ij}\right)")
    assert M(np.array([[0.1, 0.7, 0.3]]), np.zeros((1, 3))) == pytest.approx(0.7)


def test_identify_rejects_a_different_loss():
    L = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n} \left(y_{i} - t_{i}\right)^{4}")
    assert symloss.identify(L) is None


def test_identify_sees_through_rewriting():
    # The article's SSE written expanded and with another index letter.
    L = symloss.from_latex(r"\frac{1}{2}\sum_{i=1}^{n} (y_i^2 - 2 y_i t_i + t_i^2)")
    assert symloss.identify(L) == "sum_squared_error"


@pytest.mark.parametrize(
    "tex, reason, position",
    [
        (r"E = (y - t)^2", "no sum over the samples", 0),
        (r"\frac{1}{n}\sum_{i=1}^{n} \foo(y_i)", "unknown function", 26),
        (r"\frac{1}{n}\sum_{i=1}^{n} (y_i - t_i", "", None),
    ],
)
def test_errors_have_a_reason_and_a_position(tex, reason, position):
    with pytest.raises(symloss.ParseError) as info:
        symloss.from_latex(tex)
    err = info.value
    assert reason in err.reason
    assert 0 <= err.position <= len(tex)
    if position is not None:
        assert err.position == position
    assert err.caret().splitlines()[1].index("^") == err.position


def test_declared_parameters_bind():
    L = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n} \alpha (y_i - t_i)^2", params={"alpha": 3.0})
    assert L(np.array([1.0]), np.array([0.0])) == 3.0


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "symloss", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_parse_identifies_the_article_formula():
    out = run("parse", ARTICLE_FORMULAS["bce"], "--identify")
    assert out.returncode == 0, out.stderr
    assert "identified: binary_cross_entropy" in out.stdout
    assert "∂E/∂yᵢ" in out.stdout


def test_cli_parse_error_shows_a_caret():
    tex = r"\frac{1}{n}\sum_{i=1}^{n} \foo(y_i)"
    out = run("parse", tex)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    assert "unknown function" in lines[0]
    assert lines[1] == tex and lines[2] == " " * 26 + "^"
