"""Evaluating a loss on arrays: checked inputs, kernels, blocks, weights, reductions.

Everything :class:`~symloss.Loss`'s ``__call__``, ``grad``, ``hess`` and
``value_and_grad`` do happens here:

* :func:`prepare` checks one call's inputs (shapes, dtypes, integer labels, extra
  inputs, weights) and lays them out as a :class:`Batch`; the element-wise checks
  (domains, row constraints) are deferred to each block, while it is in cache (a
  domain that is an interval, by the extremes the compiled loop finds as it reads
  the block: no pass of its own);
* :func:`of` gives the loss's compiled :class:`~symloss.numeric.kernel.Kernel`
  objects (value, gradient, Hessian and the fused value-and-gradient), built once
  from the stabilised derivatives of :mod:`symloss.symbolic.derivatives`;
* :func:`compute` evaluates them block by block (:func:`~symloss.numeric.blocks.map_blocks`),
  scaling gradient rows by the sample weights and the reduction's count while in cache
  (and, when only an element-wise loss's total is wanted, adding the values up in
  the loop, in double, without storing them).

The module is long because the small-call path (a plain call's batch reused, the
compiled loop called directly) sits beside the blocked path it must agree with:
both read the same :class:`Batch`, and a change to one is reviewed with the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from sympy import IndexedBase, Symbol

from symloss.errors import ArgumentError, InputError
from symloss.numeric.blocks import map_blocks
from symloss.numeric.checks import CONSTRAINT_CHECKS, Validator, row_sum_tolerance
from symloss.numeric.config import settings
from symloss.numeric.fused import SCRATCH
from symloss.numeric.kernel import SMALL_ELEMENTS, Kernel
from symloss.numeric.rows import outside, reduce_rows
from symloss.numeric.stabilize import stabilize
from symloss.symbolic import budget, derivatives
from symloss.symbolic.calculus import Constraint

if TYPE_CHECKING:
    from symloss.core.loss import Loss


@dataclass(frozen=True)
class Names:
    """What :func:`prepare` needs of a loss besides the arrays, resolved once per loss
    (SymPy's ``str`` of a symbol costs microseconds, and a small call makes several)."""

    pred: str
    target: str
    extra: tuple[str, ...]
    params: tuple[tuple[str, str, bool], ...]  # (param name, array name, per class)
    one_hot: bool
    #: ``(size symbol, axis of the input)`` of each size; the loss's other sizes are n.
    size_axes: tuple
    mean_over: tuple  # the sizes the mean divides by
    domains: tuple  # (array name, Domain) of each checked input
    domains_for_labels: tuple  # the same when the target holds integer labels
    constraints: tuple[tuple[Constraint, Callable], ...]
    sample_keys: frozenset
    #: The Validator of each (input shape, target is not labels, row tolerance), made
    #: on first use.
    validators: dict = field(default_factory=dict, compare=False)
    #: The Batch of a plain call (two float arrays of one shape and type, nothing
    #: else) and its Validator, by (shape, type, defer, keep_float32): the next such
    #: call only swaps the arrays in (:func:`prepare`).
    plain: dict = field(default_factory=dict, compare=False)


def names_of(loss: Loss) -> Names:
    """The cached :class:`Names` of *loss*."""
    found = loss.__dict__.get("_numeric_names")
    if found is None:
        params = tuple(
            (p.name, str(p.symbol.label), True)
            if isinstance(p.symbol, IndexedBase)
            else (p.name, str(p.symbol), False)
            for p in loss.params
        )
        extra = tuple(str(b.label) for b in loss.extra_inputs)
        pred, target = str(loss.pred.label), str(loss.target.label)
        size_axes = {size: axis for axis, (_, size) in enumerate(loss.input_indices)}
        for _, size in loss.indices:
            size_axes.setdefault(size, 0)
        domains = tuple(
            (key, loss.domains[key])
            for key in (pred, target, *extra)
            if loss.domains.get(key) is not None
        )
        found = Names(
            pred,
            target,
            extra,
            params,
            any(c.name == "one_hot" for c in loss.constraints),
            tuple(size_axes.items()),
            tuple(loss.mean_over or (loss.indices[0][1],)),
            domains,
            tuple(d for d in domains if d[0] != target),
            tuple(
                (c, CONSTRAINT_CHECKS[c.name])
                for c in loss.constraints
                if c.name in CONSTRAINT_CHECKS
            ),
            frozenset({pred, target, *extra}),
        )
        found = loss.__dict__.setdefault("_numeric_names", found)
    return found


def of(loss: Loss) -> Kernels:
    """The cached :class:`Kernels` of *loss*."""
    found = loss.__dict__.get("_kernels")
    if found is None:
        found = loss.__dict__.setdefault("_kernels", Kernels(loss))
    return found


class Kernels:
    """The numeric kernels of one loss, each compiled on first use."""

    def __init__(self, loss: Loss):
        self.loss = loss
        self.derived = derivatives.of(loss)
        self._plans: dict[tuple[bool, bool, bool], tuple[Kernel | None, bool]] = {}

    def stable(self, expr: sp.Expr) -> sp.Expr:
        """*expr* rewritten into its float64-stable form (under the loss's budget)."""
        loss = self.loss
        with budget.budget(loss.budget_seconds, f"stabilising the kernel of {loss.name}"):
            return stabilize(expr, frozenset({loss.target}), self.nonzero)

    @cached_property
    def nonzero(self) -> frozenset:
        """The input arrays whose domain excludes 0 (the stable forms may divide by them)."""
        loss = self.loss
        found = set()
        for base in (loss.pred, loss.target, *loss.extra_inputs):
            domain = loss.domains.get(str(base.label))
            if domain is not None and domain.accepted.contains(0) is sp.false:
                found.add(base)
        return frozenset(found)

    def _compile(self, expr, layout, what: str) -> Kernel:
        loss = self.loss
        with budget.budget(loss.budget_seconds, f"compiling the {what} kernel of {loss.name}"):
            return Kernel(expr, layout)

    def plan(self, value: bool, grad: bool, hess: bool) -> tuple[Kernel | None, bool]:
        """``(fused, blocked)`` for a call wanting these outputs, once per combination:
        the fused value-and-gradient kernel (or None), and whether the kernels may run
        block by block (no sum over the samples).  The kernels wanted are derived and
        compiled here, by name: only those."""
        key = (value, grad, hess)
        found = self._plans.get(key)
        if found is None:
            fused = self.fused if value and grad else None
            kernels = [
                getattr(self, k)
                for k, want in (
                    ("value", value and fused is None),
                    ("gradient", grad and fused is None),
                    ("hessian", hess),
                )
                if want
            ]
            sample_size = self.loss.indices[0][1]
            blocked = not any(
                sample_size in k.sums_over for k in (*kernels, *([fused] if fused else []))
            )
            found = self._plans.setdefault(key, (fused, blocked))
        return found

    @property
    def layout(self):
        """``(index, size)`` of each axis of the input."""
        return self.loss.input_indices

    @cached_property
    def stable_summand(self) -> sp.Expr:
        """The float64-stable summand the value kernels are compiled from (shown as the
        derivation's last step, "What the kernel computes")."""
        return self.stable(self.derived.kernel_summand)

    @cached_property
    def value(self) -> Kernel:
        return self._compile(self.stable_summand, self.loss.indices, "value")

    @cached_property
    def gradient(self) -> Kernel:
        return self._compile(self.stable(self.derived.kernel_gradient[0]), self.layout, "gradient")

    @cached_property
    def hessian(self) -> Kernel:
        layout = self.layout
        if not self.loss.separable:
            layout = (*layout, (self.derived.hessian_index, layout[-1][1]))
        return self._compile(self.stable(self.derived.kernel_hessian), layout, "Hessian")

    @cached_property
    def fused(self) -> Kernel | None:
        """Value and gradient in one kernel, sharing subexpressions, over the input's
        layout.  A summand over fewer indices than the input (a row-wise loss:
        cosine, Dice) is constant along the others, and comes out with length 1 there.
        """
        loss = self.loss
        if loss.indices != loss.input_indices[: len(loss.indices)]:
            return None
        d = self.derived
        exprs = (self.stable_summand, self.stable(d.kernel_gradient[0]))
        return self._compile(exprs, self.layout, "value-and-gradient")


def value(loss: Loss, pred, target, weight=None, **extra) -> float | np.ndarray:
    """The loss value (see :meth:`symloss.Loss.__call__`)."""
    batch = prepare(loss, pred, target, weight, extra, defer=True, keep_float32=True)
    return compute(loss, batch, value=True, grad=False)[0]


def gradient(loss: Loss, pred, target, weight=None, out=None, **extra) -> np.ndarray:
    """The gradient (see :meth:`symloss.Loss.grad`)."""
    batch = prepare(loss, pred, target, weight, extra, defer=True, keep_float32=True)
    g = compute(loss, batch, value=False, grad=True, out=out)[1]
    return batch.unflatten(g) if out is None else out


def hessian(loss: Loss, pred, target, weight=None, **extra) -> np.ndarray:
    """The Hessian (see :meth:`symloss.Loss.hess`)."""
    batch = prepare(loss, pred, target, weight, extra, defer=True, keep_float32=True)
    h = compute(loss, batch, value=False, grad=False, hess=True)[2]
    return batch.unflatten(h) if loss.separable else h


def value_and_gradient(loss: Loss, pred, target, weight=None, out=None, **extra):
    """``(value, gradient)`` in one pass (see :meth:`symloss.Loss.value_and_grad`)."""
    batch = prepare(loss, pred, target, weight, extra, defer=True, keep_float32=True)
    v, g, _ = compute(loss, batch, value=True, grad=True, out=out)
    return v, (batch.unflatten(g) if out is None else out)


def compute(loss: Loss, batch: Batch, value: bool, grad: bool, hess: bool = False, out=None):
    """Evaluate the kernels block by block: ``(value, gradient, Hessian)``.

    Each block of rows is validated (``batch.validate``), evaluated, and its
    gradient and Hessian rows are scaled by the sample weights and the reduction's
    count while still in cache; the value is reduced from per-block partial sums
    (per-sample values for ``reduction="none"``).  The gradient is written into
    *out* when given (see :meth:`symloss.Loss.grad`).
    """
    built = of(loss)
    target_key = names_of(loss).target
    n = batch.shape[0]
    dtype = batch.dtype
    per = np.empty(n, dtype) if value and loss.reduction == "none" else None
    partial: dict[int, float] = {}
    g = (np.empty(batch.shape, dtype) if out is None else batch.buffer(out)) if grad else None
    hshape = batch.shape if loss.separable else (*batch.shape, batch.shape[-1])
    h = np.empty(hshape, dtype) if hess else None
    fused, blocked = built.plan(value, grad, hess)
    sizes, weight = batch.sizes, batch.weight
    row_size = math.prod(batch.shape[1:])  # (numpy.prod costs 3 us on a tuple)
    if (
        fused is not None
        and not hess
        and weight is None
        and per is None
        and n * row_size <= SMALL_ELEMENTS
    ):
        return _small_value_and_grad(loss, batch, fused, g, target_key, out is None)

    # A value per element of a 2-D input is summed over each row as it is computed
    # (the kernels' last axis is then the value's); the gradient and Hessian go
    # straight into g and h, divided by the count there (both in the compiled loop;
    # see Kernel.evaluate).  When only the total of an element-wise loss is wanted,
    # each block's values are added up in the loop too (in double), never stored.
    total = len(batch.shape) == 1 and per is None and weight is None
    summed = (0,) if total or len(batch.value_shape) == len(batch.shape) == 2 else ()
    divisor = batch.count if weight is None else 1.0  # else scale_rows does both
    value_shape = batch.value_shape[1 : len(batch.value_shape) - len(summed)]

    def take(v, lo, hi):
        # Kernel.evaluate's arrays are scratch: used here, before the next kernel.
        if total:  # the block's total, a 0-d float64 array
            partial[lo] = float(v)
            return
        v = np.asarray(v)
        extra = v.ndim - 1 - len(value_shape)
        if extra > 0:  # a row-wise summand from a fused kernel: constant along a row
            v = v[(..., *(0,) * extra)]
        shape = (hi - lo, *value_shape)
        full = v if v.shape == shape else np.broadcast_to(v, shape)
        if per is None and weight is None:
            # (float64 accumulation: a float32 block's sum keeps float64's accuracy)
            partial[lo] = float(np.add.reduce(full, axis=None, dtype=np.float64))
            return
        rowsum = full
        if full.ndim > 1:
            rowsum = reduce_rows(np.add, full.reshape(hi - lo, -1))
        if weight is not None:
            rowsum = rowsum * weight[lo:hi]
        if per is not None:
            np.add(rowsum, 0.0, out=per[lo:hi])  # + 0.0: no negative zero, as NumPy
        else:
            partial[lo] = float(np.add.reduce(rowsum, axis=None, dtype=np.float64))

    # Domains that are intervals are checked by the extremes the first kernel's
    # compiled loop finds as it reads the inputs (no pass of their own); the other
    # checks, and those the loop could not make, run on the block as before.
    validate = batch.validate
    in_loop = validate is not None and bool(validate.intervals) and (value or grad)
    # Whole-line domains need finite values only: one cheaper test in the loop.
    wanted = {} if not in_loop else {k: _asked(b) for k, b in validate.intervals.items()}

    def check(raw, lo, found):
        done = {k: v for k, v in found.items() if v is not None}
        if any(outside(validate.intervals[k], *v) for k, v in done.items()):
            validate(raw, lo)  # raises, naming the first offending element
        validate(raw, lo, skip=frozenset(done))

    def run(arrays, lo, hi):
        raw = arrays
        found = dict(wanted) if in_loop else None
        if validate is not None and not in_loop:
            validate(arrays, lo)
        arrays = batch.block(arrays, target_key)
        length = hi - lo if total else None  # the summed axis: this block's samples
        if fused is not None:
            into = {1: (g[lo:hi], divisor)}
            how = {"summed": summed, "into": into, "length": length, "bounds": found}
            take(fused.evaluate(arrays, sizes, **how)[0], lo, hi)
        else:
            if value:
                how = {"summed": summed, "length": length, "bounds": found}
                take(built.value.evaluate(arrays, sizes, **how), lo, hi)
            if grad:
                into = {0: (g[lo:hi], divisor)}
                built.gradient.evaluate(arrays, sizes, into=into, bounds=None if value else found)
        if in_loop:
            check(raw, lo, found)
        if grad and weight is not None:
            batch.scale_rows(g[lo:hi], lo)
        if hess:
            built.hessian.evaluate(arrays, sizes, into={0: (h[lo:hi], divisor)})
            if weight is not None:
                batch.scale_rows(h[lo:hi], lo)

    try:
        if n * row_size <= SMALL_ELEMENTS:
            # The small-input path: one block on this thread, no pool, and the NumPy
            # code's temporaries are new arrays (Kernel.evaluate), not scratch.
            settings()  # an invalid setting in the environment raises, as for blocks
            run(batch.arrays, 0, n)
        elif blocked:
            map_blocks(run, batch.arrays, batch.sample_keys, n, row_size)
        else:
            run(batch.arrays, 0, n)
            SCRATCH.release()  # whole-input scratch is not kept
    except ValueError:
        if batch.validate is not None:
            # The error the whole input gives (domains first, then constraints, each
            # at its first element), whatever the block size and the failing block.
            batch.validate(batch.arrays, 0)
        raise
    if not value:
        result = None
    elif per is not None:
        result = batch.unflatten_samples(per)
    else:  # fsum of the block sums: the order of the blocks' threads does not matter
        sums = [partial[k] for k in sorted(partial)]
        # (fsum raises on inf + -inf, where the plain sum gives NaN as NumPy's does)
        total = math.fsum(sums) if all(map(math.isfinite, sums)) else sum(sums)
        result = batch.scalar(total / batch.count + 0.0)
    return result, g, h


def _asked(bounds: tuple[float, bool, float, bool]) -> str | None:
    """What the loop must find of an input whose domain is the interval *bounds*:
    ``"finite"`` for the whole real line, else None (its minimum and maximum)."""
    lo, lo_open, hi, hi_open = bounds
    return "finite" if lo == -math.inf and hi == math.inf and lo_open and hi_open else None


def _small_value_and_grad(
    loss: Loss, batch: Batch, fused: Kernel, g: np.ndarray, target: str, fresh: bool
):
    """:func:`compute`'s value and gradient of a small input without weights (the
    common call, and the one whose fixed costs show): the same steps as one block of
    :func:`compute`, without its closures and bookkeeping.  *fresh*: *g* is a new
    array (not the caller's ``out``), which the compiled loop may write directly."""
    inputs = batch.arrays
    settings()  # an invalid setting in the environment raises, as for blocks
    arrays = batch.block(inputs, target)
    value_shape = batch.value_shape
    # The compiled loop first, into new arrays (a value per element may come summed
    # over rows), then the checks: in C too when it ran, else as NumPy's code does.
    done = (
        fused.small(arrays, batch.sizes, g, batch.count, len(value_shape) == len(batch.shape))
        if fresh
        else None
    )
    check = batch.validate
    if check is not None and not (done is not None and check.passes_compiled(inputs)):
        check(inputs, 0)
    if done is not None and done[1]:
        total = float(np.add.reduce(done[0], axis=None, dtype=np.float64))
        return batch.scalar(total / batch.count + 0.0), g, None
    if done is not None:
        v = done[0]
    else:
        # The count as a scalar of g's type: NumPy converts a Python float on every
        # call (1.0 us against 0.6 at n = 10); exact, as a small count is in float32 too.
        into = {1: (g, g.dtype.type(batch.count))}
        v = np.asarray(fused.evaluate(arrays, batch.sizes, into=into)[0])
    # Only the total is wanted: the values per element are added up at once, not
    # row by row first (a value constant along a row is broadcast: it counts m times).
    extra = v.ndim - len(value_shape)
    if extra > 0:  # a row-wise summand from a fused kernel: constant along a row
        v = v[(..., *(0,) * extra)]
    if v.shape != value_shape:
        v = np.broadcast_to(v, value_shape)
    total = float(np.add.reduce(v, axis=None, dtype=np.float64))
    return batch.scalar(total / batch.count + 0.0), g, None


def reduce(loss: Loss, batch: Batch, per: np.ndarray) -> np.ndarray | float:
    """Apply weights and the reduction to per-sample values of the sum-reduced loss."""
    if batch.weight is not None:
        per = per * batch.weight
    if loss.reduction == "none":
        return batch.unflatten_samples(per)
    total = float(np.add.reduce(per, axis=None, dtype=np.float64))
    return batch.scalar(total / batch.count + 0.0)  # + 0.0: no negative zero


@dataclass
class Batch:
    """Validated inputs of one call, laid out for the kernels."""

    arrays: dict[str, np.ndarray]
    sizes: dict[Symbol, int]
    shape: tuple[int, ...]  # the input's shape as the kernels see it
    value_shape: tuple[int, ...]
    original_shape: tuple[int, ...]
    count: float  # what the reduction divides by
    weight: np.ndarray | None  # per-sample factor (weights, ignored rows), or None
    sample_keys: frozenset = frozenset()  # arrays whose first axis is the samples
    #: Element-wise checks still to run, block by block (``prepare(defer=True)``).
    validate: Callable[[Mapping[str, np.ndarray], int], None] | None = None
    #: The target holds integer labels, shape (n,), made one-hot rows by :meth:`block`.
    labels: bool = False
    ignore_index: int | None = None
    #: The floating type the kernels compute in and the gradient is returned in
    #: (:func:`float_type`).
    dtype: type = np.float64

    def buffer(self, out) -> np.ndarray:
        """*out* viewed in the kernels' layout, after checking it can hold the gradient."""
        if not isinstance(out, np.ndarray) or out.dtype != self.dtype:
            raise ArgumentError(
                f"out must be a {np.dtype(self.dtype).name} numpy array (the inputs' float type)"
            )
        if out.shape != self.original_shape:
            raise InputError(f"out has shape {out.shape}, the gradient has {self.original_shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise InputError("out must be C-contiguous and writeable")
        return out.reshape(self.shape)  # a view: contiguous

    def with_inputs(self, pred_key: str, pred: np.ndarray, target_key: str, target) -> Batch:
        """This batch with other prediction and target arrays of the same shape and
        type (see :func:`prepare`)."""
        batch = object.__new__(Batch)
        batch.__dict__.update(self.__dict__)
        batch.arrays = {**self.arrays, pred_key: pred, target_key: target}
        return batch

    def block(self, arrays: dict[str, np.ndarray], target: str) -> dict[str, np.ndarray]:
        """A block's arrays for the kernels: integer labels made one-hot rows."""
        if not self.labels:
            return arrays
        labels = arrays[target]
        rows = one_hot(labels, self.shape[-1], self.ignore_index, self.dtype)
        return {**arrays, target: rows}

    def scale_rows(self, g: np.ndarray, start: int = 0) -> np.ndarray:
        """Apply per-sample weights and the reduction's count, in place (*g*'s rows
        are the samples from *start* on)."""
        if self.weight is not None:
            w = self.weight[start : start + g.shape[0]]
            g *= w.reshape((-1,) + (1,) * (g.ndim - 1))
        if self.count != 1:
            g /= self.count
        return g

    def scalar(self, value: float):
        """A reduced loss value: a Python float, or a NumPy float32 for float32 inputs."""
        return value if self.dtype is np.float64 else np.float32(value)

    def unflatten(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(self.original_shape) if g.shape != self.original_shape else g

    def unflatten_samples(self, per: np.ndarray) -> np.ndarray:
        if len(self.shape) == 1 and self.original_shape != self.shape:
            return per.reshape(self.original_shape)
        return per


def as_real(values, name: str, what: str, cast: bool = True) -> np.ndarray:
    """*values* as an array of real numbers (float64 unless *cast* is False).

    Every array input follows the same rules: booleans, integers and floats are
    accepted; complex numbers, strings, dates, objects and masked arrays with masked
    elements are refused (NumPy would drop an imaginary part, parse a string, count
    days, or ignore the mask, and the loss would be silently wrong).
    """
    if isinstance(values, np.ma.MaskedArray):
        if np.ma.is_masked(values):
            raise InputError(
                f"{name}: {what} is a masked array with masked elements; pass only the "
                "elements to use (values[~values.mask]) or fill them (values.filled(x))"
            )
        values = values.data
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        kind = {
            "c": "complex",
            "U": "string",
            "S": "bytes",
            "M": "datetime",
            "m": "timedelta",
            "O": "object",
        }.get(arr.dtype.kind, str(arr.dtype))
        raise InputError(f"{name}: {what} must hold real numbers, got {kind} dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float64) if cast else arr


def float_type(*arrays: np.ndarray) -> type:
    """The floating type a call computes in: float32 when every floating-point array
    among *arrays* is float32 (integers and booleans, such as labels or 0/1 targets,
    do not count), else float64.  So float32 with float64 is float64, as
    ``numpy.result_type`` says, and float16 is computed in float64."""
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if floats and all(d == np.float32 for d in floats):
        return np.float32
    return np.float64


def prepare(
    loss: Loss, pred, target, weight, extra, defer: bool = False, keep_float32: bool = False
) -> Batch:
    """Check and lay out one call's inputs.

    With *defer*, the element-wise checks (domains, row constraints) are not run
    here but left in the batch's ``validate``, for the blocked evaluation to run on
    each block while it is in cache.  With *keep_float32*, float32 inputs stay
    float32 (:func:`float_type`; no copy), else every input is made float64.
    """
    keys = names_of(loss)
    ndarray = np.ndarray
    plain = (
        weight is None
        and not extra
        and type(pred) is ndarray
        and type(target) is ndarray
        and pred.shape == target.shape
        and pred.dtype == target.dtype
        and (pred.dtype == np.float64 or (keep_float32 and pred.dtype == np.float32))
    )
    if plain:
        # Everything but the arrays depends only on their shape and type: the batch
        # of the first such call, with these arrays in (no check is skipped: the
        # element-wise ones run on the arrays, the rest held for this shape).
        found = keys.plain.get((pred.shape, pred.dtype.char, defer, keep_float32))
        if found is not None:
            template, checks = found
            if not defer:  # (deferred, the template's validate runs them)
                checks({**template.arrays, keys.pred: pred, keys.target: target}, 0)
            return template.with_inputs(keys.pred, pred, keys.target, target)
    batch, checks = _prepare(loss, keys, pred, target, weight, extra, defer, keep_float32)
    if plain and batch.shape == pred.shape and batch.weight is None and not batch.labels:
        if len(keys.plain) >= 64:  # inputs of ever-changing shapes
            keys.plain.clear()
        # (without this call's arrays: a template must not keep a large input alive;
        # with its Validator, which keys.validators may drop meanwhile)
        template = batch.with_inputs(keys.pred, None, keys.target, None)
        keys.plain[pred.shape, pred.dtype.char, defer, keep_float32] = (template, checks)
    return batch


def _prepare(
    loss: Loss, keys: Names, pred, target, weight, extra, defer: bool, keep_float32: bool
) -> tuple[Batch, Validator]:
    """:func:`prepare`'s work for a call whose batch is not kept: the batch, and the
    Validator of its element-wise checks."""
    name = loss.name
    role = "logit" if loss.composition is not None else "prediction"
    p = as_real(pred, name, role, cast=False)
    t_raw = as_real(target, name, "target", cast=False)
    if keep_float32:
        given_extra = [as_real(extra[k], name, k, cast=False) for k in keys.extra if k in extra]
        dtype = float_type(p, t_raw, *given_extra)
    else:
        dtype = np.float64
    p = np.asarray(p, dtype=dtype)
    ndim = len(loss.input_indices)
    original = p.shape
    labels = None
    is_one_hot = keys.one_hot
    if is_one_hot and p.ndim == 2 and t_raw.ndim == 1 and t_raw.dtype.kind in "iu":
        labels = np.asarray(t_raw, dtype=np.int64)
        if labels.shape[0] != p.shape[0]:
            raise InputError(
                f"{name}: {role} shape {p.shape} and label shape {labels.shape} do not match"
            )
        bad = (labels < 0) | (labels >= p.shape[1])
        if loss.ignore_index is not None:
            bad &= labels != loss.ignore_index
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(
                f"{name}: label {int(labels[row])} at row {row} is not a class index "
                f"in [0, {p.shape[1]})"
            )
        # Deferred: one-hot rows are built block by block (in cache, on the workers).
        t = labels if defer else one_hot(labels, p.shape[1], loss.ignore_index, dtype)
    else:
        t = np.asarray(t_raw, dtype=dtype)
    if ndim == 1 and p.ndim != 1:
        p = p.reshape(-1)  # element-wise losses treat every element as a sample
        t = t.reshape(-1) if t.shape == original else t
    if p.ndim != ndim:
        raise InputError(
            f"{name}: {role}s must have {ndim} dimension(s) "
            f"({', '.join(str(s) for _, s in loss.input_indices)}), got shape {original}"
        )
    if p.shape != t.shape and labels is None:
        raise InputError(
            f"{name}: {role} shape {original} and target shape {np.shape(target)} do not match"
        )
    if p.size == 0:
        raise InputError(f"{name}: empty input (shape {original}); the mean is undefined")
    arrays = {keys.pred: p, keys.target: t}
    for key in keys.extra:
        if key not in extra:
            raise ArgumentError(f"{name}: missing keyword input {key}= (shape {original})")
        arr = np.asarray(as_real(extra.pop(key), name, key, cast=False), dtype=dtype)
        arr = arr.reshape(-1) if ndim == 1 and arr.shape == original else arr
        if arr.shape != p.shape:
            raise InputError(
                f"{name}: {key} shape {arr.shape} and {role} shape {original} do not match"
            )
        arrays[key] = arr
    # Hyperparameters may be given at call time too: L(y, t, delta=1.0).
    given = {prm.name: extra.pop(prm.name) for prm in loss.params if prm.name in extra}
    if extra:
        raise ArgumentError(f"{name}: unexpected keyword input(s) {', '.join(sorted(extra))}")
    # One Validator per input shape and kind of target, made once (a frozen dataclass
    # costs microseconds to build, and a small call is a few tens of them).
    # Target rows are held to the precision they were given in (float32 rows with
    # float64 logits: float32's), or to the call's if that is narrower.
    row_tolerance = max(row_sum_tolerance(dtype), row_sum_tolerance(t_raw.dtype))
    validate = keys.validators.get((original, labels is None, row_tolerance))
    if validate is None:
        checks = keys.domains if labels is None else keys.domains_for_labels
        constraints = keys.constraints if labels is None else ()
        validate = Validator(loss, role, original, checks, constraints, keys.target, row_tolerance)
        if len(keys.validators) >= 64:  # inputs of ever-changing shapes
            keys.validators.clear()
        keys.validators[original, labels is None, row_tolerance] = validate
    if not defer:
        validate(arrays, 0)
    for pname, key, per_class in keys.params:
        value = loss.param_values[pname]
        if pname in given:
            value = next(q for q in loss.params if q.name == pname).validate(given[pname], name)
        if value is None and not per_class:
            raise ArgumentError(
                f"{name}: hyperparameter {pname} has no value; pass it by name, as in"
                f" L(pred, target, {pname}=...) or L.bind({pname}=...)"
            )
        if per_class:
            vec = np.ones(p.shape[-1], dtype) if value is None else np.asarray(value, dtype)
            if vec.shape != (p.shape[-1],):
                raise InputError(
                    f"{name}: {pname} has {vec.size} entries but there are {p.shape[-1]} classes"
                )
            arrays[key] = vec
        else:
            # A Python float: NumPy keeps a float32 array float32 with it (NEP 50)
            arrays[key] = float(value)
    sizes = {size: p.shape[axis] for size, axis in keys.size_axes}

    n = p.shape[0]
    w = None
    if weight is not None:
        w = as_real(weight, name, "weight").reshape(-1)
        if w.shape != (n,):
            raise InputError(f"{name}: weight shape {np.shape(weight)} does not match {n} samples")
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise InputError(f"{name}: weights must be finite and non-negative")
    if labels is not None and loss.ignore_index is not None:
        keep = (labels != loss.ignore_index).astype(np.float64)
        w = keep if w is None else w * keep
    if loss.reduction in ("sum", "none"):
        count = 1.0
    elif loss.reduction == "batchmean":
        count = float(n)
    elif labels is not None and (loss.label_reduction or loss.ignore_index is not None):
        # PyTorch's mean for class labels: divide by the summed class weight of the
        # (non-ignored) labels; without class weights, by the number of kept rows.
        cw = next((arrays[key] for _, key, per_class in keys.params if per_class), None)
        per_row = (
            cw[np.clip(labels, 0, p.shape[1] - 1)]
            if cw is not None and loss.label_reduction
            else np.ones(n)
        )
        if loss.ignore_index is not None:
            per_row = per_row * (labels != loss.ignore_index)
        count = float(per_row.sum(dtype=np.float64))
        if count == 0:
            raise InputError(
                f"{name}: every row is ignored or has zero weight; the mean is undefined"
            )
    else:
        count = float(math.prod(sizes[s] for s in keys.mean_over))
    value_shape = tuple(p.shape[: len(loss.indices)])
    sample_keys = keys.sample_keys
    batch = Batch(
        arrays,
        sizes,
        p.shape,
        value_shape,
        original,
        count,
        w,
        sample_keys,
        validate if defer else None,
        labels is not None and defer,
        loss.ignore_index,
        dtype,
    )
    return batch, validate


def one_hot(labels: np.ndarray, m: int, ignore_index: int | None, dtype=np.float64) -> np.ndarray:
    """One-hot rows of *m* classes for integer *labels*; a row whose label is
    *ignore_index* is any probability row (1/m each: its weight is 0)."""
    t = np.zeros((len(labels), m), dtype)
    ignored = labels == ignore_index if ignore_index is not None else None
    if ignored is None or not ignored.any():
        t.reshape(-1)[np.arange(len(labels)) * m + labels] = 1.0  # flat: 2x faster than t[r, c]
        return t
    rows = np.nonzero(~ignored)[0]
    t.reshape(-1)[rows * m + labels[rows]] = 1.0
    t[ignored] = 1.0 / m
    return t


def role_of(loss: Loss, base: IndexedBase) -> str:
    if base == loss.target:
        return "target"
    return "logit" if loss.composition is not None else "prediction"
