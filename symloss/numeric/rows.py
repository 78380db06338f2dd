"""Reductions along a row (the class axis): sums, maxima, softmax and log-sum-exp.

Each runs as the C row loop of :mod:`symloss.numeric.compiled` where the backend
compiles (:func:`symloss.numeric.config.use_compiled`), else as NumPy code tuned
for short rows.
"""

from __future__ import annotations

import warnings

import numpy as np

from symloss.errors import BackendError
from symloss.numeric import compiled
from symloss.numeric.config import settings, use_compiled

#: Row maxima over up to this many columns run as a loop of element-wise maxima over
#: the columns: NumPy reduces a short last axis element by element (2.9 ns per element
#: for the max over 10 columns, 0.6 ns column by column).
_MAX_COLUMN_LOOP = 64
#: Up to this many elements a row sum, and a row maximum, is one NumPy reduction: over
#: rows of 10, add.reduce took 1.4 us at 16 rows against einsum's 2.0, and 6.4 against
#: 3.2 at 256; maximum.reduce 1.6 us at 16 rows against 5.1 column by column, and 11.6
#: against 6.7 at 256.
_ONE_SUM = 320
_ONE_MAX = 1600


def reduce_rows(ufunc: np.ufunc, vals: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``ufunc.reduce(vals, axis=-1)`` for ``numpy.maximum`` and ``numpy.add``, fast for
    short rows.  The max is the same; sums add in another order than NumPy's pairwise
    one (a last-bit difference): column by column below 8 columns, else through
    ``einsum`` (0.28 ns per element over 10 columns, against 1.4 for ``sum``); on
    small arrays (:data:`_ONE_SUM`, :data:`_ONE_MAX`), NumPy's own reduction.
    """
    m = vals.shape[-1]
    if vals.ndim < 2 or m < 2:
        return ufunc.reduce(vals, axis=-1, keepdims=keepdims)
    done = via_compiled("row_reduce", ufunc, vals)  # (a float32 row is summed in double)
    if done is not None:
        return done[..., None] if keepdims else done
    if vals.dtype == np.float32 and ufunc is np.add:
        # float32 rows are added in float64 (a float32 sum of m terms may be off by m
        # ulp), then rounded once to float32.
        total = np.add.reduce(vals, axis=-1, keepdims=keepdims, dtype=np.float64)
        return total.astype(np.float32)
    if vals.size <= (_ONE_SUM if ufunc is np.add else _ONE_MAX):
        # One call: einsum's setup and a loop over columns cost more here.
        return ufunc.reduce(vals, axis=-1, keepdims=keepdims)
    if ufunc is np.add and m >= 8:
        total = np.einsum("...j->...", vals)
        return total[..., None] if keepdims else total
    if ufunc is np.maximum and m > _MAX_COLUMN_LOOP:
        # (a maximum is exact in any order)
        return ufunc.reduce(vals, axis=-1, keepdims=keepdims)
    acc = ufunc(vals[..., 0], vals[..., 1])
    for j in range(2, m):
        ufunc(acc, vals[..., j], out=acc)
    return acc[..., None] if keepdims else acc


def row_stats(z, cache: dict, name: str):
    """Row maximum, shifted exponentials and their row sums of ``z``, once per call.

    Softmax and log-sum-exp of the same logits share them, so a fused value and
    gradient kernel exponentiates the logits once.
    """
    key = ("row_stats", name)
    if key not in cache:
        cache[key] = via_compiled("row_stats", z)
    if cache[key] is None:
        top = reduce_rows(np.maximum, z, keepdims=True)
        e = np.exp(z - top)
        cache[key] = (top, e, reduce_rows(np.add, e, keepdims=True))
    return cache[key]


def row_logsumexp(z, cache, name):
    top, _, total = row_stats(z, cache, name)
    return (top + np.log(total))[..., 0]


def row_softmax(z, cache, name):
    key = ("softmax", name)  # once per block, however many leaves hold it
    if key not in cache:
        _, e, total = row_stats(z, cache, name)
        done = via_compiled("row_divide", e, total)
        cache[key] = done if done is not None else e / total
    return cache[key]


def via_compiled(name: str, *args):
    """The C row reduction *name* of :mod:`symloss.numeric.compiled` on *args*, where the
    backend runs compiled code for them (:func:`_use_compiled`); None to use NumPy's."""
    if not use_compiled(args):
        return None
    try:
        return getattr(compiled, name)(*args)
    except compiled.Unavailable as exc:
        return fallback(exc)


_WARNED: set[str] = set()


def fallback(exc: Exception) -> None:
    """Under ``"c"``, the error; under ``"auto"``, None (NumPy's code runs instead),
    with one warning per cause unless the cause is simply that there is no compiler."""
    if settings().backend == "c":
        raise BackendError(f"SYMLOSS_BACKEND=c: {exc}") from None
    if not getattr(exc, "quiet", False) and str(exc) not in _WARNED:
        _WARNED.add(str(exc))
        warnings.warn(f"symloss runs NumPy code instead: {exc}", RuntimeWarning, stacklevel=2)
    return None


def outside(bounds: tuple[float, bool, float, bool], low, high) -> bool:
    """Whether values whose minimum is *low* and maximum *high* leave the interval
    *bounds* = (lo, lo_open, hi, hi_open).  NaN fails every comparison: outside."""
    lo, lo_open, hi, hi_open = bounds
    ok_lo = low > lo if lo_open else low >= lo
    ok_hi = high < hi if hi_open else high <= hi
    return not (ok_lo and ok_hi)
