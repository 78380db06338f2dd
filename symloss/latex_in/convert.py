r"""From a parsed LaTeX formula to a :class:`~symloss.Loss`, and back to the catalog.

:func:`from_latex` parses with :func:`symloss.latex_in.parser.parse_latex`, then splits the
expression into the parts a Loss keeps (reduction, summand, sums), infers domains
from how the arrays are used, and checks meaning: a sum over the samples must exist,
and every free symbol must be the prediction, the target, a size or a declared
parameter.  Work on the result runs under a time and size budget
(:mod:`symloss.symbolic.budget`), because the formula came from a user.

:func:`identify` and :func:`match` name the registered loss a formula equals on its
domain, and the hyperparameter values that make it equal
(:mod:`symloss.latex_in.compare` holds the numeric side).

The module is long because :func:`from_latex`'s reading of sums, sizes and domains and
the canonical forms :func:`match` compares share the same helpers for indices,
arrays and parameters; split apart, each half would import the other's internals.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import random
import time

import sympy as sp
from sympy import Indexed, IndexedBase, Interval, Mul, Sum, Symbol
from sympy.concrete.expr_with_limits import ExprWithLimits

from symloss.core.domain import Domain, Param
from symloss.core.loss import Loss
from symloss.errors import BudgetExceeded, ParseError
from symloss.latex_in.canonical import canonical_activations, expand_logs
from symloss.latex_in.compare import fit_params, numerically_equal
from symloss.latex_in.parser import parse_latex
from symloss.losses.common import LOGIT, ONE_HOT, REAL
from symloss.registry import catalog
from symloss.symbolic import budget as _budget
from symloss.symbols import (
    FRESH_LETTERS,
    array,
    fresh_index,
    index,
    logsumexp,
    m,
    n,
    sigmoid,
    softmax,
)

#: What the parsed arrays are called inside symloss (the parser's convention).
PRED, TARGET, LOGITS = array("y"), array("t"), array("z")

_PROBABILITY = Domain(Interval.open(0, 1), Interval(0, 1), "probability in (0, 1)")
_UNIT = Domain(Interval(0, 1), None, "in [0, 1]")
#: Seconds (at most; within ``budget_seconds``) that from_latex lets ``simplify`` tidy
#: the constant in front of the sum.  Only cosmetic: past them the constant is kept as
#: written (a product of 30 cosines can keep simplify busy for minutes).
SCALE_SECONDS = 2.0
#: Seconds that one comparison of :func:`identify` may take, within its whole budget.
COMPARE_SECONDS = 10.0


def from_latex(
    text: str,
    *,
    pred: str = "y",
    target: str = "t",
    logits: str | None = None,
    params: dict[str, float] | None = None,
    log_base=None,
    name: str | None = None,
    budget_seconds: float | None = _budget.DEFAULT_SECONDS,
) -> Loss:
    r"""A loss from a LaTeX formula, with the same interface as registered losses.

    Parameters
    ----------
    text : str
        The formula: ``E = ...``, ``\mathcal{L} = ...``, ``L(y, t) = ...`` or a bare
        right-hand side, in the article's notation or standard LaTeX.
    pred, target, logits : str
        How the prediction, the target and the logits are written in *text*.  The
        logits default to ``z`` unless the prediction or target is named ``z``.
    params : dict, optional
        Values of hyperparameters written as symbols (``{"delta": 1.0}``).
    log_base : optional
        Base of ``\log`` and bare ``log``; natural by default (the ML convention).
    name : str, optional
        The loss's name; default the formula's left-hand side, else ``"custom"``.
    budget_seconds : float or None
        Wall-clock budget for each derivation step, and for the evaluation and
        :func:`identify` steps that run symbolic work (``None``: unbounded).  Each step
        may also grow memory by at most :data:`symloss._budget.MAX_MEMORY_MB` MiB.

    Raises
    ------
    ParseError
        For malformed LaTeX, an unknown function, a formula that is not a constant
        times a sum over the samples (no sum; a sum inside a root, as RMSE; a norm of
        the whole batch; a batch statistic such as ``\bar{y}`` or an inner sum over the
        samples; a gather ``z_{i,t_i}``), an input array outside the sum, a declared
        parameter that does not appear or whose value is not a finite real number,
        or a number too large for exact arithmetic (see
        :mod:`symloss.latex_in.parser`).  Symbols that are neither arrays, indices
        nor sizes become hyperparameters, kept symbolic until bound.

    Notes
    -----
    Written-out activations become the named ones before anything is derived
    (:mod:`symloss.latex_in.canonical`): ``\frac{1}{1+e^{-z_i}}`` is
    :math:`\sigma(z_i)`, the written-out softmax is ``softmax(z)_{ij}`` (and the
    constraint :math:`\sum_j t_{ij} = 1` is recorded, as for the catalog's), so
    gradients come out as the catalog's do.

    Examples
    --------
    >>> L = from_latex(r"E = \frac{1}{2}\sum_{k=1}^{n}{(y_k-t_k)^2}")
    >>> identify(L)
    'sum_squared_error'
    >>> float(L([1.0, 2.0], [0.0, 0.0]))
    2.5
    """
    declared = _checked_params(text, params)
    parsed = parse_latex(text, pred=pred, target=target, logits=logits, log_base=log_base)
    expr = _sizes(parsed.expr)
    coef, limits, term = _split(text, expr)
    _refuse_batch_statistics(text, term, limits)
    term = canonical_activations(term)
    sample_size = limits[0][1]
    if coef.has(sample_size) and (coef * sample_size).free_symbols.isdisjoint({sample_size}):
        scale, reduction = _tidy(coef * sample_size, budget_seconds), "mean"
    else:
        scale, reduction = coef, "sum"

    uses_logits = term.has(LOGITS) or (term.has(sigmoid, softmax, logsumexp) and not term.has(PRED))
    input_base = LOGITS if uses_logits else PRED
    param_objs = []
    for sym in sorted(_free_scalars(expr), key=str):
        if sym in (n, m):
            continue
        if sym.name not in declared and sym.name in (pred, target, logits or "z"):
            raise ParseError(
                text,
                _position(text, sym.name),
                f"{sym.name!r} is an input array but appears outside the sum over the "
                "samples: write it with the sum's index, as in y_i inside \\sum_{i=1}^{n}",
            )
        if sym.name not in declared:  # a hyperparameter, kept symbolic until bound
            param_objs.append(
                Param(sym.name, sym, None, None, "written in the formula; bind with L.bind()")
            )
            continue
        value = declared.pop(sym.name)
        param_objs.append(Param(sym.name, sym, value, None, "declared with from_latex"))
    if declared:
        raise ParseError(text, 0, f"parameter(s) {', '.join(sorted(declared))} do not appear")
    if term.has(PRED) and uses_logits:
        raise ParseError(text, 0, f"the formula uses both {pred!r} and logits {logits or 'z'!r}")
    if not term.has(input_base):
        raise ParseError(text, 0, f"the formula does not use the prediction {pred!r}")

    indices = tuple((v, size) for v, size in limits)
    extra = tuple(
        sorted(
            (b for b in term.atoms(IndexedBase) if b not in (PRED, TARGET, LOGITS)),
            key=lambda b: str(b.label),
        )
    )
    element_indices = None
    ranks = {len(e.indices) for e in term.atoms(Indexed) if e.base == input_base}
    if ranks == {len(indices) + 1} and len(indices) == 1:
        # A per-sample loss over vectors (cosine, dice): elements y[i, j] summed inside.
        inner = next(e.indices[-1] for e in term.atoms(Indexed) if e.base == input_base)
        bound = [s for s in sp.preorder_traversal(term) if isinstance(s, ExprWithLimits)]
        size = next((hi for s in bound for var, _, hi in s.limits if var == inner), None)
        if size is None:
            raise ParseError(text, 0, f"{pred!r} has an index that no sum or maximum binds")
        letter = fresh_index([v for v, _ in indices], "j" + FRESH_LETTERS)
        element_indices = (*indices, (letter, size))
    elif ranks and ranks != {len(indices)}:
        raise ParseError(
            text, 0, f"{pred!r} is used with {sorted(ranks)} indices inside {len(indices)} sum(s)"
        )
    domains = {
        str(input_base.label): _input_domain(term, input_base),
        "t": _target_domain(term),
    }
    for b in extra:  # further arrays (a variance): passed by keyword at call time
        domains[str(b.label)] = _needed_domain(term, b, closed=False) or REAL
    constraints = ()
    if len(indices) == 2 and term.has(softmax, logsumexp):
        constraints = (ONE_HOT,)  # matched up to index renaming, see Constraint.apply
    try:
        return Loss(
            name=name or parsed.name or "custom",
            title=f"Parsed from LaTeX: {text.strip()[:60]}",
            term=term,
            scale=scale,
            indices=indices,
            pred=input_base,
            target=TARGET,
            domains=domains,
            constraints=constraints,
            element_indices=element_indices,
            extra_inputs=extra,
            reduction=reduction,
            reductions=("mean", "sum", "none") if reduction == "mean" else ("sum", "none"),
            params=tuple(param_objs),
            nonnegative=False,
            budget_seconds=budget_seconds,
            references=("Parsed from user LaTeX.",),
        )
    except ValueError as exc:
        raise ParseError(text, 0, str(exc)) from None


def _refuse_batch_statistics(text: str, term: sp.Expr, limits) -> None:
    r"""A ParseError where the summand sums over the samples again (a batch mean
    ``\frac{1}{n}\sum_k y_k`` inside ``(y_i - ...)^2``): not per-sample terms."""
    inputs = (PRED, TARGET, LOGITS)
    for node in sp.preorder_traversal(term):
        if not isinstance(node, Sum):
            continue
        for var, _, hi in node.limits:
            over_samples = hi == n or any(
                e.base in inputs and e.indices[0] == var for e in node.function.atoms(Indexed)
            )
            if over_samples:
                second = text.find(r"\sum", text.find(r"\sum") + 1)
                raise ParseError(
                    text,
                    max(second, 0),
                    f"the sum over {var} inside the summand runs over the samples (a batch"
                    " statistic such as a mean): the loss is not a constant times a sum of"
                    " per-sample terms",
                )


#: How papers name the number of samples when a sum is written without limits
#: (``\frac{1}{N}\sum_i``): such a letter in the constant in front is the sample count.
SAMPLE_SIZE_NAMES = ("N", "B", "M", "n")


def _size_letter(hi) -> bool:
    """Whether an upper limit is a size written as a letter: ``N``, ``K``, ``|D|``."""
    if isinstance(hi, sp.Abs):
        hi = hi.args[0]
    return isinstance(hi, Symbol) and hi not in (n, m) and not hi.is_integer


def _sizes(expr: sp.Expr) -> sp.Expr:
    """Sizes written as papers write them, as symloss's ``n`` (samples) and ``m``.

    Any letter in an upper limit is a size: the outermost sum's is the number of
    samples (N, B, |D| ...), an inner sum's the number of classes (K, C, M ...).  A
    letter conventional for the sample count (:data:`SAMPLE_SIZE_NAMES`) in the
    constant in front of the sum, not used inside it, is the sample count too.
    """
    top = [f for f in Mul.make_args(expr) if isinstance(f, Sum)]
    if len(top) != 1:
        return expr
    outer_var, _, outer_hi = top[0].limits[-1]
    if outer_hi == m:  # \frac{1}{m}\sum_{i=1}^{m}: m samples (Ng's course notes)
        expr = expr.xreplace({m: n, n: m})
        return _sizes(expr)
    mapping: dict = {}
    if _size_letter(outer_hi):
        mapping[outer_hi] = n
    for node in sp.preorder_traversal(top[0]):
        if isinstance(node, Sum):
            for var, _, hi in node.limits:
                if var != outer_var and _size_letter(hi) and hi not in mapping:
                    mapping[hi] = m
    out = expr.xreplace(mapping)
    (total,) = [f for f in Mul.make_args(out) if isinstance(f, Sum)]
    if total.limits[-1][2] == n:
        coef = Mul(*[f for f in Mul.make_args(out) if f is not total])
        letters = [
            s
            for s in coef.free_symbols | {a for a in coef.atoms(sp.Abs) if _size_letter(a)}
            if (isinstance(s, sp.Abs) or s.name in SAMPLE_SIZE_NAMES or s == m)
            and s != n
            and not total.has(s)
        ]
        if len(letters) == 1:
            out = out.xreplace({letters[0]: n})
    return out


def _checked_params(text: str, params) -> dict[str, float]:
    """*params* as floats; a ParseError at the parameter for a value that is not a finite
    real number (None or NaN would make every value of the loss NaN)."""
    declared = {}
    for key, value in dict(params or {}).items():
        finite = (
            isinstance(value, numbers.Real)
            and not isinstance(value, bool)
            and math.isfinite(float(value))
        )
        if not finite:
            raise ParseError(
                text,
                _position(text, str(key)),
                f"parameter {key!r} must be a finite real number, got {value!r}",
            )
        declared[key] = float(value)
    return declared


def _tidy(scale: sp.Expr, budget_seconds: float | None) -> sp.Expr:
    """``simplify(scale)`` for at most :data:`SCALE_SECONDS`; *scale* as it is past them."""
    seconds = None if budget_seconds is None else min(budget_seconds, SCALE_SECONDS)
    try:
        with _budget.budget(seconds, "simplifying the constant factor"):
            return sp.simplify(scale)
    except BudgetExceeded:
        return scale


def _split(text: str, expr: sp.Expr):
    """``coef * Sum(...)`` -> (coef, [(index, size), ...] outermost first, summand)."""
    sums = [f for f in Mul.make_args(expr) if isinstance(f, Sum)]
    if len(sums) != 1 or not isinstance(expr, (Mul, Sum)):
        where = text.find(r"\sum")
        if not expr.has(Sum):
            reason = "the formula has no sum over the samples (write \\sum_{i=1}^{n} ...)"
        elif sums:
            reason = "the formula must be one sum over the samples times a constant"
        else:  # RMSE: sqrt of a mean; a norm of the whole batch; log of a sum ...
            outer, where = _enclosing(text, expr)
            reason = (
                f"the loss is not a constant times a sum over the samples: the sum sits "
                f"inside {outer}, so the loss does not split into per-sample terms"
            )
        raise ParseError(text, max(where, 0), reason)
    (s,) = sums
    coef = Mul(*[f for f in Mul.make_args(expr) if f is not s])
    limits: list[tuple[Symbol, sp.Expr]] = []
    body: sp.Expr = s
    while True:
        if isinstance(body, Sum):
            for var, lo, hi in reversed(body.limits):  # SymPy keeps innermost first
                if lo != 1:
                    at = max(text.find(r"\sum"), 0)
                    raise ParseError(text, at, f"sum over {var} must start at 1")
                limits.append((var, hi))
            body = body.function
            continue
        inner = [f for f in Mul.make_args(body) if isinstance(f, Sum)]
        rest = Mul(*[f for f in Mul.make_args(body) if not isinstance(f, Sum)])
        if isinstance(body, Mul) and len(inner) == 1 and not rest.has(Indexed):
            # A constant inside an outer sum, in front of an inner one: move it out.
            coef, body = coef * rest, inner[0]
            continue
        break
    if not limits or limits[0][1] != n:
        raise ParseError(
            text, max(text.find(r"\sum"), 0), "the outer sum must run over the samples, 1 to n"
        )
    return coef, limits, body


_SPELLINGS = {
    "sqrt": (r"\sqrt",),
    "Abs": (r"\lVert", r"\|", r"\left|", "|"),
    "log": (r"\log", r"\ln", "log"),
    "exp": (r"\exp", "e^"),
}


def _enclosing(text: str, expr: sp.Expr) -> tuple[str, int]:
    """What the outermost sum sits inside (``a square root``) and where that is written."""
    node = expr
    while not isinstance(node, Sum):
        inner = [a for a in node.args if a.has(Sum)]
        if isinstance(node, sp.Pow) and node.exp == sp.Rational(1, 2):
            key, what = "sqrt", "a square root"
        elif isinstance(node, sp.Pow) and node.base.has(Sum):
            key, what = "", f"a power ({sp.sstr(node.exp)})"
        elif isinstance(node, sp.Add) and node is expr:
            outside = [a for a in node.args if not a.has(Sum)]
            key, what = (
                "",
                (
                    f"a sum with other terms ({_show_node(outside[0])} is outside it: a \\sum "
                    "binds up to the next + or -, so put its body in parentheses)"
                ),
            )
        elif isinstance(node, (Mul, sp.Add)):
            key = what = None
        else:
            key, what = type(node).__name__, f"{type(node).__name__.lower()}(...)"
        if what is not None:
            for spelling in _SPELLINGS.get(key, ()):
                at = text.find(spelling)
                if at >= 0:
                    return what, at
            return what, text.find(r"\sum")
        node = inner[0]
    return "another expression", text.find(r"\sum")


def _free_scalars(expr: sp.Expr) -> set[Symbol]:
    labels = {b.label for b in expr.atoms(IndexedBase)}
    return {
        s
        for s in expr.free_symbols
        if isinstance(s, Symbol) and s not in labels and not s.is_integer
    }


def _position(text: str, name: str) -> int:
    for spelling in (f"\\{name}", name):
        at = text.find(spelling)
        if at >= 0:
            return at
    return 0


def _input_domain(term: sp.Expr, base: IndexedBase) -> Domain:
    if base == LOGITS:
        return LOGIT
    return _needed_domain(term, base) or REAL


def _target_domain(term: sp.Expr) -> Domain | None:
    needed = _needed_domain(term, TARGET, closed=True)
    if needed is not None:
        return needed
    for node in sp.preorder_traversal(term):
        if isinstance(node, sp.Add) and (1 - node).has(TARGET) and (1 - node).is_Indexed:
            return Domain(  # (1 - t): a label or probability in [0, 1]
                Interval(0, 1), None, f"t is a label or probability, as {_show_node(node)} says"
            )
    return None


def _show_node(e: sp.Expr) -> str:
    """``log(y_i)`` for ``log(y[i])``: how a message names a piece of the formula."""
    import re

    return re.sub(
        r"(\w+)\[([\w, ]+)\]", lambda m_: f"{m_[1]}_{m_[2].replace(', ', '')}", sp.sstr(e)
    )


def _requirements(term: sp.Expr, base: IndexedBase):
    """``(argument, source, weighted)`` for each piece of *term* that needs its argument
    positive (``log``) or non-negative (a root): *weighted* when a factor holding the
    target multiplies it (``t log y``: 0 there is the finite limit, so accepted)."""
    weighted: set = set()
    for node in sp.preorder_traversal(term):
        if isinstance(node, Mul):
            others = [f for f in node.args if f.has(TARGET)]
            for f in node.args:
                if isinstance(f, sp.log) and any(o is not f for o in others):
                    weighted.add(f)
    for node in sp.preorder_traversal(term):
        if isinstance(node, sp.log) and node.args[0].has(base):
            yield node.args[0], node, ">", node in weighted
        elif (
            isinstance(node, sp.Pow)
            and node.base.has(base)
            and node.exp.is_Rational
            and not node.exp.is_integer
        ):
            yield node.base, node, ">" if node.exp < 0 else ">=", False


def _needed_domain(term: sp.Expr, base: IndexedBase, closed: bool = False) -> Domain | None:
    r"""The interval that *term* needs *base*'s elements in, with where each bound comes
    from: ``log y`` needs y > 0, ``log(1 - y)`` y < 1, ``\log\cosh(y - t)`` nothing.

    Each argument that must be positive is split into factors; a factor linear in the
    element with a numeric bound gives a bound; one positive for every real element
    (``1 + (y - t)^2``, ``cosh``) gives none; others are left to the numbers.  With
    *closed* (or for ``t log y``), the accepted set includes the bound (the limit).
    """
    elements = {e for e in term.atoms(Indexed) if e.base == base}
    if not elements:
        return None
    reals = {e: sp.Dummy(real=True) for e in term.atoms(Indexed)}
    positive = {s: sp.Dummy(s.name, positive=True) for s in _free_scalars(term)}
    lo, hi = (-sp.oo, None, False), (sp.oo, None, False)  # value, source, closed
    for arg, source, relation, weighted in _requirements(term, base):
        factors = []
        for f in Mul.make_args(sp.factor_terms(arg)):
            if isinstance(f, sp.Pow) and f.exp.is_integer and f.exp.is_odd:
                f = f.base
            factors.append(f)
        for f in factors:
            if not f.has(base):
                continue
            x = next((e for e in elements if f.has(e)), None)
            plain = f.xreplace(positive).xreplace(reals)
            if plain.is_positive or relation == ">=" and plain.is_nonnegative:
                continue
            poly = sp.Poly(f, x) if x is not None and f.is_polynomial(x) else None
            if poly is None or poly.degree() != 1:
                continue
            a, b = poly.all_coeffs()
            if not (a.is_number and b.is_number) or a == 0:
                continue
            bound = -b / a
            shut = closed or weighted or relation == ">="
            if a > 0 and bound >= lo[0]:
                lo = (bound, source, shut and not (bound == lo[0] and not lo[2]))
            elif a < 0 and bound <= hi[0]:
                hi = (bound, source, shut and not (bound == hi[0] and not hi[2]))
    if lo[1] is None and hi[1] is None:
        return None
    name = str(base.label)
    said = []
    for (value, source, shut), sign in ((lo, ">"), (hi, "<")):
        if source is not None:
            limit = f" ({value} itself is accepted: the limit)" if shut else ""
            said.append(f"{name} must be {sign} {value} because of {_show_node(source)}{limit}")
    strict = Interval(lo[0], hi[0], lo[1] is not None, hi[1] is not None)
    accepted = Interval(
        lo[0], hi[0], lo[1] is not None and not lo[2], hi[1] is not None and not hi[2]
    )
    return Domain(strict, None if accepted == strict else accepted, "; ".join(said))


# ---------------------------------------------------------------------- identify
def _canonical(loss: Loss) -> sp.Expr:
    """``coef * summand`` with canonical index letters and parameters by name only
    (memoised for registered losses, which every search compares with)."""
    if loss.name in _CATALOG_FORMS and _CATALOG_FORMS[loss.name][0] is loss:
        return _CATALOG_FORMS[loss.name][1]
    form = _canonical_form(loss)
    if any(c is loss for c in catalog()):
        _CATALOG_FORMS[loss.name] = (loss, form)
    return form


_CATALOG_FORMS: dict = {}


def _canonical_form(loss: Loss) -> sp.Expr:
    letters = [index(c) for c in "ijkl"]
    mapping = {v: letters[pos] for pos, (v, _) in enumerate(loss.indices)}
    term = loss.term.doit().xreplace(mapping)
    # Kernel-only helpers that a definition may use print as their math.
    term = term.replace(lambda e: type(e).__name__ == "relu", lambda e: sp.Max(0, e.args[0]))
    term = canonical_activations(term)
    # log softmax = z - logsumexp: one spelling for both ways of writing it
    term = term.replace(
        lambda e: isinstance(e, sp.log) and isinstance(e.args[0], softmax),
        lambda e: e.args[0].args[0][e.args[0].args[1:]] - logsumexp(*e.args[0].args[:2]),
    )
    term = expand_logs(term, _positive_elements(loss, term))
    plain = {
        s: Symbol(s.name) for s in term.free_symbols if isinstance(s, Symbol) and not s.is_integer
    }
    term = term.xreplace(plain)
    if loss.pred != PRED and loss.composition is None and loss.pred != LOGITS:
        term = term.xreplace({loss.pred: PRED})
    return sp.expand(loss.coef * term)


def _positive_elements(loss: Loss, term: sp.Expr) -> dict:
    """Positive stand-ins for the array elements of *term* whose domain lies in (0, oo)."""
    out = {}
    for e in term.atoms(Indexed):
        domain = loss.domains.get(str(e.base.label))
        if domain is not None and domain.set.is_subset(Interval.open(0, sp.oo)):
            out[e] = sp.Dummy(str(e), positive=True)
    return out


def _linear_sums(expr: sp.Expr) -> sp.Expr:
    """Split every inner sum by linearity, constants pulled out, bound index renamed.

    ``Sum(y[i,k] (1 - t[i,k]), k)`` becomes ``Sum(y[i,k], k) - Sum(t[i,k] y[i,k], k)``,
    so that two ways of writing the same sums meet as the same atoms.
    """
    bound = index("q")

    def split(node):
        if isinstance(node, Sum) and len(node.limits) == 1:
            ((var, lo, hi),) = node.limits
            body = sp.expand(split(node.function).xreplace({var: bound}))
            out = []
            for term in sp.Add.make_args(body):
                inside = [f for f in Mul.make_args(term) if f.has(bound)]
                outside = [f for f in Mul.make_args(term) if not f.has(bound)]
                out.append(
                    Mul(*outside) * (Sum(Mul(*inside), (bound, lo, hi)) if inside else hi - lo + 1)
                )
            return sp.Add(*out)
        if node.args:
            return node.func(*[split(a) for a in node.args])
        return node

    return split(expr)


def _atomize(expr: sp.Expr, atoms: dict) -> sp.Expr:
    """Replace sums, array elements and activations by plain symbols (shared via *atoms*)."""

    def walk(node):
        bound_function = isinstance(node, sp.Function) and any(
            getattr(x, "is_integer", False) and isinstance(x, Symbol) and x not in (n, m)
            for x in node.free_symbols
        )
        if isinstance(node, (Sum, Indexed, softmax, logsumexp)) or bound_function:
            if node not in atoms:
                atoms[node] = sp.Dummy(f"a{len(atoms)}", real=True)
            return atoms[node]
        if node.args:
            return node.func(*[walk(a) for a in node.args])
        return node

    return walk(expr)


def equivalent(a: Loss, b: Loss, seconds: float | None = COMPARE_SECONDS) -> bool:
    """Whether two losses are the same function (same reduction, equal summands).

    The summands, with canonical index letters, are compared after splitting inner
    sums by linearity and replacing sums and array elements by symbols: first at a
    few random points (a quick no), then by ``simplify``.  All of it runs under a
    budget of *seconds* (and :data:`symloss._budget.MAX_MEMORY_MB`); a comparison
    that runs out of it is undecided, reported as not equal.
    """
    if a.pred.label != b.pred.label or _row_rank(a) != _row_rank(b):
        return False
    try:
        with _budget.budget(seconds, "comparing two losses"):
            if len(a.indices) == len(b.indices):
                return _equivalent(a, b)
            return _equivalent_per_sample(a, b)
    except Exception:  # noqa: BLE001 - an undecided comparison is "not equal"
        return False


def _row_rank(loss: Loss) -> int:
    """How many indices the input arrays have (a row per sample: 2)."""
    return len(loss.element_indices or loss.indices)


def _per_sample(loss: Loss) -> sp.Expr:
    r"""The canonical summand of one sample: a loss summed over samples and classes
    (``t_{ij}\log p_{ij}``) has its class sum put inside (``\sum_j t_{ij}\log p_{ij}``)."""
    form = _canonical(loss)
    if len(loss.indices) == 2:
        form = Sum(form, (index("j"), 1, m))
    return form


def _equivalent_per_sample(a: Loss, b: Loss) -> bool:
    r""":func:`_equivalent` for a loss written per element against one written per
    sample with inner sums: their per-sample summands compared, under both losses'
    constraints (``\sum_j t_{ij} = 1``: log-sum-exp minus the target's score is the
    softmax cross-entropy only for rows that sum to 1)."""
    if (a.reduction == "mean") != (b.reduction == "mean"):
        return False
    diff = _linear_sums(_per_sample(a) - _per_sample(b))
    for constraint in (*a.constraints, *b.constraints):
        # _canonical keeps symbols by name only (array labels too): so must the pattern
        labels = {
            s: Symbol(s.name)
            for s in constraint.lhs.free_symbols
            if isinstance(s, Symbol) and not s.is_integer
        }
        diff, _ = dataclasses.replace(constraint, lhs=constraint.lhs.xreplace(labels)).apply(diff)
    diff = sp.expand(diff)
    if diff == 0:
        return True
    atoms: dict = {}
    if sp.simplify(_atomize(diff, atoms)) == 0:
        return True
    return bool(numerically_equal(diff, _domains(b, a), _param_sets(a, b)))


def _domains(*losses: Loss) -> dict:
    """Each array's set, from the later losses first (the catalog's, when comparing)."""
    out: dict = {}
    for loss in losses:
        for name, domain in loss.domains.items():
            if domain is not None:
                out.setdefault(name, domain.set)
    return out


def _param_sets(*losses: Loss) -> dict:
    """Each hyperparameter symbol's name to the set its values are drawn from."""
    out = {}
    for loss in losses:
        for p in loss.params:
            if isinstance(p.symbol, Symbol) and p.domain is not None:
                out.setdefault(str(p.symbol), p.domain & sp.Interval(-3, 3))
    return out


def _equivalent(a: Loss, b: Loss) -> bool:
    diff = _canonical(a) - _canonical(b)
    if diff == 0:
        return True
    atoms: dict = {}
    flat = _atomize(_linear_sums(diff), atoms)
    rng = random.Random(0)
    for _ in range(3):
        point = {s: sp.Rational(rng.randint(2, 98), 100) for s in flat.free_symbols}
        try:
            value = flat.xreplace(point).rewrite(sp.exp).evalf(30)
        except (TypeError, ValueError, ZeroDivisionError):
            break  # cannot screen numerically; let the symbolic check decide
        if value.is_number and value.is_real and abs(value) > 1e-20:
            # different as written (functions of elements are opaque here): equal as
            # functions?  (sign(r) r and |r|, <= and < at a boundary where both agree)
            return bool(numerically_equal(diff, _domains(a, b), _param_sets(a, b)))
    rewritten = sp.expand_log(flat.rewrite(sp.exp), force=True)
    if sp.simplify(rewritten) == 0:
        return True
    numeric = numerically_equal(diff, _domains(a, b), _param_sets(a, b))
    if numeric is not None:
        return numeric
    # sqrt(a) sqrt(b) = sqrt(a b) needs a, b >= 0, which holds for the
    # radicands of losses (norms, variances); powsimp(force=True) assumes it.
    return sp.simplify(sp.powsimp(sp.expand_power_base(rewritten, force=True), force=True)) == 0


_OWN_BUDGET: float = -1.0  # identify()'s default: the loss's own budget_seconds


def identify(loss: Loss, *, budget_seconds: float | None = _OWN_BUDGET) -> str | None:
    """The name of the registered loss that *loss* equals, or None: the name
    :func:`match` returns (see there for how and under which budget)."""
    found = match(loss, budget_seconds=budget_seconds)
    return None if found is None else found[0]


def match(loss: Loss, *, budget_seconds: float | None = _OWN_BUDGET):
    r"""``(name, params)``: the registered loss that *loss* equals and the values of its
    hyperparameters that make them equal, or ``None``.

    First every registered loss is compared with its hyperparameters as symbols
    (:func:`equivalent`): a formula that writes them with the catalog's letters
    matches with each one mapped to the formula's symbol, or to its value where the
    formula's parameter is bound (``params=``, :meth:`Loss.bind`).  A formula with
    ``\delta`` matches ``("huber", {"delta": delta})``.  Then the hyperparameters of
    each registered loss of the same shape are solved for
    (:func:`symloss.latex_in.compare.fit_params`): a focal loss written with
    ``\gamma = 0`` matches ``("sigmoid_focal", {"alpha": alpha, "gamma": 0.0})``,
    Huber written with ``c`` matches ``("huber", {"delta": c})``.  Every match is
    verified on the domain (symbolically, else at high precision at random points and
    at the kinks).

    The whole search runs under *budget_seconds* (default: the loss's own
    ``budget_seconds``, so 20 s for a formula from :func:`from_latex` and no limit
    for a registered loss); each comparison gets at most :data:`COMPARE_SECONDS` of
    it and counts as "no match" when it runs out.

    Raises
    ------
    BudgetExceeded
        When the whole budget is spent before every registered loss was compared.
    """
    seconds = loss.budget_seconds if budget_seconds is _OWN_BUDGET else budget_seconds
    deadline = None if seconds is None else time.monotonic() + seconds

    def left() -> float:
        if deadline is None:
            return COMPARE_SECONDS
        rest = deadline - time.monotonic()
        if rest <= 0:
            raise BudgetExceeded(
                f"identifying {loss.name} took longer than its budget of {seconds:g} s"
            )
        return min(rest, COMPARE_SECONDS)

    for candidate in catalog():
        if equivalent(loss, candidate, left()):
            return candidate.name, _named_params(loss, candidate)
    for candidate in catalog():
        if not _same_shape(loss, candidate):
            continue
        try:
            with _budget.budget(left(), "solving for hyperparameters"):
                params = _fitted_params(loss, candidate)
        except Exception:  # noqa: BLE001 - as in equivalent(): undecided is no match
            # out of time, numbers beyond float64 (10^999), a function NumPy cannot
            # evaluate (a row maximum): no values found
            params = None
        if params is not None:
            return candidate.name, params
    return None


def _named_params(loss: Loss, candidate: Loss) -> dict:
    mine = {str(p.symbol): p for p in loss.params if isinstance(p.symbol, Symbol)}
    values = loss.param_values
    params = {}
    for p in candidate.params:
        if isinstance(p.symbol, Symbol) and str(p.symbol) in mine:
            own = mine[str(p.symbol)]
            value = values[own.name]
            params[p.name] = Symbol(str(p.symbol)) if value is None else value
    return params


def _tunable(candidate: Loss) -> list:
    used = {str(s) for s in candidate.term.free_symbols}
    return [p for p in candidate.params if isinstance(p.symbol, Symbol) and str(p.symbol) in used]


def _same_shape(loss: Loss, candidate: Loss) -> bool:
    """Worth solving for *candidate*'s hyperparameters: it has some, and the same
    reduction, index structure, input and extra arrays as *loss*."""
    return (
        bool(_tunable(candidate))
        and len(loss.indices) == len(candidate.indices)
        and loss.pred.label == candidate.pred.label
        and (loss.reduction == "mean") == (candidate.reduction == "mean")
        and {str(b.label) for b in loss.extra_inputs}
        == {str(b.label) for b in candidate.extra_inputs}
    )


def _fitted_params(loss: Loss, candidate: Loss) -> dict | None:
    """*candidate*'s hyperparameters solved for so that it equals *loss* (or None)."""
    values = loss.param_values
    bound = {
        Symbol(str(p.symbol)): sp.nsimplify(values[p.name], rational=True)
        for p in loss.params
        if isinstance(p.symbol, Symbol) and values.get(p.name) is not None
    }
    mine = _canonical(loss).xreplace(bound)
    tunable = _tunable(candidate)
    unknown = {Symbol(str(p.symbol)): sp.Dummy(p.name, real=True) for p in tunable}
    theirs = _canonical(candidate).xreplace(unknown)
    defaults = candidate.param_values
    found = fit_params(
        mine - theirs,
        {unknown[Symbol(str(p.symbol))]: float(defaults[p.name]) for p in tunable},
        _domains(candidate, loss),
        {unknown[Symbol(str(p.symbol))]: p.domain for p in tunable},
    )
    if found is None:
        return None
    return {
        p.name: (
            float(found[unknown[Symbol(str(p.symbol))]])
            if found[unknown[Symbol(str(p.symbol))]].is_number
            else found[unknown[Symbol(str(p.symbol))]]
        )
        for p in tunable
    }


__all__ = ["equivalent", "from_latex", "identify", "match"]
