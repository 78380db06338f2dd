r"""Written-out activations as the named functions the catalog uses.

Papers write the sigmoid, the softmax, softplus and log-sum-exp out in full:
``\frac{1}{1+e^{-z_i}}``, ``\frac{e^{z_{ij}}}{\sum_k e^{z_{ik}}}``, ``\log(1+e^{x})``,
``\log\sum_k e^{z_{ik}}``.  :func:`canonical_activations` rewrites them, anywhere in a
SymPy tree and whatever their argument, into :class:`~symloss.symbols.sigmoid`,
:class:`~symloss.symbols.softmax` and :class:`~symloss.symbols.logsumexp`, so that a
pasted formula derives (and evaluates stably) exactly like the catalog's loss:

==============================================  ==========================================
written                                         canonical
==============================================  ==========================================
:math:`(1 + e^{u})^{-p}`                        :math:`\sigma(-u)^{p}`
:math:`e^{u}\,\sigma(-u)` (so ``e^u/(1+e^u)``)  :math:`\sigma(u)`
:math:`\log(1 + e^{u})` (softplus)              :math:`-\log\sigma(-u)`
:math:`e^{z_{rc}} / \sum_k e^{z_{rk}}`          ``softmax(z, r, c)``
:math:`\log\sum_k e^{z_{rk}}`                   ``logsumexp(z, r)``
:math:`\sigma(-x)`                              :math:`1 - \sigma(x)`
==============================================  ==========================================

The last row picks one spelling for the sigmoid of a negated argument, the one the
catalog writes (``\log(1 - \sigma(z_i))`` in binary cross-entropy).  Every rewrite is
an identity for all real arguments, so no domain is assumed.

:func:`expand_logs` splits ``\log(ab)`` and ``\log(a/b)`` where the factors are
positive on the loss's domain (``\log\frac{y_i}{t_i}`` is ``\log y_i - \log t_i`` for
y, t > 0), which :func:`symloss.identify` uses before comparing.

Layer 8 (``latex_in``): imports :mod:`symloss.symbols` only.
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Indexed, IndexedBase, Mul, Pow, Sum, exp, log

from symloss.symbols import logsumexp, sigmoid, softmax

__all__ = ["canonical_activations", "expand_logs"]


def _one_plus_exp(node: sp.Basic):
    """``u`` if *node* is ``1 + exp(u)``, else None."""
    if isinstance(node, Add) and len(node.args) == 2 and sp.S.One in node.args:
        (other,) = [a for a in node.args if a != sp.S.One]
        if isinstance(other, exp):
            return other.args[0]
    return None


def _row_of_exps(node: sp.Basic):
    """``(z, r)`` if *node* is ``Sum(exp(z[r, k]), (k, 1, hi))``, else None."""
    if not (isinstance(node, Sum) and len(node.limits) == 1):
        return None
    (var, lo, _hi), body = node.limits[0], node.function
    if lo != 1 or not isinstance(body, exp) or not isinstance(body.args[0], Indexed):
        return None
    element = body.args[0]
    *rows, last = element.indices
    if last != var or any(r.has(var) for r in rows) or len(rows) != 1:
        return None
    return element.base, rows[0]


def _mul(node: Mul) -> sp.Expr:
    factors = list(Mul.make_args(node))
    # e^{u} sigma(-u) = e^u / (1 + e^u) = sigma(u)
    for f in list(factors):
        if isinstance(f, exp) and f in factors:
            partner = sigmoid(-f.args[0])
            if partner in factors:
                factors.remove(f)
                factors.remove(partner)
                factors.append(sigmoid(f.args[0]))
    # e^{z_{rc}} / sum_k e^{z_{rk}} = softmax(z, r, c)
    for f in list(factors):
        if isinstance(f, Pow) and f.exp == -1 and f in factors:
            row = _row_of_exps(f.base)
            if row is None:
                continue
            base, r = row
            top = next(
                (
                    g
                    for g in factors
                    if isinstance(g, exp)
                    and isinstance(g.args[0], Indexed)
                    and g.args[0].base == base
                    and len(g.args[0].indices) == 2
                    and g.args[0].indices[0] == r
                ),
                None,
            )
            if top is not None:
                factors.remove(f)
                factors.remove(top)
                factors.append(softmax(base, r, top.args[0].indices[1]))
    return Mul(*factors)


def _rewrite(node: sp.Basic) -> sp.Basic:
    if not node.args or isinstance(node, (Indexed, IndexedBase, sp.Symbol)):
        return node
    if isinstance(node, Sum):
        return Sum(_rewrite(node.function), *node.limits)
    node = node.func(*[_rewrite(a) for a in node.args])
    if isinstance(node, log):
        u = _one_plus_exp(node.args[0])
        if u is not None:  # softplus(u) = -log sigma(-u)
            return -log(sigmoid(-u))
        row = _row_of_exps(node.args[0])
        if row is not None:
            return logsumexp(*row)
    if isinstance(node, Pow) and (node.exp.is_negative or node.exp.could_extract_minus_sign()):
        u = _one_plus_exp(node.base)
        if u is not None:
            return sigmoid(-u) ** (-node.exp)
    if isinstance(node, Mul):
        return _mul(node)
    return node


def _negated(node: sp.Basic) -> sp.Basic:
    if isinstance(node, sigmoid) and node.args[0].could_extract_minus_sign():
        return 1 - sigmoid(-node.args[0])
    return node


def canonical_activations(expr: sp.Expr) -> sp.Expr:
    r"""*expr* with written-out activations replaced by named ones (see the module).

    >>> from symloss.symbols import array, index
    >>> z, i = array("z"), index("i")
    >>> canonical_activations(sp.log(1 / (1 + sp.exp(-z[i]))))
    log(sigmoid(z[i]))
    >>> canonical_activations(sp.log(1 + sp.exp(z[i])))
    -log(1 - sigmoid(z[i]))
    """
    out = _rewrite(expr)
    return out.replace(lambda e: isinstance(e, sigmoid), _negated) if out.has(sigmoid) else out


def expand_logs(expr: sp.Expr, positive: dict) -> sp.Expr:
    r"""``\log(ab) = \log a + \log b`` and ``\log(a/b) = \log a - \log b`` where *a* and
    *b* are positive: *positive* maps each array element (or symbol) known to be
    positive on the domain to a positive stand-in, which SymPy's ``expand_log``
    needs to split safely; factors of unknown sign stay inside their log."""
    if not positive:
        return expr
    back = {v: k for k, v in positive.items()}
    return sp.expand_log(expr.xreplace(positive)).xreplace(back)
