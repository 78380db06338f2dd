"""What values an array or a hyperparameter may take, as data.

:class:`Domain` is an array's set (with the closure the numeric functions accept, and
how people say it); :class:`Param` is a hyperparameter with its default and domain.
Shared instances used by several loss families are defined once, in
:mod:`symloss.losses.common`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp
from sympy import IndexedBase

from symloss.errors import ArgumentError, OptionError
from symloss.numeric.rows import outside, via_compiled


@dataclass(frozen=True)
class Domain:
    r"""Where an array's elements live, as data.

    Parameters
    ----------
    set : sympy.Set
        The mathematical domain of each element, e.g. ``Interval.open(0, 1)``.
    closure : sympy.Set, optional
        The set accepted by the numeric functions, when it is larger than ``set``
        (e.g. ``[0, 1]`` for a probability, whose endpoints give the limit value).
    description : str
        How people say it: "probability", "one-hot or probability row".
    """

    set: sp.Set
    closure: sp.Set | None = None
    description: str = ""

    @property
    def accepted(self) -> sp.Set:
        return self.closure if self.closure is not None else self.set

    @cached_property
    def _interval(self) -> tuple[float, bool, float, bool] | None:
        """``(lo, lo_open, hi, hi_open)`` of an interval (infinite ends open), else None."""
        s = self.accepted
        if not isinstance(s, sp.Interval):
            return None
        return (
            float(s.inf),
            bool(s.left_open or s.inf.is_infinite),
            float(s.sup),
            bool(s.right_open or s.sup.is_infinite),
        )

    def any_violation(self, values: np.ndarray) -> bool:
        """Whether some element lies outside the accepted set (the minimum and maximum,
        in one pass where the compiled backend runs; no masks).  A float32 array is
        checked as it is (no float64 copy)."""
        v = _floats(values)
        bounds = self._interval
        if bounds is not None and v.size:
            # NaN propagates to the extremes and fails every comparison
            return outside(bounds, *(via_compiled("min_max", v) or (v.min(), v.max())))
        return bool(self.violations(v).any())

    def violations(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the elements outside the accepted set (NaN is always outside)."""
        s = self.accepted
        v = _floats(values)
        bad = ~np.isfinite(v)
        if isinstance(s, sp.Interval):
            lo, hi = float(s.inf), float(s.sup)
            bad |= (v < lo) | (v > hi)
            if s.left_open:
                bad |= v == lo
            if s.right_open:
                bad |= v == hi
        elif isinstance(s, sp.FiniteSet):
            bad |= ~np.isin(v, [float(x) for x in s])
        return bad

    def latex(self) -> str:
        return sp.latex(self.set)

    def text(self, accepted: bool = True) -> str:
        """The set in interval notation, e.g. ``[0, 1]`` or ``(-oo, oo)``."""
        return set_text(self.accepted if accepted else self.set)


def _floats(values) -> np.ndarray:
    """*values* as float64, or as they are if they are float32."""
    v = np.asarray(values)
    return v if v.dtype == np.float32 else np.asarray(v, dtype=np.float64)


def set_text(s: sp.Set) -> str:
    if isinstance(s, sp.Interval):
        left = "(" if s.left_open or s.inf.is_infinite else "["
        right = ")" if s.right_open or s.sup.is_infinite else "]"
        return f"{left}{s.inf}, {s.sup}{right}"
    if isinstance(s, sp.FiniteSet):
        return "{" + ", ".join(map(str, s)) + "}"
    if isinstance(s, sp.Union):
        return " U ".join(set_text(part) for part in s.args)
    return sp.sstr(s)


@dataclass(frozen=True)
class Param:
    """A hyperparameter: a symbol in the expression, with a default and a domain.

    ``symbol`` is a ``Symbol`` for a scalar (Huber's ``delta``) or an ``IndexedBase``
    for a per-class vector (class weights).  ``default`` is used by the numeric
    functions when the user does not bind a value at :func:`get`.
    """

    name: str
    symbol: sp.Basic
    default: object
    domain: sp.Set | None = None
    description: str = ""
    #: Values worth comparing in a plot (the docs draw the loss for each): focal's
    #: gamma = 0 ... 5 as in Lin et al.'s Fig. 1, Huber's delta.  Empty: no sweep.
    sweep: tuple[float, ...] = ()

    def validate(self, value, loss_name: str):
        if isinstance(self.symbol, IndexedBase):
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise OptionError(f"{loss_name}: {self.name} must be a 1-D array of finite numbers")
            if self.domain is not None and not all(sp.Float(v) in self.domain for v in arr):
                raise OptionError(f"{loss_name}: {self.name} must lie in {set_text(self.domain)}")
            return tuple(float(v) for v in arr)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ArgumentError(f"{loss_name}: {self.name} must be a number, got {value!r}")
        value = float(value)
        if not np.isfinite(value) or (
            self.domain is not None and sp.Float(value) not in self.domain
        ):
            where = set_text(self.domain) if self.domain is not None else "the reals"
            raise OptionError(f"{loss_name}: {self.name} = {value!r} is outside {where}")
        return value
