r"""Named intermediate quantities: the residual :math:`e`, the margin, TP/FP/FN, ``p_t``.

A loss family declares, once and as data, the quantities a teacher would name
(:class:`Named`: a name such as :math:`e_i`, its definition :math:`y_i - t_i`, a few
words).  :func:`in_names` writes any expression of that loss (a gradient, a Hessian, a
derivation step) in those names and returns the definitions it used, for a "where"
block; :func:`expand` undoes it.  Nothing is kept by hand beside the expression: the
names are substituted into what the calculus produced, and expanding them gives it
back (``tests/symbolic/test_naming.py`` checks both ways on the whole catalog).

The substitution is SymPy's ``subs`` of the definition (which also finds it inside a
larger sum or product, and its negative: :math:`t_i - y_i` becomes :math:`-e_i`), at
every assignment of the definition's index letters to the letters of the expression.
A definition that is a sum over a row (:math:`\mathrm{TP}_i = \sum_k y_{ik} t_{ik}`)
is matched up to the name of its bound index.

Examples
--------
>>> import sympy as sp
>>> from symloss.symbols import array, index
>>> y, t, e = array("y"), array("t"), array("e")
>>> i = index("i")
>>> residual = Named(e[i], y[i] - t[i], "the residual")
>>> in_names(sp.tanh(t[i] - y[i]) / 3, (residual,))
(-tanh(e[i])/3, ((e[i], -t[i] + y[i]),))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy import Indexed, Sum, Symbol

Where = tuple[tuple[sp.Expr, sp.Expr], ...]


@dataclass(frozen=True)
class Named:
    r"""A quantity a derivation writes by name.

    Parameters
    ----------
    name : sympy.Indexed or sympy.Symbol
        How it is written, with the loss's index letters (:math:`e_i`, :math:`\mathrm{TP}_i`).
    definition : sympy.Expr
        What it stands for, in the loss's symbols and the names declared before it.
    description : str
        A few words: ``"the residual"``.
    also : tuple of (sympy.Expr, sympy.Expr)
        Further forms written by name, ``(form, in names)``: the focal loss's
        modulating base :math:`(1 - t)\,p + t\,(1 - p)` is :math:`1 - p_t`.  A test
        proves each pair equal once the names are expanded.
    """

    name: sp.Expr
    definition: sp.Expr
    description: str = ""
    also: tuple[tuple[sp.Expr, sp.Expr], ...] = ()

    @property
    def letters(self) -> tuple[Symbol, ...]:
        """The free index letters of the name, in order."""
        if isinstance(self.name, Indexed):
            return tuple(q for q in self.name.indices if isinstance(q, Symbol))
        return ()


def _index_letters(expr: sp.Basic) -> list[Symbol]:
    """Integer symbols that index in *expr*, free or bound by a sum, in order of
    appearance: not the sizes (n, m), which only bound sums or divide."""
    sizes = {s for node in expr.atoms(Sum) for _, lo, hi in node.limits for s in (lo, hi)}
    letters: list[Symbol] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Indexed):
            candidates = [s for q in node.indices for s in sorted(q.free_symbols, key=str)]
        elif isinstance(node, Symbol) and node.is_integer:
            candidates = [node]
        else:
            continue
        for s in candidates:
            if s not in letters and s not in sizes and not s.is_positive:
                letters.append(s)
    return letters


def _same_sum(node: Sum, pattern: Sum) -> bool:
    """Whether two single sums are equal up to the name of their bound index."""
    if len(node.limits) != len(pattern.limits):
        return False
    body = node.function
    for (v, lo, hi), (w, plo, phi) in zip(node.limits, pattern.limits):
        if (lo, hi) != (plo, phi) or w in node.free_symbols:
            return False
        body = body.xreplace({v: w})
    return body == pattern.function


def _substitute(expr: sp.Expr, old: sp.Expr, new: sp.Expr) -> sp.Expr:
    if isinstance(old, Sum):
        return expr.replace(lambda x: isinstance(x, Sum) and _same_sum(x, old), lambda x: new)
    expr = expr.subs(old, new)  # also inside larger sums, or negated: t - y is -e
    # subs leaves the body of a sum alone when *old* holds its bound index (p_il in
    # a sum over l): substitute inside such sums.
    binds = old.free_symbols
    return expr.replace(
        lambda x: isinstance(x, Sum) and any(v in binds for v in x.variables),
        lambda x: Sum(x.function.subs(old, new), *x.limits),
    )


def instances(q: Named, expr: sp.Expr) -> list[dict]:
    """Assignments of *q*'s index letters to index letters of *expr*.  A letter
    spelled as a name (a Hessian's index ``p`` beside the name ``p``) is left out."""
    letters = q.letters
    if not letters:
        return [{}]
    present = [s for s in _index_letters(expr) if s.name != str(_key(q.name))]
    choices = [present or [s] for s in letters]
    out = []
    for combo in itertools.product(*choices):
        if len(set(combo)) == len(combo):
            out.append(dict(zip(letters, combo)))
    return out


def in_names(expr: sp.Expr, quantities: Sequence[Named]) -> tuple[sp.Expr, Where]:
    """*expr* written with *quantities*' names, and the definitions used, in order.

    Each quantity is tried in declaration order (a later definition may use an
    earlier name), at each assignment of its index letters; an instance that leaves
    the expression unchanged is not reported.
    """
    used: list[tuple[sp.Expr, sp.Expr]] = []
    for q in quantities:
        for sigma in instances(q, expr):
            pairs = [(q.definition, q.name), *((form, named) for form, named in q.also)]
            for old, new in pairs:
                old_i, new_i = old.xreplace(sigma), new.xreplace(sigma)
                changed = _substitute(expr, old_i, new_i)
                if changed != expr:
                    expr = changed
                    entry = (q.name.xreplace(sigma), q.definition.xreplace(sigma))
                    if entry not in used:
                        used.append(entry)
    # One definition per name: at the letters used, or as declared ("for every j")
    # when the name is used at several.
    single: list[tuple[sp.Expr, sp.Expr]] = []
    for q in quantities:
        mine = [u for u in used if _key(u[0]) == _key(q.name)]
        if len(mine) == 1:
            single.extend(mine)
        elif mine:
            single.append((q.name, q.definition))
    # A name used only inside another's definition is still defined (p inside p_t).
    return expr, _closed(tuple(single), quantities)


def _closed(used: Where, quantities: Sequence[Named]) -> Where:
    """*used* with the definitions its definitions rely on, in declaration order."""
    by_key = {_key(q.name): q for q in quantities}
    wanted = list(used)
    for _, definition in wanted:  # grows while it runs: each new entry is visited too
        for node in sp.preorder_traversal(definition):
            q = by_key.get(_key(node)) if isinstance(node, (Indexed, Symbol)) else None
            if q is None:
                continue
            sigma = dict(zip(q.letters, node.indices)) if isinstance(node, Indexed) else {}
            entry = (q.name.xreplace(sigma), q.definition.xreplace(sigma))
            if entry not in wanted:
                wanted.append(entry)
    order = {_key(q.name): pos for pos, q in enumerate(quantities)}
    return tuple(sorted(wanted, key=lambda e: order.get(_key(e[0]), len(order))))


def _key(name: sp.Expr) -> sp.Basic:
    return name.base if isinstance(name, Indexed) else name


def expand(expr: sp.Expr, where: Iterable[tuple[sp.Expr, sp.Expr]]) -> sp.Expr:
    """*expr* with every name of *where* replaced by its definition (latest first), at
    the indices the name carries in *expr*."""
    for name, definition in reversed(tuple(where)):
        if isinstance(name, Indexed):
            letters = name.indices
            expr = expr.replace(
                lambda x, name=name: isinstance(x, Indexed) and x.base == name.base,
                lambda x, d=definition, letters=letters: d.xreplace(dict(zip(letters, x.indices))),
            )
        else:
            expr = expr.xreplace({name: definition})
    return expr
