"""``L(pred, target)``, ``L.grad`` and ``L.value_and_grad`` on dask arrays, lazily.

A loss on dask arrays chunked along the samples becomes a dask graph with one task per
chunk, which evaluates symloss's kernels on that chunk with the *sum* reduction (its
value and gradient add up over samples) and the chunk's count (what the mean divides
by: its samples, or its kept labels' class weights).  The totals are divided once, at
the end: a mean of per-chunk means would be wrong for chunks of different sizes.
``value_and_grad`` computes both from the same tasks (compute them together, with
``dask.compute(value, grad)``, to read each chunk once).

Chunks must hold whole rows: a loss over rows (softmax cross-entropy, cosine) refuses
a prediction chunked along the class axis.  Targets, weights and extra inputs that are
NumPy arrays are chunked like the prediction; dask ones are rechunked to match.

dask is imported only when a dask array is passed (:func:`is_lazy` looks at
``sys.modules``, so a program that never imports dask never imports it here).

Layer: :mod:`symloss.frameworks` (calls :mod:`symloss.numeric.evaluate` through the
loss's own methods).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from typing import TYPE_CHECKING

import numpy as np
from sympy import IndexedBase

from symloss.errors import ArgumentError, InputError
from symloss.numeric import evaluate

if TYPE_CHECKING:
    from symloss.core.loss import Loss


def is_lazy(*arrays) -> bool:
    """Whether any of *arrays* is a dask array."""
    da = sys.modules.get("dask.array")
    if da is None:
        return False
    return any(isinstance(a, da.Array) for a in arrays)


def _twin(loss: Loss, reduction: str) -> Loss:
    """*loss* with another reduction (its kernels do not depend on it), made once."""
    key = f"_lazy_{reduction}"
    found = loss.__dict__.get(key)
    if found is None:
        found = (
            loss if loss.reduction == reduction else dataclasses.replace(loss, reduction=reduction)
        )
        found = loss.__dict__.setdefault(key, found)
    return found


def _count(loss: Loss, shape, labels: np.ndarray | None) -> float:
    """What a chunk's mean would divide by (:func:`symloss.numeric.evaluate.prepare`'s
    rule; ``tests/frameworks/test_dask.py`` checks the two agree): it adds up over
    chunks."""
    rank = len(loss.input_indices)
    n = shape[0] if rank == 2 else int(np.prod(shape))
    m = shape[-1] if len(shape) else 1
    if loss.reduction in ("sum", "none"):
        return 1.0
    if loss.reduction == "batchmean":
        return float(n)
    if labels is not None and (loss.label_reduction or loss.ignore_index is not None):
        per_row = np.ones(len(labels))
        weights = [p for p in loss.params if isinstance(p.symbol, IndexedBase)]
        if weights and loss.label_reduction:
            cw = np.asarray(loss.param_values[weights[0].name], dtype=np.float64)
            per_row = cw[np.clip(labels, 0, m - 1)]
        if loss.ignore_index is not None:
            per_row = per_row * (labels != loss.ignore_index)
        return float(per_row.sum())
    sizes = {loss.indices[0][1]: n}
    if rank == 2:
        sizes[loss.input_indices[1][1]] = m
    return float(np.prod([sizes.get(s, m) for s in (loss.mean_over or (loss.indices[0][1],))]))


class _Chunks:
    """The inputs of one call as dask arrays whose chunks line up with the prediction's."""

    def __init__(self, loss: Loss, pred, target, weight, extra):
        import dask.array as da

        self.loss = loss
        name = loss.name
        role = evaluate.role_of(loss, loss.pred)
        self.rank = len(loss.input_indices)
        pred = pred if isinstance(pred, da.Array) else da.asarray(pred)
        if self.rank == 2 and pred.ndim == 2 and pred.numblocks[1] != 1:
            raise InputError(
                f"{name}: the {role}s are chunked along the class axis (chunks "
                f"{pred.chunks[1]}); each chunk must hold whole rows: "
                f"pred.rechunk({{1: -1}})"
            )
        self.pred = pred
        dtype = getattr(target, "dtype", None)
        dtype = np.asarray(target).dtype if dtype is None else np.dtype(dtype)
        self.labels = (
            self.rank == 2
            and pred.ndim == 2
            and np.ndim(target) == 1
            and dtype.kind in "iu"
            and any(c.name == "one_hot" for c in loss.constraints)
        )
        rows = (pred.chunks[0],) if pred.ndim else ()
        self.target = self._align(target, rows if self.labels else pred.chunks, "target")
        samples = rows if self.rank == 2 else pred.chunks
        self.weight = None if weight is None else self._align(weight, samples, "weight")
        self.extra = {k: self._align(v, pred.chunks, k) for k, v in extra.items()}

    def _align(self, x, chunks, what):
        import dask.array as da

        shape = tuple(sum(c) for c in chunks)
        if np.shape(x) != shape:
            pred_shape = tuple(self.pred.shape)
            if what == "target":
                raise InputError(
                    f"{self.loss.name}: {evaluate.role_of(self.loss, self.loss.pred)} shape "
                    f"{pred_shape} and target shape {np.shape(x)} do not match"
                )
            if what == "weight":
                raise InputError(
                    f"{self.loss.name}: weight shape {np.shape(x)} does not match "
                    f"{shape[0] if shape else 1} samples"
                )
            raise InputError(
                f"{self.loss.name}: {what} shape {np.shape(x)} and "
                f"{evaluate.role_of(self.loss, self.loss.pred)} shape {pred_shape} do not match"
            )
        if isinstance(x, da.Array):
            return x if x.chunks == chunks else x.rechunk(chunks)
        return da.from_array(np.asarray(x), chunks=chunks)

    def blocks(self):
        """``(index, pred, target, weight, extra)`` of each chunk, as dask Delayed objects."""
        grid = self.pred.to_delayed()
        target = self.target.to_delayed()
        weight = None if self.weight is None else self.weight.to_delayed()
        extra = {k: v.to_delayed() for k, v in self.extra.items()}
        for index in np.ndindex(grid.shape):
            rows = index[:1] if self.rank == 2 else index
            t = target[rows] if self.labels else target[index]
            w = None if weight is None else weight[rows]
            yield index, grid[index], t, w, {k: v[index] for k, v in extra.items()}

    def block_shape(self, index):
        return tuple(self.pred.chunks[a][k] for a, k in enumerate(index))

    def offset(self, index):
        """Where the chunk *index* starts in the prediction, axis by axis."""
        return tuple(int(sum(self.pred.chunks[a][:k])) for a, k in enumerate(index))


def _chunk(loss: Loss, p, t, w, extra, grad: bool, offset=()):
    """One chunk: (the sum reduction's value, the chunk's count, its gradient or None);
    per-sample values instead of the sum for ``reduction="none"``.  An error names the
    element by its index in the whole array (the chunk starts at *offset*)."""
    try:
        return _evaluate_chunk(loss, p, t, w, extra, grad)
    except InputError as exc:
        raise InputError(_shifted(str(exc), offset)) from None


def _shifted(message: str, offset) -> str:
    """*message* with the element and row indices it names moved by *offset*: the
    NumPy path's messages name ``key[i, j] = value``, ``label l at row r`` and
    ``target row r sums to``."""
    if not offset or not any(offset):
        return message

    def element(match):
        where = [int(k) for k in match.group(2).split(",")]
        moved = [k + (offset[a] if a < len(offset) else 0) for a, k in enumerate(where)]
        return f"{match.group(1)}{moved} = "

    message = re.sub(r"(\w+)\[([\d, ]+)\] = ", element, message, count=1)
    return re.sub(
        r"(at row|target row) (\d+)",
        lambda m: f"{m.group(1)} {int(m.group(2)) + offset[0]}",
        message,
    )


def _evaluate_chunk(loss: Loss, p, t, w, extra, grad: bool):
    labels = (
        t if (np.ndim(t) == 1 and np.ndim(p) == 2 and np.asarray(t).dtype.kind in "iu") else None
    )
    count = _count(loss, np.shape(p), labels)
    if loss.reduction == "none":
        S = loss
    else:
        S = _twin(loss, "sum")
    weight = None if w is None else np.asarray(w).reshape(-1)
    if grad:
        value, g = S.value_and_grad(p, t, weight=weight, **extra)
    else:
        value, g = S(p, t, weight=weight, **extra), None
    return value, count, g


def _lazy(loss: Loss, pred, target, weight, extra, want_value: bool, want_grad: bool):
    import dask
    import dask.array as da

    if weight is not None and np.ndim(weight) == 0:
        raise ArgumentError(f"{loss.name}: weight must be an array of per-sample weights")
    chunks = _Chunks(loss, pred, target, weight, extra)
    rank = chunks.rank
    sums, counts, grads, values = [], [], {}, {}
    for index, p, t, w, e in chunks.blocks():
        offset = chunks.offset(index)
        task = dask.delayed(_chunk, pure=True)(loss, p, t, w, e, want_grad, offset)
        shape = chunks.block_shape(index)
        if want_grad:
            grads[index] = da.from_delayed(task[2], shape=shape, dtype=np.float64)
        if loss.reduction == "none":
            vshape = shape[:1] if rank == 2 else shape
            values[index[:1] if rank == 2 else index] = da.from_delayed(
                task[0], shape=vshape, dtype=np.float64
            )
        else:
            sums.append(task[0])
            counts.append(task[1])
    value = None
    if want_value:
        if loss.reduction == "none":
            value = _assemble(
                values, chunks.pred.numblocks[:1] if rank == 2 else chunks.pred.numblocks
            )
        else:
            divide = loss.reduction != "sum"
            value = da.from_delayed(
                dask.delayed(_total, pure=True)(loss.name, sums, counts, divide),
                shape=(),
                dtype=np.float64,
            )
    grad = None
    if want_grad:
        grad = _assemble(grads, chunks.pred.numblocks)
        if loss.reduction not in ("sum", "none"):
            total = da.from_delayed(
                dask.delayed(_total_count, pure=True)(loss.name, counts), shape=(), dtype=np.float64
            )
            grad = grad / total
    return value, grad


def _assemble(blocks: dict, numblocks):
    import dask.array as da

    def nest(prefix):
        depth = len(prefix)
        if depth == len(numblocks):
            return blocks[prefix]
        return [nest((*prefix, k)) for k in range(numblocks[depth])]

    if not numblocks:
        return blocks[()]
    return da.block(nest(()))


def _total_count(name: str, counts) -> float:
    total = float(sum(counts))
    if total == 0:
        raise InputError(f"{name}: every row is ignored or has zero weight; the mean is undefined")
    return total


def _total(name: str, sums, counts, divide: bool) -> float:
    """The chunks' sums added (exactly, as the NumPy path adds its blocks'), divided by
    their counts' total for a mean."""
    sums = [float(s) for s in sums]
    total = math.fsum(sums) if all(map(math.isfinite, sums)) else sum(sums)
    return (total / _total_count(name, counts) if divide else total) + 0.0


def value(loss: Loss, pred, target, weight=None, **extra):
    """``L(pred, target)`` on dask arrays: a lazy 0-d dask array (per-sample values
    for ``reduction="none"``)."""
    return _lazy(loss, pred, target, weight, extra, True, False)[0]


def gradient(loss: Loss, pred, target, weight=None, **extra):
    """``L.grad(pred, target)`` on dask arrays: a lazy dask array of the prediction's
    shape and chunks."""
    return _lazy(loss, pred, target, weight, extra, False, True)[1]


def value_and_gradient(loss: Loss, pred, target, weight=None, **extra):
    """``(value, gradient)`` on dask arrays, from the same tasks."""
    return _lazy(loss, pred, target, weight, extra, True, True)
