"""The element-wise input checks of one call: domains and row constraints.

:class:`Validator` runs them on the whole input or on one block of rows (while it is
in cache), and names the first offending element by its index in the caller's input.
float32 inputs are checked as they are (no float64 copy).  Imports nothing above
:mod:`symloss.numeric`'s own modules; :mod:`symloss.numeric.evaluate` builds the
validators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from symloss.errors import InputError
from symloss.numeric import compiled
from symloss.numeric.config import settings
from symloss.numeric.kernel import SMALL_ELEMENTS
from symloss.numeric.rows import outside, reduce_rows
from symloss.symbolic.calculus import Constraint

if TYPE_CHECKING:
    from symloss.core.domain import Domain
    from symloss.core.loss import Loss


@dataclass(frozen=True)
class Validator:
    """The element-wise input checks, runnable on the whole input or a block of rows.

    ``validate(arrays, start)`` checks arrays whose first axis starts at sample
    *start*, and names the first offending element by its index in the caller's
    input.
    """

    loss: Loss
    role: str
    original: tuple[int, ...]
    domains: tuple[tuple[str, Domain], ...]
    constraints: tuple[tuple[Constraint, Callable], ...]
    target: str  # the target array's name
    #: How far from 1 a target row may sum, per class (:func:`row_sum_tolerance` of
    #: the type the rows were given in, or of the call's type if that is narrower).
    row_tolerance: float

    @cached_property
    def intervals(self) -> dict[str, tuple[float, bool, float, bool]]:
        """``{array name: (lo, lo_open, hi, hi_open)}`` of the domains that are
        intervals: checked by the array's extremes alone, which a kernel's loop may
        find as it reads the array (:func:`outside` tells the verdict)."""
        return {key: dom._interval for key, dom in self.domains if dom._interval is not None}

    def __call__(
        self, arrays: Mapping[str, np.ndarray], start: int, skip: frozenset = frozenset()
    ) -> None:
        """Raise :class:`InputError` for the first offending element; the domains of
        the arrays named in *skip* are not checked (their extremes were)."""
        loss = self.loss
        settings()  # an invalid setting in the environment raises here, as it always has
        for key, dom in self.domains:
            if key in skip:
                continue
            arr = arrays[key]
            if not _violated(dom, arr):
                continue
            where = tuple(int(q) for q in np.argwhere(dom.violations(arr))[0])
            value = float(arr[where])
            where = (where[0] + start, *where[1:])
            if len(loss.input_indices) == 1 and len(self.original) != 1:
                where = tuple(int(q) for q in np.unravel_index(where[0], self.original))
            who = (
                "target"
                if key == str(loss.target.label)
                else self.role
                if key == str(loss.pred.label)
                else key
            )
            raise InputError(
                f"{loss.name}: {who} {key}{list(where)} = {value!r} is outside the domain "
                f"{dom.text()}{' (' + dom.description + ')' if dom.description else ''}"
            )
        t = arrays.get(self.target) if self.constraints else None
        for c, check in self.constraints:
            check(loss, c, t, start, self.row_tolerance)

    def passes_compiled(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """Whether every check passes, told by the compiled helpers (each input's
        extremes in one pass, the target's row sums in C): the checks of a small call
        whose kernel runs compiled, a few microseconds where NumPy's reductions take
        ten.  False where they cannot tell or something fails: the caller then runs
        the checks themselves, which name the offending element."""
        try:
            return self._passes_compiled(arrays)
        except compiled.Unavailable:  # the helpers did not build: NumPy's checks run
            return False

    def _passes_compiled(self, arrays: Mapping[str, np.ndarray]) -> bool:
        for key, dom in self.domains:
            bounds = dom._interval
            found = None if bounds is None else compiled.min_max(arrays[key])
            if found is None or outside(bounds, *found):
                return False
        for _, check in self.constraints:
            if check is not _check_rows_sum_to_one:
                return False
            t = arrays[self.target]
            found = compiled.row_sum_extremes(t)
            if found is None or not _sums_near_one(*found, self.row_tolerance * t.shape[-1]):
                return False
        return True


def _violated(dom: Domain, arr: np.ndarray) -> bool:
    """``dom.any_violation(arr)``, without its dispatch on small float64 arrays."""
    bounds = dom._interval
    if bounds is None or arr.size > SMALL_ELEMENTS or arr.dtype.kind != "f" or not arr.size:
        return dom.any_violation(arr)
    return outside(bounds, np.minimum.reduce(arr, axis=None), np.maximum.reduce(arr, axis=None))


def _check_rows_sum_to_one(
    loss: Loss, c: Constraint, t: np.ndarray, start: int, tolerance: float
) -> None:
    """Every row of *t* sums to 1 within *tolerance* per class."""
    sums = reduce_rows(np.add, t)
    tolerance = tolerance * t.shape[-1]
    # The extremes first: two reductions and scalar tests (NaN fails them) on the
    # common, valid call; the row is looked for only when one is off.
    if _sums_near_one(np.minimum.reduce(sums), np.maximum.reduce(sums), tolerance):
        return
    bad = ~(np.abs(sums - 1.0) <= tolerance)  # a NaN sum is bad too
    if bad.any():
        row = int(np.argmax(bad))
        raise InputError(
            # (12 digits: the last ones depend on the order the backend added in)
            f"{loss.name}: target row {row + start} sums to {float(f'{sums[row]:.12g}')!r}, "
            f"but {c.description}"
        )


def row_sum_tolerance(dtype) -> float:
    """How far from 1 a target row given in *dtype* may sum, per class: 1e-9 in
    float64, and 8 units in the last place of 1 in a narrower float type (float32:
    9.5e-7), whose elements were each rounded to it.  The generated framework modules
    (``frameworks/templates/common.py.tmpl``) hold rows to the same rule."""
    dtype = np.dtype(dtype)
    return max(1e-9, 8 * float(np.finfo(dtype).eps)) if dtype.kind == "f" else 1e-9


def _sums_near_one(low, high, tolerance: float) -> bool:
    """Whether row sums from *low* to *high* are all 1 within *tolerance* (a NaN
    fails)."""
    return bool(low >= 1.0 - tolerance and high <= 1.0 + tolerance)


CONSTRAINT_CHECKS: dict[str, Callable[[Loss, Constraint, np.ndarray, int, float], None]] = {
    "one_hot": _check_rows_sum_to_one,
}
