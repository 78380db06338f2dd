r"""The derivatives of one loss, derived once and cached.

:func:`of` gives the :class:`Derivatives` of a :class:`~symloss.Loss` (made on first
use and kept on the loss).  Every form comes from the loss's summand:

* the *kernel* forms, what the NumPy kernels evaluate: the sum-reduced summand
  (``scale * term``, or ``stable_term`` when the loss gives one), its derivative by
  the input element, and the derivative of that;
* the *display* forms, what is printed: the same derivatives of the authored
  ``term``, divided by the reduction's count and cleaned up
  (:func:`symloss.symbolic.calculus.clean`).

Derivatives are taken almost everywhere (``DiracDelta = 0``), as autograd does.  A
loss parsed from user text carries a ``budget_seconds``: each step then runs inside
:func:`symloss.symbolic.budget.budget` and its result is size-checked.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import sympy as sp
from sympy import Indexed, Symbol

from symloss.symbolic import budget, calculus
from symloss.symbolic.calculus import Constraint
from symloss.symbols import fresh_index, sigmoid, softmax

if TYPE_CHECKING:
    from symloss.core.loss import Loss


def of(loss: Loss) -> Derivatives:
    """The cached :class:`Derivatives` of *loss*."""
    found = loss.__dict__.get("_derivatives")
    if found is None:
        # dict.setdefault is atomic: two threads asking at once share one object.
        found = loss.__dict__.setdefault("_derivatives", Derivatives(loss))
    return found


class Derivatives:
    """Gradient and Hessian of one loss, in kernel and display forms (see the module)."""

    def __init__(self, loss: Loss):
        self.loss = loss

    # ------------------------------------------------------------------ helpers
    def _bounded(self, what: str):
        """A budget context for one derivation step of this loss."""
        loss = self.loss
        return budget.budget(loss.budget_seconds, f"{what} of {loss.name}")

    def _checked(self, expr: sp.Expr, what: str) -> sp.Expr:
        if self.loss.budget_seconds is not None:
            budget.check_size(expr, f"the {what} of {self.loss.name}")
        return expr

    def derive(self, expr: sp.Expr, constraints) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        """Derivative of a sum-reduced summand by the loss's input element, and the
        constraints the collapse used."""
        loss = self.loss
        if loss.separable:
            return calculus.almost_everywhere(sp.diff(expr, loss.element)), ()
        raw, used = calculus.derivative(
            expr, loss.indices, loss.pred, constraints, element=loss.input_indices
        )
        return calculus.almost_everywhere(raw), used

    def clean(self, expr: sp.Expr) -> sp.Expr:
        """*expr* in the tidy closed form that is displayed."""
        loss = self.loss
        # A point inside every domain, to orient signs: predictions and probabilities
        # at 3/10, so (y - 1) reads as -(1 - y).  Targets are left free.
        sample: dict = {s: sp.Integer(7) for _, s in loss.input_indices}
        for node in sp.preorder_traversal(expr):
            if isinstance(node, Indexed) and node.base == loss.pred:
                sample[node] = sp.Rational(3, 10)
            elif isinstance(node, (softmax, sigmoid)):
                sample[node] = sp.Rational(3, 10)
        return calculus.clean(expr, sample=sample, fixed_sign=frozenset({loss.target}))

    # ------------------------------------------------------------------ summands
    @cached_property
    def kernel_summand(self) -> sp.Expr:
        """``scale * term`` (the sum reduction), authored order dropped, for kernels."""
        loss = self.loss
        term = loss.term if loss.stable_term is None else loss.stable_term
        with self._bounded("expanding the sums"):  # a sum with literal limits expands
            return (loss.scale * term).doit()

    @cached_property
    def summand(self) -> sp.Expr:
        """``coef * term`` with the authored (unevaluated) order dropped, for display."""
        with self._bounded("expanding the sums"):
            return (self.loss.coef * self.loss.term).doit()

    # ------------------------------------------------------------------ gradient
    @cached_property
    def kernel_gradient(self) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        """Raw derivative of the sum-reduced loss: what the kernels evaluate."""
        with self._bounded("deriving the gradient"):
            raw, used = self.derive(self.kernel_summand, self.loss.constraints)
        return self._checked(raw, "gradient"), used

    @cached_property
    def display_gradient(self) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        """Raw derivative of the sum-reduced *authored* term (the kernels' unless a
        ``stable_term`` is given)."""
        loss = self.loss
        if loss.stable_term is None:
            return self.kernel_gradient
        with self._bounded("deriving the gradient"):
            raw, used = self.derive((loss.scale * loss.term).doit(), loss.constraints)
        return self._checked(raw, "gradient"), used

    @cached_property
    def gradient(self) -> tuple[sp.Expr, sp.Expr, tuple[Constraint, ...]]:
        """(raw, clean, constraints used) for the gradient by the input element."""
        raw, used = self.display_gradient
        raw = raw / self.loss.count
        with self._bounded("simplifying the gradient"):
            clean = self.clean(raw)
        return raw, clean, used

    def general_gradient(self) -> sp.Expr:
        """The gradient without applying any constraint."""
        loss = self.loss
        if not loss.constraints:
            return self.gradient[1]
        with self._bounded("deriving the general gradient"):
            raw, _ = self.derive((loss.scale * loss.term).doit(), ())
            return self.clean(raw / loss.count)

    # ------------------------------------------------------------------ Hessian
    @cached_property
    def hessian_index(self) -> Symbol | None:
        """The extra index of the per-sample Hessian block (``None`` when diagonal)."""
        loss = self.loss
        if loss.separable:
            return None
        taken = {str(v) for v, _ in (*loss.indices, *loss.input_indices)}
        # Nor a letter bound by a sum inside the term (the cosine's sum over k): the
        # Hessian partner y[i, k] would be captured by that sum.
        taken |= {str(s) for s in loss.term.atoms(Symbol)}
        # ... or by a row sum the gradient brings (a class-weighted sum_k w_k t_ik).
        taken |= {str(s) for s in self.kernel_gradient[0].atoms(Symbol)}
        taken |= {str(s) for s in self.display_gradient[0].atoms(Symbol)}
        return fresh_index(taken)

    @property
    def hessian_partner(self) -> Indexed:
        """The second element of a Hessian block, ``y[i, k]`` beside ``y[i, j]``."""
        loss = self.loss
        outer = tuple(v for v, _ in loss.input_indices[:-1])
        return loss.pred[(*outer, self.hessian_index)]

    def _hessian_of(self, raw_grad: sp.Expr) -> sp.Expr:
        wrt = self.loss.element if self.loss.separable else self.hessian_partner
        with self._bounded("deriving the Hessian"):
            # Row sums in the gradient (cosine, Dice) differentiate to Kronecker deltas.
            hess = calculus.almost_everywhere(calculus.collapse(sp.diff(raw_grad, wrt)))
            return self._checked(hess, "Hessian")

    @cached_property
    def kernel_hessian(self) -> sp.Expr:
        return self._hessian_of(self.kernel_gradient[0])

    @cached_property
    def hessian(self) -> tuple[sp.Expr, sp.Expr]:
        """(raw, clean) Hessian, divided by the reduction's count."""
        display = self.kernel_hessian
        if self.loss.stable_term is not None:
            display = self._hessian_of(self.display_gradient[0])
        raw = display / self.loss.count
        with self._bounded("simplifying the Hessian"):
            return raw, self.clean(raw)

    # ------------------------------------------------------------------ kinks
    @cached_property
    def kinks(self) -> tuple[sp.Expr, ...]:
        """Expressions whose zeros are the points where the loss is not twice
        differentiable (see :attr:`symloss.Loss.kinks`)."""
        found: list[sp.Expr] = []
        for expr in (self.kernel_summand, self.kernel_gradient[0]):
            for k in calculus.kink_arguments(expr):
                if k.has(self.loss.pred) and k not in found and -k not in found:
                    found.append(k)
        return tuple(found)
