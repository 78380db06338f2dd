"""Long equations broken across lines (issue 16, item 3)."""

from __future__ import annotations

import pytest
from conftest import LOSSES

import symloss
from symloss.printing.breaking import WIDTH, broken, text_width
from symloss.printing.printers import StandardLatexPrinter, latex_expr


def test_a_formula_that_fits_is_printed_as_before():
    L = symloss.get("bce")
    assert broken(L.expr, StandardLatexPrinter()) == [latex_expr(L.expr)]


def test_a_wide_hessian_is_cut_at_its_signs_in_brackets_that_may_span_lines():
    rhs = symloss.get("softmax_focal").equation("hessian")[1]
    assert text_width(rhs) > 5 * WIDTH
    lines = broken(rhs, StandardLatexPrinter())
    assert len(lines) > 5
    assert lines[0].count(r"\Bigl(") >= 1 and lines[-1].endswith(r"\Bigr)")
    text = "".join(lines)
    assert text.count(r"\Bigl(") == text.count(r"\Bigr)")
    assert text.count(r"\left(") == text.count(r"\right)")  # never cut inside \left..\right


@pytest.mark.parametrize("loss", LOSSES, ids=lambda L: L.name)
def test_every_derivation_step_balances_its_brackets_on_each_line(loss):
    for step in loss.derivation():
        for row in step.latex(aligned=True).split(r" \\ "):
            assert row.count(r"\left") == row.count(r"\right"), (step.title, row)
