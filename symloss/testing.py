"""Helpers for your own test suite: assert that your gradient code matches symloss.

>>> import numpy as np
>>> from symloss.testing import assert_gradient_matches
>>> assert_gradient_matches("bce_logits", lambda z, t: (1 / (1 + np.exp(-z)) - t) / len(z))
"""

from __future__ import annotations

from collections.abc import Callable

from symloss.checker import check
from symloss.core.loss import Loss

__all__ = ["assert_gradient_matches"]


def assert_gradient_matches(
    loss: Loss | str,
    grad_fn: Callable | None,
    value_fn: Callable | None = None,
    **kw,
) -> None:
    """Fail the calling test unless *grad_fn* (and *value_fn*) match the symbolic truth.

    Parameters
    ----------
    loss : Loss or str
        The loss your code implements, or its registry name.
    grad_fn : callable or None
        ``grad_fn(pred, target)``, returning an array shaped like ``pred``.  ``None``
        checks *value_fn* alone (with ``torch=True``, through autograd).
    value_fn : callable, optional
        ``value_fn(pred, target)``, returning the loss.
    **kw
        Passed to :func:`symloss.checker.check`: ``params``, ``samples``, ``seed``,
        ``torch``, ``rtol``, ``families``.

    Raises
    ------
    AssertionError
        A :class:`symloss.checker.CheckFailed` whose message is the whole report: which
        input family failed, the worst input, and the diagnosis.

    Examples
    --------
    In a test module:

    >>> import numpy as np
    >>> def test_my_softmax_cross_entropy_gradient():
    ...     def grad(z, t):  # right for any targets, not only rows that sum to 1
    ...         e = np.exp(z - z.max(axis=1, keepdims=True))
    ...         p = e / e.sum(axis=1, keepdims=True)
    ...         return (p * t.sum(axis=1, keepdims=True) - t) / len(z)
    ...     assert_gradient_matches("cce_logits", grad, samples=5)
    >>> test_my_softmax_cross_entropy_gradient()
    """
    check(loss, value=value_fn, grad=grad_fn, **kw).raise_if_failed()
