"""Kernel-only SymPy functions (``maximum``, ``minimum``, ``where_nonneg``, ``quotient``) and the
NumPy forms of every function a kernel may call."""

from __future__ import annotations

import numpy as np
from sympy import Function


class maximum(Function):
    """Element-wise ``max(a, b)`` (``numpy.maximum``); kernel-only."""

    nargs = 2


class minimum(Function):
    """Element-wise ``min(a, b)`` (``numpy.minimum``); kernel-only."""

    nargs = 2


class where_nonneg(Function):
    """``a if x >= 0 else b``, element-wise; a kernel-only helper (``numpy.where``)."""

    nargs = 3


class quotient(Function):
    """``x / y``, kept as its own node; kernel-only.

    SymPy merges ``(x / y) / y`` into ``x * y**-2``, whose ``y**2`` leaves the float64
    range before the quotient does (see ``symloss.numeric.stabilize._over_common_power``).
    """

    nargs = 2

    def fdiff(self, argindex=1):
        x, y = self.args
        return 1 / y if argindex == 1 else -x / y**2

    def _eval_rewrite_as_exp(self, x, y, **kwargs):
        return x / y


def _np_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _np_xlogy(x, y):
    # Kernels run under np.errstate(all ignored): log(0) and 0 * -inf are masked here.
    return np.where(x != 0, x * np.log(y), 0.0)


def _np_xdivy(x, y):
    return np.where(x != 0, x / y, 0.0)


def _np_relu(x):
    return np.maximum(x, 0.0)


def _np_step(x):
    # relu'(0) = 0, as autograd; a cast, not numpy.where (3.5 ns per element on
    # unpredictable signs, against 0.5).
    return np.greater(x, 0.0).astype(np.float64)


def _np_where_nonneg(x, a, b):
    return np.where(x >= 0, a, b)


NUMPY_FUNCS = {
    "sigmoid": _np_sigmoid,
    "xlogy": _np_xlogy,
    "xdivy": _np_xdivy,
    "relu": _np_relu,
    "step": _np_step,
    "where_nonneg": _np_where_nonneg,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "quotient": np.divide,
}


#: Row maxima over up to this many columns run as a loop of element-wise maxima over
#: the columns: NumPy reduces a short last axis element by element (2.9 ns per element
