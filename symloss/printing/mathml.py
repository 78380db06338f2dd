r"""Presentation MathML, for notebooks: math that renders without JavaScript.

:class:`MathMLPrinter` subclasses SymPy's ``MathMLPresentationPrinter`` and overrides
only what it prints as plain function calls: ``Piecewise`` (as cases in a brace, as the
LaTeX shows it), the activations (:math:`\sigma(z_i)`,
:math:`\operatorname{softmax}(z)_{ij}`) and the Iverson bracket of a Kronecker delta.
:func:`mathml_block` wraps one formula in a ``<math display="block">`` element, which
Jupyter, VS Code's notebooks and every current browser typeset natively.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter


class MathMLPrinter(MathMLPresentationPrinter):
    """SymPy's presentation MathML, with the notation of symloss's LaTeX."""

    def __init__(self, settings=None):
        super().__init__({"mat_delim": "(", **(settings or {})})

    def _el(self, tag: str, *children, text: str | None = None):
        node = self.dom.createElement(tag)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def _print_Piecewise(self, expr):
        table = self._el("mtable")
        table.setAttribute("columnalign", "left left")
        for value, cond in expr.args:
            condition = (
                self._el("mtext", text="otherwise")
                if cond == sp.true
                else self._el("mrow", self._el("mtext", text="if\u2009"), self._print(cond))
            )
            row = self._el("mtr", self._el("mtd", self._print(value)), self._el("mtd", condition))
            table.appendChild(row)
        brace = self._el("mo", text="{")
        brace.setAttribute("stretchy", "true")
        return self._el("mrow", brace, table)

    def _call(self, name, args, sub=None):
        head = self._el("mi", text=name)
        if len(name) > 1:
            head.setAttribute("mathvariant", "normal")
        row = self._el("mrow", head, self._el("mo", text="("))
        for pos, arg in enumerate(args):
            if pos:
                row.appendChild(self._el("mo", text=","))
            row.appendChild(self._print(arg))
        row.appendChild(self._el("mo", text=")"))
        if sub is None:
            return row
        return self._el("msub", row, sub)

    def _print_sigmoid(self, expr):
        return self._call("\u03c3", expr.args)

    def _print_softmax(self, expr):
        base, *index = expr.args
        sub = self._el("mrow", *(self._print(i) for i in index))
        return self._call("softmax", [base], sub)

    def _print_logsumexp(self, expr):
        base, *index = expr.args
        sub = self._el("mrow", *(self._print(i) for i in index))
        return self._call("logsumexp", [base], sub)

    def _print_KroneckerDelta(self, expr):
        a, b = expr.args
        inner = self._el("mrow", self._print(a), self._el("mo", text="="), self._print(b))
        return self._el("mrow", self._el("mo", text="["), inner, self._el("mo", text="]"))


def mathml(expr: sp.Basic) -> str:
    """The presentation MathML of *expr*, without the ``<math>`` element."""
    return MathMLPrinter().doprint(expr)


def mathml_block(expr: sp.Basic, display: bool = True) -> str:
    """*expr* as a ``<math>`` element (display, or inline with ``display=False``)."""
    kind = "block" if display else "inline"
    return (
        f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="{kind}">{mathml(expr)}</math>'
    )
