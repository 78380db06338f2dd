"""What a loss actually computes, beyond its definition: the values of its
hyperparameters (a "where" line), how its options and call-time arguments change the
formula, and each structural option's effect, written as the formula it gives.

Everything is made from the :class:`~symloss.Loss` (its parameters, reduction, options,
``ignore_index`` and ``label_reduction``); the page, the Markdown page and the handout
print these notes, so no page states an option's effect by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symloss.core.loss import Loss
from symloss.printing.printers import latex_expr
from symloss.registry import get


@dataclass(frozen=True)
class Note:
    """A sentence, and the formula it is about (LaTeX, or empty)."""

    text: str
    tex: str = ""
    #: ``(lhs, rhs)`` of the formula, for a layout that breaks long lines (the handout)
    equation: tuple | None = None


def _value_tex(value) -> str:
    if isinstance(value, tuple | list):
        return r"\left(" + ", ".join(_value_tex(v) for v in value) + r"\right)"
    if isinstance(value, bool):
        return rf"\text{{{value}}}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return sp.latex(sp.sympify(value)) if isinstance(value, int | float) else rf"\text{{{value}}}"


def where_tex(loss: Loss, style: str = "standard") -> str:
    r"""The values of the loss's hyperparameters as LaTeX, ``\delta = 1.5``, joined by
    ``,\ ``; empty for a loss without any."""
    values = loss.param_values
    items = []
    for p in loss.params:
        symbol = p.symbol.label if isinstance(p.symbol, sp.IndexedBase) else p.symbol
        items.append(f"{latex_expr(symbol, style)} = {_value_tex(values[p.name])}")
    return r",\quad ".join(items)


def _outer(loss: Loss):
    (i, n), *inner = loss.indices
    return i, n, inner


def _fresh_base(loss: Loss, preferred: str) -> sp.IndexedBase:
    taken = {str(s) for s in loss.expr.free_symbols} | {
        str(b.label) for b in loss.expr.atoms(sp.IndexedBase)
    }
    for name in (preferred, *"svabc"):
        if name not in taken:
            return sp.IndexedBase(name)
    return sp.IndexedBase(preferred + "'")


def _inner_sum(loss: Loss, term: sp.Expr) -> sp.Expr:
    _, _, inner = _outer(loss)
    limits = [(v, 1, size) for v, size in reversed(inner)]
    return sp.Sum(term, *limits) if limits else term


def computed_notes(loss: Loss, style: str = "standard") -> tuple[Note, ...]:
    """How the computed value differs from (or adds to) the displayed definition."""
    i, n, _ = _outer(loss)
    notes = []
    E = sp.Symbol("E")
    if loss.reduction == "none":
        per_sample = _times(loss.coef, _inner_sum(loss, loss.term))
        notes.append(
            Note(
                "reduction='none': one value per sample, with no sum over the samples:",
                latex_expr(sp.Eq(sp.IndexedBase("E")[i], per_sample, evaluate=False), style),
                (sp.IndexedBase("E")[i], per_sample),
            )
        )
    if loss.label_reduction:
        w = next(p.symbol for p in loss.params if p.name == "class_weight")
        c = _fresh_base(loss, "c")
        sign = "-" if loss.coef.could_extract_minus_sign() else ""
        total = latex_expr(sp.Sum(w[c[i]], (i, 1, n)), style)
        body = latex_expr(_sum_all(loss, loss.term), style)
        notes.append(
            Note(
                f"With integer class labels c_{i}, the mean divides by the summed weights of "
                f"the labels instead of {n} (PyTorch's weighted mean):",
                rf"E = {sign}\frac{{1}}{{{total}}}{body}",
            )
        )
    if loss.ignore_index is not None:
        notes.append(
            Note(
                f"With integer class labels, a sample whose label is {loss.ignore_index} "
                f"(ignore_index) counts for nothing, in the sum and in the mean's count."
            )
        )
    s = _fresh_base(loss, "s")
    if loss.reduction == "none":
        lhs = sp.IndexedBase("E")[i]
        weighted = _times(loss.coef, sp.Mul(s[i], _inner_sum(loss, loss.term), evaluate=False))
    else:
        lhs = E
        inner = sp.Mul(s[i], _inner_sum(loss, loss.term), evaluate=False)
        weighted = _times(loss.coef, sp.Sum(inner, (i, 1, n)))
    notes.append(
        Note(
            f"With per-sample weights weight={s} (shape ({n},)) at call time, each sample's "
            "term is multiplied by its weight"
            + ("; the mean still divides by the count:" if loss.reduction != "none" else ":"),
            latex_expr(sp.Eq(lhs, weighted, evaluate=False), style),
            (lhs, weighted),
        )
    )
    return tuple(notes)


def _times(coef: sp.Expr, body: sp.Expr) -> sp.Expr:
    return body if coef == 1 else sp.Mul(coef, body, evaluate=False)


def _sum_all(loss: Loss, term: sp.Expr) -> sp.Expr:
    limits = [(v, 1, size) for v, size in reversed(loss.indices)]
    return sp.Sum(term, *limits)


#: Values tried, in order, to show what an option that is off by default does.
_SAMPLES = (2.0, 0.1, (1.0, 2.0, 1.0), True, False, 2)


def option_effects(loss: Loss, style: str = "standard") -> tuple[Note, ...]:
    """Each structural option: its default, and the definition it gives when set."""
    notes = []
    for name, default in loss.options.items():
        if name == "ignore_index":
            notes.append(
                Note(
                    f"ignore_index (default {default!r}): with integer class labels, samples "
                    "with this label count for nothing, in the sum and in the mean's count."
                )
            )
            continue
        # An option on by default (focal's alpha) shows what turning it off does.
        samples = (None,) if default is not None and name in {p.name for p in loss.params} else ()
        for value in samples + _SAMPLES:
            if value == default or (
                value is not None and default is not None and type(value) is not type(default)
            ):
                continue
            try:
                bound = get(loss.name, **{name: value})
            except (TypeError, ValueError):
                continue
            if bound.expr == loss.expr and not bound.params != loss.params:
                continue
            extra = where_tex(bound, style) if bound.params != loss.params else ""
            tex = bound.latex(style=style)
            notes.append(
                Note(
                    f"{name} (default {default!r}); with {name}={value!r} the loss is:",
                    tex + (rf",\quad {extra}" if extra else ""),
                )
            )
            break
    return tuple(notes)
