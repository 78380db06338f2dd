"""``Loss.to_jax()``: a loss as a JAX function with symloss's closed-form VJP.

The function runs the source that ``symloss export --format jax`` writes
(:mod:`symloss.frameworks.codegen`), with symloss's error classes: a ``jax.custom_vjp``
function whose VJP evaluates the closed-form gradient, through a second one whose VJP
is the closed-form Hessian.  jax is imported when the function is first called.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from symloss.frameworks import codegen

if TYPE_CHECKING:
    from symloss.core.loss import Loss


def function(loss: Loss):
    """``f(pred, target, weight=None, **extra)`` computing *loss* in JAX.

    See :meth:`symloss.Loss.to_jax`.
    """
    try:
        import jax  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"Loss.to_jax() needs JAX ({exc}): pip install 'symloss[jax]'") from exc
    params = codegen.parameters(loss)
    reduction = loss.reduction

    @functools.wraps(_template)
    def f(pred, target, weight=None, **extra):
        return codegen.runtime(loss, "jax")(pred, target, weight, extra, params, reduction)

    f.__name__ = f.__qualname__ = loss.name
    f.loss = loss
    return f


def _template(pred, target, weight=None, **extra):
    """The loss's value (a scalar, or per-sample values for ``reduction="none"``).

    A ``jax.custom_vjp`` function: ``jax.grad`` evaluates the gradient symloss derived
    in closed form, ``jax.grad`` of ``jax.grad`` (or ``jax.jacrev``) the closed-form
    Hessian; ``jax.jit`` and ``jax.vmap`` trace it.  Forward mode (``jax.jvp``,
    ``jax.jacfwd``, ``jax.hessian``) is not defined for custom_vjp functions.  The
    inputs' values (domains, labels, row sums, weights) are checked where they are
    concrete arrays on the CPU; shapes and dtypes always.  Enable float64 with
    ``jax.config.update("jax_enable_x64", True)``.
    """
