"""Named quantities: declared once per family, written into derivations, expanded back.

The numeric check that every named form equals its expanded form (with the "where"
block substituted back) is in ``test_derivation.py::test_every_equality_holds_numerically``;
here: the declarations, the substitution itself, and what the pages gain.
"""

from __future__ import annotations

import pytest
import sympy as sp

import symloss
from symloss.printing import latex_expr
from symloss.symbolic.naming import Named, expand, in_names
from symloss.symbols import array, index, softmax

y, t, z, e = array("y"), array("t"), array("z"), array("e")
i, j, k, l = index("i"), index("j"), index("k"), index("l")
NAMED = [L for L in symloss.catalog() if L.named]


def test_families_declare_their_quantities():
    by_name = {L.name: {str(q.name.base.label) for q in L.named} for L in NAMED}
    assert by_name["huber"] == {"e"}
    assert by_name["tversky"] == by_name["dice"] == {"TP", "FP", "FN"}
    assert by_name["sigmoid_focal"] == {"p", "alpha_t", "p_t"}
    assert by_name["softmax_focal"] == {"p"}
    assert by_name["hinge"] == {"mu"}
    # One declaration object per family, shared by its losses.
    regression = [symloss.get(n).named for n in ("mse", "mae", "huber", "log_cosh")]
    assert all(r[0] is regression[0][0] for r in regression)


@pytest.mark.parametrize("loss", NAMED, ids=lambda L: L.name)
def test_names_are_new_symbols_with_a_description(loss):
    taken = {str(s) for s in loss.expr.free_symbols} | {
        str(loss.pred.label),
        str(loss.target.label),
    }
    for q in loss.named:
        assert q.description
        assert str(q.name.base.label) not in taken
        for form, named in q.also:
            # An "also" form is the named one once the names are expanded (by hand:
            # (1 - p) t + (1 - t) p = 1 - (p t + (1 - p)(1 - t))).
            where = [(r.name, r.definition) for r in loss.named]
            assert sp.expand(expand(named, where) - expand(form, where)) == 0


def test_residual_is_found_negated_and_inside_functions():
    residual = Named(e[i], y[i] - t[i], "the residual")
    named, where = in_names(sp.Abs(t[i] - y[i]) + sp.sign(t[i] - y[i]) * (y[i] - t[i]), [residual])
    assert named == sp.Abs(e[i]) - sp.sign(e[i]) * e[i]
    assert where == ((e[i], y[i] - t[i]),)
    assert expand(named, where) == sp.Abs(t[i] - y[i]) - sp.sign(y[i] - t[i]) * (y[i] - t[i])


def test_a_row_sum_is_named_whatever_its_bound_letter():
    tp = Named(array("TP")[i], sp.Sum(y[i, k] * t[i, k], (k, 1, symloss.m)), "true positives")
    expr = 1 / (1 + sp.Sum(y[i, l] * t[i, l], (l, 1, symloss.m)))
    named, where = in_names(expr, [tp])
    assert named == 1 / (1 + array("TP")[i])
    assert where == ((tp.name, tp.definition),)


def test_a_name_at_several_letters_is_defined_once_as_declared():
    p = Named(array("p")[i, j], softmax(z, i, j), "the softmax")
    expr = softmax(z, i, j) * sp.Sum(softmax(z, i, k) * t[i, k], (k, 1, symloss.m))
    named, where = in_names(expr, [p])
    assert named == array("p")[i, j] * sp.Sum(array("p")[i, k] * t[i, k], (k, 1, symloss.m))
    assert where == ((array("p")[i, j], softmax(z, i, j)),)
    assert expand(named, where) == expr


def test_names_shorten_the_walls_the_issue_measured():
    """Issue 16 measured softmax_focal's gradient at 779 LaTeX characters and its
    Hessian at 4,035; Tversky's gradient is a wall of repeated row sums."""
    focal = symloss.get("softmax_focal")
    assert len(focal.latex(part="gradient")) == 779  # the expanded form is unchanged
    (grad,) = [s for s in focal.derivation() if s.title == "Simplify"]
    assert len(latex_expr(grad.shown[-1])) < 779 // 2
    assert grad.where_latex() == r"p_{ij} = \operatorname{softmax}\left(z\right)_{ij}"
    tversky = symloss.get("tversky")
    (grad,) = [s for s in tversky.derivation() if s.title == "Simplify"]
    text = grad.latex()
    for name in ("TP", "FP", "FN"):
        assert rf"\mathrm{{{name}}}_{{i}}" in text
    assert r"\sum" not in text.split(r"\text{where }")[0]  # no row sum left in the formula
    sigmoid_focal = symloss.get("sigmoid_focal").derivation()
    assert any(r"1 - {p_{t}}_{i}" in s.latex() for s in sigmoid_focal)
    assert any(r"{\alpha_{t}}_{i}" in s.latex() for s in sigmoid_focal)


def test_expanded_form_stays_available():
    steps = symloss.get("huber").derivation(named=False)
    assert not any(s.where or s.named for s in steps)
    named = symloss.get("huber").derivation()
    assert r"e_{i} = y_{i} - t_{i}" in named[1].latex()
    assert "where eᵢ = yᵢ - tᵢ" in named[1].pretty()


def test_reduction_none_shows_one_value_per_sample():
    """No 1/n and no sum over the samples: E_i, the value PyTorch's reduction='none'
    returns; a loss over classes keeps its sum over them."""
    bce = symloss.get("bce", reduction="none").latex()
    assert bce.startswith("E_{i} = ") and r"\sum" not in bce and r"\frac{1}{n}" not in bce
    cce = symloss.get("cce", reduction="none").latex()
    assert cce.startswith("E_{i} = ") and r"\sum_{j=1}^{m}" in cce and r"\sum_{i" not in cce
    assert symloss.get("bce").latex().startswith(r"E = -\frac{1}{n}\sum_{i=1}^{n}")
