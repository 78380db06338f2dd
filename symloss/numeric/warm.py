"""Compiling a loss's C kernels ahead of time (``symloss build``).

The compiled loop of a kernel is specialised on how its inputs are laid out (whole
arrays, rows, scalars) and on what the call wants (a value summed over rows, a
gradient divided in place), and compiled on first use.  :func:`warm` makes those
first uses now: it evaluates the loss's value, gradient, value-and-gradient and
Hessian on a few rows drawn inside its domains, with the compiled backend forced on
for any size, so that the kernels a large call needs are in the on-disk cache
(:mod:`symloss.numeric.compiled`) before it comes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp

from symloss.numeric import compiled
from symloss.numeric.config import configured
from symloss.numeric.kernel import SMALL_ELEMENTS

if TYPE_CHECKING:
    from symloss.core.loss import Loss

#: What :func:`warm` evaluates, in order.
PARTS = ("value", "gradient", "value_and_grad", "hessian")


def _draw(rng, domain, shape) -> np.ndarray:
    """Values inside *domain* (an interval or a finite set), away from its ends."""
    s = domain.accepted if domain is not None else sp.Interval(-sp.oo, sp.oo)
    if isinstance(s, sp.FiniteSet):
        return rng.choice(np.array([float(v) for v in s]), size=shape)
    if not isinstance(s, sp.Interval):
        return rng.uniform(0.25, 0.75, size=shape)
    lo = float(s.inf) if s.inf.is_finite else None
    hi = float(s.sup) if s.sup.is_finite else None
    if lo is not None and hi is not None:
        return rng.uniform(lo + 0.1 * (hi - lo), hi - 0.1 * (hi - lo), size=shape)
    if lo is not None:
        return rng.uniform(lo + 0.1, lo + 4.0, size=shape)
    if hi is not None:
        return rng.uniform(hi - 4.0, hi - 0.1, size=shape)
    return rng.normal(scale=2.0, size=shape)


def inputs(loss: Loss, rows: int = 4, classes: int = 3) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(pred, target, extra)``: a few rows inside the loss's domains and constraints."""
    rng = np.random.default_rng(0)
    shape = (rows, classes) if len(loss.input_indices) == 2 else (rows,)
    doms = loss.domains
    pred = _draw(rng, doms.get(str(loss.pred.label)), shape)
    if any(c.name == "one_hot" for c in loss.constraints) and len(shape) == 2:
        target = np.eye(classes)[np.arange(rows) % classes]
    else:
        target = _draw(rng, doms.get(str(loss.target.label)), shape)
    extra = {str(b.label): _draw(rng, doms.get(str(b.label)), shape) for b in loss.extra_inputs}
    return pred, target, extra


#: Class counts :func:`warm` builds row-wise kernels for by default: one above the
#: compiled-in row widths and one of them (rows of 8 to 32 elements have the row
#: length compiled in: each other width compiles on its first use).
CLASSES = (3, 10)


def warm(
    loss: Loss, classes: tuple[int, ...] = CLASSES, dtypes: tuple = (np.float64,)
) -> list[str]:
    """Compile (or load from the cache) the C kernels a call of *loss* needs; returns
    the parts that could not be evaluated on the drawn inputs (each ``"part: why"``).
    Row-wise losses are built for rows of each number of *classes*, and every kernel
    for inputs of each of *dtypes* (float32 inputs run float32 loops).  Raises
    :class:`symloss.errors.CompilerUnavailable` when no kernel can be compiled here
    (no compiler, no usable cache)."""
    problems: list[str] = []
    for m in classes if len(loss.input_indices) == 2 else classes[:1]:
        for dtype in dtypes:
            problems += _warm(loss, m, dtype)
    return list(dict.fromkeys(problems))


def _warm(loss: Loss, classes: int, dtype=np.float64) -> list[str]:
    # A few rows, and just more elements than a small call has: a large call's value
    # and value-and-gradient run other loops (the total added up in the loop, the
    # domains checked in it) than the small-input path's.
    large = SMALL_ELEMENTS // (classes if len(loss.input_indices) == 2 else 1) + 1
    problems: list[str] = []
    for rows in (4, large):
        problems += _warm_rows(loss, rows, classes, dtype)
    return problems


def _warm_rows(loss: Loss, rows: int, classes: int, dtype) -> list[str]:
    pred, target, extra = inputs(loss, rows=rows, classes=classes)
    pred, target = pred.astype(dtype), target.astype(dtype)
    extra = {key: value.astype(dtype) for key, value in extra.items()}
    problems = []
    calls = {
        "value": loss.__call__,
        "gradient": loss.grad,
        "value_and_grad": loss.value_and_grad,
        "hessian": loss.hess,
    }
    rows = pred.shape[0]
    # Plain, with sample weights (the gradient is scaled apart), and with integer labels.
    variants = [("", target, {}), (" with weights", target, {"weight": np.ones(rows)})]
    if pred.ndim == 2 and any(c.name == "one_hot" for c in loss.constraints):
        variants.append((" with labels", np.arange(rows) % pred.shape[1], {}))
    # "auto" with no size threshold: the kernels specialised as a large call's blocks.
    # and compile_after_calls=0: the loops of small calls too (Kernel.small).
    with (
        configured(backend="auto", compile_min_elements=0, compile_after_calls=0),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)  # failures are returned instead
        for part in PARTS:
            for how, target_as, kw in variants:
                try:
                    calls[part](pred, target_as, **kw, **dict(extra))
                except Exception as exc:  # noqa: BLE001 - reported; the other parts go on
                    problems.append(f"{part}{how}: {type(exc).__name__}: {exc}")
                failed = compiled.environment_error()
                if failed is not None:
                    raise failed
    return problems
