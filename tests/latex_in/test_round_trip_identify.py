"""Issue 15: every registered loss, printed in either style and read back with no
``params=``, is identified as itself, and the matched hyperparameters are its own."""

from __future__ import annotations

import pytest
import sympy as sp
from conftest import LOSSES

import symloss


@pytest.mark.parametrize("style", ["standard", "article"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda L: L.name)
def test_identify_from_latex_names_the_loss(loss, style):
    parsed = symloss.from_latex(loss.latex(style=style))
    found = symloss.match(parsed)
    assert found is not None and found[0] == loss.name, loss.latex(style=style)
    # symbolic: each hyperparameter matches the symbol the loss is written with
    used = {str(s) for s in loss.term.free_symbols}
    own = {
        p.name: sp.Symbol(str(p.symbol))
        for p in loss.params
        if isinstance(p.symbol, sp.Symbol) and str(p.symbol) in used
    }
    assert found[1] == own
    # bound to the loss's values, the match returns those values
    values = loss.param_values
    bound = parsed.bind(
        **{
            str(p.symbol): values[p.name]
            for p in loss.params
            if p.name in own and values[p.name] is not None
        }
    )
    assert symloss.match(bound)[1] == {k: values[k] for k in own}
