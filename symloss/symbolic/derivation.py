r"""Step-by-step derivations of a loss's gradient, for teaching.

A derivation is a list of :class:`Step`, each an equation ``lhs = rhs[0] = rhs[1] = ...``
between SymPy expressions, with a title and, where the step relies on one, the
:class:`~symloss.Constraint` it uses.  Everything is computed from the loss itself:

* **A loss on logits** (``loss.composition`` is set, :math:`y = a(z)`) follows the
  chain rule through the activation :math:`a`:

  1. :math:`\partial E/\partial y`, the gradient of the base loss;
  2. :math:`\partial y/\partial z`, the activation's Jacobian (the sigmoid's
     :math:`\sigma(1-\sigma)`, the softmax's :math:`y_{ik}(\delta_{jk} - y_{ij})`);
  3. their product, summed over the elements of :math:`y` that depend on the logit
     (the classes, for the softmax);
  4. the simplification to :math:`(y - t)/n`, naming the constraint
     :math:`\sum_k t_{ik} = 1` where it is used, and written back in the logits.

* **Any other loss**: differentiate the summand under the sum (a Kronecker delta
  :math:`\delta` marks the one element that depends on the input), collapse the sum
  against the delta, and simplify to :meth:`Loss.gradient` (over a common
  denominator where the collapsed sum adds fractions, as BCE's does).

Then, where the family's named quantities shorten it, the Hessian in those names
(expanded, it is :meth:`Loss.hessian`, shown on its own); and, from :meth:`Loss.derivation`
(which passes the kernel's forms from :mod:`symloss.numeric`, a layer above this one),
a last step **What the kernel computes**: the summand as defined, equal to the
float64-stable form the NumPy kernel is compiled from, with the reason for each
rewrite (``log σ(z) = −softplus(−z)``, ``xlogy``, ``log-sum-exp``).

Each step's note is written from what the step did (a delta collapsed, a factor
cancelled, a constraint used).  Where the loss's family names quantities
(``loss.named``: the residual, TP/FP/FN, ``p_t``; :mod:`symloss.symbolic.naming`) and
a name pays for itself, a step prints in those names with a "where" block; its ``rhs``
stays the expanded form, and ``named=False`` prints that.  No step repeats the form
before it, neither expanded nor as printed.

The last expression of the last gradient step is always ``loss.gradient()``;
``tests/symbolic/test_derivation.py`` checks numerically that every equality in every
step holds, and ``tests/symbolic/test_kernel_step.py`` that the kernel's forms equal
the definition at 50 digits.

Examples
--------
>>> import symloss
>>> from symloss.symbolic.derivation import derivation
>>> steps = derivation(symloss.get("bce_logits"))
>>> [s.title for s in steps]  # doctest: +NORMALIZE_WHITESPACE
['Gradient of the loss by the prediction', 'Derivative of the activation',
 'Chain rule', 'Simplify']
>>> steps[1].rhs
((1 - sigmoid(z[i]))*sigmoid(z[i]), (1 - y[i])*y[i])
>>> print(steps[1].latex())  # doctest: +NORMALIZE_WHITESPACE
\frac{\partial y_{i}}{\partial z_{i}} = \left(1 - \sigma\left(z_{i}\right)\right)
\sigma\left(z_{i}\right) = \left(1 - y_{i}\right) y_{i}
>>> steps[3].equation
Eq(Derivative(E, z[i]), (sigmoid(z[i]) - t[i])/n)
>>> "cancels" in steps[3].note and "delta" not in steps[3].note
True
>>> huber = symloss.get("huber").derivation()
>>> print(huber[1].where_latex())
e_{i} = y_{i} - t_{i}
>>> huber[-1].title
'What the kernel computes'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import sympy as sp
from sympy import Add, Derivative, Indexed, KroneckerDelta, Mul, Sum, Symbol

from symloss.printing.printers import latex_expr, pretty
from symloss.symbolic import calculus as _calculus
from symloss.symbolic.calculus import Constraint
from symloss.symbolic.naming import in_names
from symloss.symbolic.step import E, Step, same_form, without_repeats
from symloss.symbols import FRESH_LETTERS, fresh_index

__all__ = ["E", "HESSIAN_TITLE", "KERNEL_TITLE", "Step", "derivation", "same_form"]

if TYPE_CHECKING:  # pragma: no cover
    from symloss.core.loss import Loss

#: Letters for new summation indices, in order of preference: the usual ones, then
#: ``i`` and ``j`` as a last resort.
_FRESH_LETTERS = FRESH_LETTERS + "ij"


def _delta_clash(loss: Loss) -> bool:
    """Whether the loss has a symbol printed as the Kronecker delta's letter."""
    return any(latex_expr(s) == r"\delta" for s in loss.expr.free_symbols if isinstance(s, Symbol))


def derivation(loss: Loss, named: bool = True, kernel: Sequence[sp.Expr] = ()) -> list[Step]:
    """The derivation of ``loss.gradient()``, step by step.

    Parameters
    ----------
    loss : Loss
        Any registered (or unregistered) loss.  A loss on logits takes its base loss
        from ``loss.composition.base_loss``.
    named : bool
        Print each step with the quantities the loss's family names
        (``loss.named``: the residual, TP/FP/FN, ``p_t``), with a "where" block, where
        that shortens the step.  ``False`` prints every form expanded.  The ``rhs`` of
        every step is the expanded form either way.
    kernel : sequence of sympy.Expr
        The per-element summand as the numeric kernel evaluates it, from the stable
        form to the form compiled (:meth:`Loss.derivation` passes them from
        :mod:`symloss.numeric`).  Given, a last step "What the kernel computes" shows
        the definition equal to them.

    Returns
    -------
    list of Step
        For a loss on logits: the gradient by the prediction, the activation's
        derivative, the chain rule and the simplification.  Otherwise: differentiate
        under the sum, collapse the sum, simplify.  The last form of the last gradient
        step is ``loss.gradient()``; the kernel's step, if any, follows it.
    """
    key = (named, tuple(kernel))
    cache = loss.__dict__.setdefault("_derivations", {})
    if key not in cache:
        cache[key] = tuple(_derive(loss, named, kernel))
    return list(cache[key])


def _derive(loss: Loss, named: bool, kernel: Sequence[sp.Expr]) -> list[Step]:
    steps = _composed(loss) if loss.composition is not None else _direct(loss)
    steps = without_repeats(steps)
    steps.append(_hessian_step(loss))
    if kernel:
        steps.append(_kernel_step(loss, kernel))
    if _delta_clash(loss):
        steps = [replace(s, brackets=True, note=_bracket_note(s.note)) for s in steps]
    quantities = getattr(loss, "named", ())
    if named and quantities:
        out: list[Step] = []
        for s in steps:
            # Once a name is in use, the next steps keep it where it occurs.
            keep = bool(out and out[-1].where)
            out.append(_with_names(s, quantities, keep))
        steps = without_repeats(out, printed=True)
    # The Hessian is a step only where it reads in the named quantities: expanded, it
    # is Loss.hessian(), which a page already shows in its own section.
    return [s for s in steps if s.title != HESSIAN_TITLE or s.where]


def _with_names(step: Step, quantities, keep: bool = False) -> Step:
    """*step* printed with the named quantities, where that saves the reader symbols:
    the named forms and their "where" block print shorter than the expanded forms."""
    if step.title == KERNEL_TITLE:
        return step  # the kernel's own form, exactly as compiled
    named, where = [], []
    for form in step.rhs:
        new, used = in_names(form, quantities)
        named.append(new)
        where.extend(u for u in used if u not in where)
    if not where:
        return step
    before = sum(len(latex_expr(f)) for f in step.rhs)
    after = sum(len(latex_expr(f)) for f in named)
    block = sum(len(latex_expr(a)) + len(latex_expr(b)) for a, b in where)
    # A name pays for its definition when it shortens the step, definitions included,
    # or when it stands for something written several times in one form (TP, p_t).
    pays = after + block < before or (after < before and _repeated(named, where))
    if not (pays or keep):
        return step
    return replace(step, named=tuple(named), where=tuple(where))


def _repeated(forms: Sequence[sp.Expr], where) -> bool:
    """Whether some form holds one of the names at least twice."""
    bases = {n.base if isinstance(n, Indexed) else n for n, _ in where}
    for form in forms:
        seen: dict = {}
        for node in sp.preorder_traversal(form):
            key = node.base if isinstance(node, Indexed) else node
            if key in bases:
                seen[node] = seen.get(node, 0) + 1
                if seen[node] >= 2:
                    return True
    return False


#: The title of the Hessian's step.
HESSIAN_TITLE = "Differentiate once more: the Hessian"


def _hessian_step(loss: Loss) -> Step:
    """The Hessian, as :meth:`Loss.hessian` gives it, with what its shape means."""
    lhs, hess = loss.equation("hessian")
    names = {str(q.name.base.label) for q in getattr(loss, "named", ()) if hasattr(q.name, "base")}
    partner = lhs.variables[-1].indices[-1] if not loss.separable else None
    if partner is not None and str(partner) in names:
        # The block's second index is spelled as a named quantity (p, the softmax
        # focal loss's): print it with another letter, so p_{ik} can name the softmax.
        letter = _fresh(_letters_in(hess) | _letters_in(lhs) | names, 1)[0]
        lhs, hess = lhs.xreplace({partner: letter}), hess.xreplace({partner: letter})
    if loss.separable:
        note = (
            "Each element's gradient depends on that element alone, so the Hessian is "
            "diagonal; this is its diagonal entry"
        )
    else:
        partner = lhs.variables[-1]
        note = (
            f"The gradient by {pretty(loss.element)} depends on the other elements of its "
            f"row, so the Hessian is a block per sample, by {pretty(partner)}; "
            "elements of different samples give 0"
        )
    if hess == 0:
        note += "; it is 0 almost everywhere: the gradient is constant between the kinks"
    return Step(HESSIAN_TITLE, lhs, (hess,), note=note + ".")


#: The title of the last step, the kernel's form.
KERNEL_TITLE = "What the kernel computes"

#: Why each function of a stabilised form is there, by the function's class name.
_REASONS = {
    "softplus": "log σ(x) is −softplus(−x)",
    "relu": "softplus(x) = max(x, 0) + log1p(e^(−|x|)): the exponent is never positive, "
    "so no exp overflows at logits of ±1e4",
    "logsumexp": "log softmax(z)_j is z_j − logsumexp(z), with the row maximum taken out "
    "of the exponentials, so none overflows",
    "xlogy": "t log y is xlogy(t, y): 0 where t = 0, its limit, not 0·(−∞) = NaN",
    "xdivy": "a ratio whose numerator holds a target is xdivy: 0 where the numerator is 0",
    "where_nonneg": "σ(x) is computed from e^(−|x|), which never overflows: 1/(1 + e^(−|x|)) "
    "for x ≥ 0, e^(−|x|)/(1 + e^(−|x|)) below",
    "log1p": "log(1 + x) is log1p(x), exact for small x",
    "expm1": "e^x − 1 is expm1(x), exact for small x",
    "tanh": "sinh/cosh is tanh, finite where both overflow",
    "Piecewise": "the form switches where one expression would overflow or cancel",
}


def _kernel_step(loss: Loss, kernel: Sequence[sp.Expr]) -> Step:
    r"""``ℓ = scale·term = stable form = compiled form``, with the reason for each change."""
    ell = sp.IndexedBase(Symbol("ell"))[tuple(v for v, _ in loss.indices)]
    forms: list[sp.Expr] = []
    for form in (loss.scale * loss.term, *kernel):
        if not forms or not same_form(forms[-1], form):
            forms.append(form)
    definition = forms[0]
    added: list[str] = []
    if loss.stable_term is not None:
        added.append(
            "the kernel starts from the loss's stable form of the definition, "
            "which has no cancellation"
        )
    before = {type(n).__name__ for n in sp.preorder_traversal(definition)}
    for form in forms[1:]:
        for node in sp.preorder_traversal(form):
            name = type(node).__name__
            if name in _REASONS and name not in before and _REASONS[name] not in added:
                added.append(_REASONS[name])
    sums = " and ".join(f"{v}" for v, _ in loss.indices)
    lead = f"E is the sum of this summand over {sums}"
    if loss.count != 1:
        lead += f", divided by {sp.sstr(loss.count)}"
    if added:
        note = f"{lead}; the kernel evaluates it in a float64-stable form: " + "; ".join(added)
    else:
        note = f"{lead}; the kernel evaluates it as written: nothing in it overflows or cancels"
    return Step(KERNEL_TITLE, ell, tuple(forms), note=note + ".")


def _bracket_note(note: str) -> str:
    return (
        note.replace("Kronecker delta", "bracket")
        .replace("the delta", "the bracket")
        .replace("the deltas", "the brackets")
    )


# ---------------------------------------------------------------------- loss on logits
def _composed(loss: Loss) -> list[Step]:
    comp = loss.composition
    base = comp.base_loss
    y_el, z_el = comp.element, loss.element
    to_pred, to_logits = _activation_rewrites(comp.element, comp.value)
    taken = _letters_in(loss.expr) | _letters_in(base.expr)

    # 1. dE/dy, the base loss's gradient, at the element y_el.
    grad_y = _calculus.rename_indices(
        base.gradient(), dict(zip(base.element.indices, y_el.indices))
    )
    base_used = base.constraints_used()
    step1 = Step(
        "Gradient of the loss by the prediction",
        Derivative(E, y_el),
        (grad_y,),
        constraint=base_used[0] if base_used else None,
        note=f"The gradient of {base.title.lower()} ({base.name}), by one prediction element.",
    )

    # 2. dy/dz: differentiate the activation at a general element y_src by the logit z_el.
    #    A delta that pins an index of y_src to the logit's index (the sample, for the
    #    softmax; everything, for the sigmoid) is applied at once; the other indices are
    #    summed over by the chain rule.
    dummies = tuple(sp.Dummy(f"d{pos}", integer=True) for pos in range(len(y_el.indices)))
    jac = sp.diff(_at(comp.value, y_el.indices, dummies), z_el)
    pinned: dict[sp.Basic, sp.Expr] = {}
    factors = list(Mul.make_args(jac))
    for d in dummies:
        for f in factors:
            partner = _calculus._delta_partner(f, d)
            if partner is not None and not partner.has(*dummies):
                pinned[d] = partner
                factors.remove(f)
                break
    free = [d for d in dummies if d not in pinned]
    letters = _fresh(taken, len(free))
    names = dict(zip(free, letters))
    jac = Mul(*factors).xreplace(pinned).xreplace(names)
    src_indices = tuple(pinned[d] if d in pinned else names[d] for d in dummies)
    y_src = y_el.base[src_indices]
    jac_y = to_pred(jac)
    sizes = dict(zip(dummies, (size for _, size in loss.input_indices)))
    limits = [(names[d], 1, sizes[d]) for d in reversed(free)]  # innermost first
    step2 = Step(
        "Derivative of the activation",
        Derivative(y_src, z_el),
        _distinct((jac, jac_y)),
        note=_jacobian_note(comp.name, bool(limits)),
    )

    # 3. The chain rule: dE/dz = sum over y_src of dE/dy_src * dy_src/dz.
    grad_src = _calculus.rename_indices(grad_y, dict(zip(y_el.indices, src_indices)))
    symbolic = Mul(Derivative(E, y_src), Derivative(y_src, z_el), evaluate=False)
    product = Mul(grad_src, jac_y, evaluate=False)
    if limits:
        symbolic, product = Sum(symbolic, *limits), Sum(product, *limits)
    step3 = Step(
        "Chain rule",
        Derivative(E, z_el),
        (symbolic, product),
        note=(
            f"E depends on {pretty(z_el)} only through {y_el.base}"
            + (", summed over the elements it feeds." if limits else ".")
        ),
    )

    # 4. Multiply out, collapse the deltas, apply the constraints, return to the logits.
    evaluated = Mul(grad_src, jac_y)
    collapsed = _calculus.collapse(Sum(evaluated, *limits)) if limits else evaluated
    sample = _sample_point(collapsed, {y_el.base})
    fixed = frozenset({loss.target})
    forms = [collapsed, _calculus.clean(collapsed, sample=sample, fixed_sign=fixed)]
    steps = [step1, step2, step3]
    used = []
    for c in loss.constraints_used():
        new, hit = c.apply(forms[-1])
        if hit:
            used.append((c, _instance(c, forms[-1])))
            forms.append(_calculus.clean(new, sample=sample, fixed_sign=fixed))
    forms.append(to_logits(forms[-1]))
    forms.append(loss.gradient())
    first = used[0] if used else (None, None)
    note = _simplify_note(grad_src, jac_y, limits, first[0], y_el.base)
    steps.append(
        Step(
            "Simplify",
            Derivative(E, z_el),
            _distinct(forms),
            constraint=first[0],
            used_as=first[1],
            note=note,
        )
    )
    for c, eq in used[1:]:
        steps.append(
            Step(
                "Use a constraint",
                Derivative(E, z_el),
                (loss.gradient(),),
                constraint=c,
                used_as=eq,
                note=f"{c.description}.",
            )
        )
    return steps


def _simplify_note(grad: sp.Expr, jac: sp.Expr, limits, constraint, pred_base) -> str:
    """What the chain rule's simplification actually did, sentence by sentence."""
    parts = []
    if limits and jac.has(KroneckerDelta):
        (letter, *_), *_ = limits
        parts.append(
            f"Multiply out; the Kronecker delta keeps the one term of the sum over {letter} "
            "where the class indices agree"
        )
    else:
        parts.append("Multiply the two factors")
    den = sp.fraction(sp.together(grad))[1]
    common = [f for f in Mul.make_args(jac) if f.has(pred_base) and f in Mul.make_args(den)]
    if common:
        parts.append(
            f"{_inline(Mul(*common))} cancels against the denominator of the loss's gradient"
        )
    if constraint is not None:
        parts.append(f"use the constraint: {constraint.description}")
    parts.append(f"write {pred_base} back in the logits")
    return "; ".join(parts) + "."


def _jacobian_note(activation: str, coupled: bool) -> str:
    if coupled:
        return (
            f"Each output of the {activation} depends on every logit of its sample; "
            "the Kronecker delta is 1 when the two class indices agree and 0 otherwise."
        )
    return f"Each output of the {activation} depends on its own logit only."


def _activation_rewrites(element: Indexed, value: sp.Expr):
    """Functions that write activation values as predictions, and back, at any indices."""
    wilds = [sp.Wild(f"w{pos}") for pos in range(len(element.indices))]
    value_pattern = _at(value, element.indices, wilds)
    element_pattern = element.base[tuple(wilds)]

    def to_pred(expr: sp.Expr) -> sp.Expr:
        return expr.replace(value_pattern, element_pattern)

    def to_logits(expr: sp.Expr) -> sp.Expr:
        return expr.replace(element_pattern, value_pattern)

    return to_pred, to_logits


# ---------------------------------------------------------------------- other losses
def _direct(loss: Loss) -> list[Step]:
    x = loss.element
    letters = [v for v, _ in loss.indices]
    fresh = _fresh(_letters_in(loss.expr), len(letters))
    to_fresh = dict(zip(letters, fresh))
    summand = loss.term.doit().xreplace(to_fresh)
    x_fresh = loss.pred[tuple(fresh)]
    limits = [(f, 1, size) for f, (_, size) in reversed(list(zip(fresh, loss.indices)))]
    deltas = Mul(*(KroneckerDelta(a, b) for a, b in zip(letters, fresh)))

    if loss.separable:
        # Each summand depends on its own element only: d(term_k)/dx_i = term'(x_k) delta_ik.
        local = sp.factor_terms(sp.diff(summand, x_fresh))
        body = Mul(local, deltas, evaluate=False)
        collapsed = sp.factor_terms(local.xreplace(dict(zip(fresh, letters))))
        delta_note = "Only the summand of the element itself depends on it: the delta is 1 there."
    else:
        # Differentiate by an element with placeholder indices, as the core does: the
        # element's own letters may be bound inside the summand (a row sum over j).
        holders = [sp.Dummy(f"{v}_", integer=True) for v, _ in loss.input_indices]
        back = dict(zip(holders, (v for v, _ in loss.input_indices)))
        raw = sp.diff(summand, loss.pred[tuple(holders)])
        collapsed = _calculus.rename_indices(_calculus.collapse(Sum(raw, *limits)), back)
        body = _calculus.rename_indices(raw, back)  # before the sums bind the fresh letters
        delta_note = "Each Kronecker delta keeps the one term of its sum where its indices agree."

    steps = [
        Step(
            "Differentiate under the sum",
            Derivative(E, x),
            (Mul(loss.coef, Sum(body, *limits), evaluate=False),),
            note="The derivative of a sum is the sum of the derivatives.",
        ),
        Step(
            "Collapse the sum",
            Derivative(E, x),
            (_times(loss.coef, collapsed),),
            note=delta_note,
        ),
    ]

    sample = _sample_point(collapsed, {loss.pred})
    general = _calculus.clean(
        loss.coef * collapsed, sample=sample, fixed_sign=frozenset({loss.target})
    )
    over, over_note = _common_denominator(loss.coef, collapsed)
    forms, used = [*over, general], []
    for c in loss.constraints_used():
        new, hit = c.apply(forms[-1])
        if hit:
            used.append((c, _instance(c, forms[-1])))
            forms.append(new)
    forms.append(loss.gradient())
    c, eq = used[0] if used else (None, None)
    notes = [over_note] if over_note else []
    if c is not None:
        notes.append(f"use the constraint: {c.description}")
    if not notes and len(Add.make_args(sp.expand(collapsed))) > 1:
        notes.append("Collect the terms and factor")
    elif not notes:
        notes.append(f"Multiply in the constant factor {_inline(loss.coef)}")
    note = "; ".join(notes)
    steps.append(
        Step(
            "Simplify",
            Derivative(E, x),
            _distinct(forms),
            constraint=c,
            used_as=eq,
            note=note[0].upper() + note[1:] + ".",
        )
    )
    return steps


def _inline(expr: sp.Expr) -> str:
    """*expr* as one line of text for a note: the terminal's form if it fits a line."""
    text = pretty(expr)
    return text if "\n" not in text else sp.sstr(expr)


def _common_denominator(coef: sp.Expr, expr: sp.Expr) -> tuple[list[sp.Expr], str]:
    """The forms a student writes to add fractions with different denominators:
    ``coef (a/b + c/d)`` over ``b d``, then its numerator multiplied out; and a note
    saying so.  Empty when *expr* is not such a sum."""
    terms = Add.make_args(sp.factor_terms(expr))
    dens = {sp.fraction(sp.factor_terms(term))[1] for term in terms}
    dens.discard(sp.S.One)
    if len(terms) < 2 or len(dens) < 2 or expr.has(Sum, sp.Piecewise):
        return [], ""
    num, den = sp.fraction(sp.together(expr))
    forms = [_times(coef, Mul(num, sp.Pow(den, -1, evaluate=False), evaluate=False))]
    note = f"Put the fractions over the common denominator {_inline(den)}"
    expanded = sp.expand(num)
    if expanded != num:
        forms.append(_times(coef, Mul(expanded, sp.Pow(den, -1, evaluate=False), evaluate=False)))
        note += f"; the numerator multiplies out to {_inline(expanded)}"
    return forms, note


# ---------------------------------------------------------------------- helpers
def _at(expr: sp.Expr, old: Sequence[sp.Basic], new: Sequence[sp.Basic]) -> sp.Expr:
    """*expr* with its free indices *old* replaced by *new* (simultaneously)."""
    return expr.xreplace(dict(zip(old, new)))


def _letters_in(expr: sp.Basic) -> set[str]:
    return (
        {str(s) for s in expr.free_symbols}
        | {str(v) for s in expr.atoms(Sum) for v, *_ in s.limits}
        | {str(s) for s in expr.atoms(Symbol)}
    )


def _fresh(taken: Iterable[str], count: int) -> list[Symbol]:
    """*count* index letters not in *taken*, in the order of :data:`_FRESH_LETTERS`."""
    taken = set(taken)
    out = []
    for _ in range(count):
        out.append(fresh_index(taken, _FRESH_LETTERS))
        taken.add(out[-1].name)
    return out


def _sample_point(expr: sp.Expr, bases: set) -> dict:
    """A point inside the usual domains, to orient signs: elements at 3/10, sizes at 7."""
    point: dict = {}
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Indexed) and node.base in bases:
            point[node] = sp.Rational(3, 10)
        elif isinstance(node, Symbol) and node.is_integer and node.is_positive:
            point[node] = sp.Integer(7)
    return point


def _instance(c: Constraint, expr: sp.Expr) -> sp.Eq | None:
    """The constraint as it occurs in *expr*, with *expr*'s index letters."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Sum) and c.apply(node)[1]:
            return sp.Eq(node, c.rhs, evaluate=False)
    return None  # pragma: no cover - apply() hit, so some Sum matched


def _times(coef: sp.Expr, expr: sp.Expr) -> sp.Expr:
    """``coef * expr`` left unevaluated, to show the factor, with any sign moved to it."""
    if isinstance(expr, Mul) and expr.as_coeff_Mul()[0].is_negative:
        coef, expr = -coef, -expr
    return Mul(coef, expr, evaluate=False)


def _distinct(forms: Iterable[sp.Expr]) -> tuple[sp.Expr, ...]:
    """*forms* without consecutive repeats (structurally equal expressions)."""
    out: list[sp.Expr] = []
    for f in forms:
        if not out or f != out[-1]:
            out.append(f)
    return tuple(out)
