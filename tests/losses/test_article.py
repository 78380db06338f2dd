"""The source article (shared/ARTICLE.md): its formulas, its table, and its gradients."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import sympy as sp
from shared import ARTICLE_FORMULAS

import symloss
from symloss import m, n, sigmoid, softmax

# Copied verbatim from shared/ARTICLE.md (9cubed, 2019-09-15).


def _squash(tex: str) -> str:
    return re.sub(r"\s+", "", tex.replace(r"\,", ""))


@pytest.mark.parametrize("name", ARTICLE_FORMULAS)
def test_article_style_reproduces_the_article(name):
    assert _squash(symloss.get(name).latex(style="article")) == _squash(ARTICLE_FORMULAS[name])


def test_article_style_keeps_the_articles_spacing_habits():
    tex = symloss.get("bce").latex(style="article")
    assert r"t_i\,log\,y_i" in tex and r"\,log(1 - y_i)" in tex and r"\sum_{i\,=\,1}" in tex


# The article's table, computed by hand with math.log (natural log), rounded to 2 decimals
# as printed in the article.
ARTICLE_TABLE = [
    (0.2, 0, 0.0, -0.22),
    (0.8, 0, 0.0, -1.61),
    (0.2, 1, -1.61, 0.0),
    (0.8, 1, -0.22, 0.0),
]


def test_article_table_values():
    from symloss.docs.table import per_sample_terms

    y = np.array([r[0] for r in ARTICLE_TABLE])
    t = np.array([r[1] for r in ARTICLE_TABLE], dtype=float)
    headers, (first, second) = per_sample_terms(symloss.get("bce"), y, t)
    assert headers == ["tᵢ log(yᵢ)", "(1 - tᵢ) log(1 - yᵢ)"]
    for row, a, b in zip(ARTICLE_TABLE, first, second):
        assert round(a, 2) == row[2] and round(b, 2) == row[3]
        yi, ti = row[0], row[1]
        exact_a = ti * math.log(yi) if ti else 0.0
        exact_b = (1 - ti) * math.log(1 - yi) if ti != 1 else 0.0
        assert a == pytest.approx(exact_a, rel=1e-12, abs=0)
        assert b == pytest.approx(exact_b, rel=1e-12, abs=0)


y, t, z = symloss.array("y"), symloss.array("t"), symloss.array("z")
i, j, k = (symloss.index(c) for c in "ijk")


def test_sse_gradient_and_hessian():
    L = symloss.get("sse")
    assert sp.expand(L.gradient() - (y[k] - t[k])) == 0
    assert L.hessian() == 1


def test_bce_gradient_is_the_textbook_form():
    # Hand derivation: d/dy of -(t log y + (1-t) log(1-y))/n.
    expected = -(t[i] / y[i] - (1 - t[i]) / (1 - y[i])) / n
    assert sp.simplify(symloss.get("bce").gradient() - expected) == 0


def test_sigmoid_bce_gradient_is_y_minus_t_over_n():
    assert symloss.get("bce_logits").gradient() == (sigmoid(z[i]) - t[i]) / n
    assert symloss.get("bce_logits").constraints_used() == ()


def test_softmax_ce_gradient_uses_and_names_the_one_hot_constraint():
    L = symloss.get("cce_logits")
    assert L.gradient() == (softmax(z, i, j) - t[i, j]) / n
    assert [c.name for c in L.constraints_used()] == ["one_hot"]
    general = L.general_gradient()
    expected = (softmax(z, i, j) * sp.Sum(t[i, k], (k, 1, m)) - t[i, j]) / n
    assert sp.simplify(general - expected) == 0


def test_softmax_hessian_block_is_diag_p_minus_ppT_over_n():
    L = symloss.get("cce_logits")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4))
    target = np.eye(4)[[0, 3, 1]]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = np.stack([(np.diag(r) - np.outer(r, r)) / 3 for r in p])
    np.testing.assert_allclose(L.hess(logits, target), expected, rtol=1e-13, atol=1e-16)
