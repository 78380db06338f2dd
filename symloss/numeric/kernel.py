"""A per-element expression lifted to arrays and compiled: :class:`Kernel`.

Two steps, both derived from the expression and nothing kept by hand:

1. :func:`symloss.numeric.stabilize.stabilize` rewrites the expression into an equal
   one that float64 can evaluate at the extremes: ``log(sigmoid(x))`` becomes ``-softplus(-x)``,
   ``log(softmax)`` becomes ``z - logsumexp(z)``, ``t log y`` becomes ``xlogy(t, y)``
   (``0 log 0 = 0``), and so on.  ``tests/test_numeric.py`` proves each rule an identity.
2. :class:`Kernel` lifts every array-valued piece (``Indexed`` elements, row-wise
   softmax and log-sum-exp, sums over a class index, Kronecker deltas) to a NumPy
   array laid out along the expression's free indices, and lambdifies the remaining
   element-wise expression once, with common-subexpression elimination.  No Python
   loop ever runs over data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp
from sympy import Abs, Add, Indexed, KroneckerDelta, Mul, Pow, S, Sum, Symbol
from sympy.printing.numpy import NumPyPrinter

from symloss.numeric import compiled, fused
from symloss.numeric.config import settings, use_compiled
from symloss.numeric.ops import NUMPY_FUNCS, maximum, minimum
from symloss.numeric.rows import fallback, reduce_rows, row_logsumexp, row_softmax, via_compiled
from symloss.numeric.stabilize import Layout, expand_kernel_functions
from symloss.symbols import (
    argmax_share,
    logsumexp,
    relu,
    rowgap,
    rowmax,
    softmax,
    step,
)

_EXACT = (
    Add,
    Mul,
    Indexed,
    Symbol,
    sp.Number,
    Abs,
    relu,
    step,
    maximum,
    minimum,
    sp.Piecewise,
    sp.Max,
    sp.Min,
    sp.logic.boolalg.BooleanAtom,
    sp.core.relational.Relational,
    sp.functions.elementary.piecewise.ExprCondPair,
)


def _exact(expr: sp.Basic) -> bool:
    """Whether *expr* uses only exactly rounded operations (powers: products, one
    reciprocal or a square root; see :meth:`symloss.numeric.fused._Emitter._pow`)."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Pow):
            if node.exp not in (2, 3, -1, -2, -3, S.Half):
                return False
        elif isinstance(node, (sp.Tuple, sp.IndexedBase)) or not node.args:
            continue
        elif not isinstance(node, _EXACT):
            return False
    return True


def _row_form(
    exprs: Sequence[sp.Expr], layout: Layout, softmax_in_loop: bool = False
) -> tuple[list, list]:
    """A kernel over rows ``(i, j)`` with its row statistics made symbols, for the
    compiled loop to compute row by row (:func:`symloss.numeric.compiled.source`'s *stats*).

    Argmax shares are written with the sums and maxima NumPy's code computes them
    from (``share = [f_d = max] / #[f_k = max]``); then every sum and maximum over the
    row, innermost first, becomes a symbol (softmax and log-sum-exp stay leaves, made
    by the row helpers of :mod:`symloss.numeric.compiled`).  Returns
    ``(stats, exprs)``: *stats* lists ``(symbol, summand over (i, j), "sum" | "max")``
    in an order they can be computed in, one per node (the compiled loop computes
    equal summands once).  With *softmax_in_loop*, softmax and log-sum-exp are made
    of statistics too (the row's maximum M and the sum S of ``exp(z - M)``): a small
    block then needs no leaf but its inputs.  Raises
    :class:`symloss.numeric.fused.Unsupported` for what is not a statistic of a whole row (a
    sum that varies along ``j``, one over another length, several indices at once).
    """
    col, size = layout[-1]
    found: dict[tuple, Symbol] = {}
    stats: list[tuple[Symbol, sp.Expr, str]] = []

    def statistic(body, limits, op, bound):
        if len(limits) != 1 or limits[0][1] != 1 or limits[0][2] != size:
            raise fused.Unsupported("a row statistic that is not over one whole row")
        var = limits[0][0]
        if (body.free_symbols - {var}) & (bound | {col}):
            raise fused.Unsupported("a row statistic that varies along the row")
        # One symbol per node, as Kernel._lift makes one leaf per node: two sums that
        # differ only in their index letter are two symbols (S_k / S_l must stay 0/0
        # where S is 0, not become 1), and no assumptions (log(exp(S)) stays).  The C
        # loop computes equal summands once (source() sees one name for both).
        key = (op, body, tuple(limits))
        if key not in found:
            summand = walk(body, bound | {var}).xreplace({var: col})
            found[key] = sp.Dummy(f"R{len(stats)}")
            stats.append((found[key], summand, op))
        return found[key]

    def walk(node, bound):
        if isinstance(node, (Indexed, Symbol)) or not node.args:
            return node
        if isinstance(node, Sum):
            return statistic(node.function, node.limits, "sum", bound)
        if isinstance(node, rowmax):
            return statistic(node.function, node.limits, "max", bound)
        if isinstance(node, (softmax, logsumexp)):
            if not softmax_in_loop:
                # Leaves: NumPy's row_stats helper exponentiates each logit once; in the
                # loop, a row's max, sum and outputs would be three passes and two exps.
                return node
            base, r = node.args[:2]
            limits = ((_IN_ROW, 1, size),)
            top = statistic(base[r, _IN_ROW], limits, "max", bound)
            total = statistic(sp.exp(base[r, _IN_ROW] - top), limits, "sum", bound)
            if isinstance(node, logsumexp):
                return top + sp.log(total)
            return sp.exp(base[r, node.args[2]] - top) / total
        if isinstance(node, argmax_share):
            best, d = node.args
            ((var, lo, hi),) = best.limits
            # The maximised values are computed again in each loop, vectorised
            # differently: only operations rounded exactly (not libm's, whose vector and
            # scalar forms may differ by an ulp) give the same values, and so the same
            # ties, in all of them.
            if not _exact(best.function):
                raise fused.Unsupported("argmax shares of values computed with libm")
            top = walk(best, bound)
            hit = sp.Piecewise(
                (S.One, sp.Eq(best.function, top, evaluate=False)), (S.Zero, True), evaluate=False
            )
            count = statistic(hit, best.limits, "sum", bound)
            return walk(hit.xreplace({var: d}), bound) / count
        if isinstance(node, (rowgap, KroneckerDelta)):
            raise fused.Unsupported(f"no row form for {type(node).__name__}")
        return node.func(*[walk(a, bound) for a in node.args])

    return stats, [walk(e, frozenset()) for e in exprs]


#: The bound index of the row statistics softmax and log-sum-exp are made of (one
#: symbol: the softmax's and the log-sum-exp's maximum of one row are one statistic).
_IN_ROW = sp.Dummy("k", integer=True)


def _placer(indices: Sequence[sp.Basic], layout: Layout) -> Callable[[np.ndarray], np.ndarray]:
    """A function viewing an array whose axes are *indices* as broadcastable along
    *layout*; the axes are matched once, here, not for every block."""
    letters = [v for v, _ in layout]
    try:
        axes = [letters.index(ix) for ix in indices]
    except ValueError:
        message = f"index {indices} is not among the layout {letters}"

        def fail(arr):
            raise ValueError(message)

        return fail
    if axes == list(range(len(letters))):
        return lambda arr: arr
    order = sorted(range(len(axes)), key=lambda a: axes[a])
    if order == list(range(len(axes))):
        # Axes already in the layout's order: new axes of length 1 by indexing, a view
        # (a tenth of transpose and reshape's cost on a small call).
        index = tuple(slice(None) if a in axes else None for a in range(len(letters)))
        return lambda arr: arr[index]

    def place(arr: np.ndarray) -> np.ndarray:
        arr = np.transpose(arr, order)
        shape = [1] * len(letters)
        for pos, a in enumerate(sorted(axes)):
            shape[a] = arr.shape[pos]
        return arr.reshape(shape)

    return place


#: Up to this many elements per array, the NumPy code allocates its temporaries
#: afresh instead of taking them from the scratch pool (benchmarks/small.py).
SMALL_ELEMENTS = 8192


def _small(values) -> bool:
    """Whether no array among *values* has more than SMALL_ELEMENTS elements."""
    ndarray = np.ndarray
    for v in values:  # a loop: a generator costs more than the test on a small call
        if isinstance(v, ndarray) and v.size > SMALL_ELEMENTS:
            return False
    return True


Leaf = Callable[[Mapping[str, np.ndarray], Mapping[Symbol, int], dict], np.ndarray]


class Kernel:
    """A per-element expression compiled to a NumPy function of named arrays.

    Calling ``kernel(arrays, sizes)`` returns an array broadcastable to the layout's
    shape; ``arrays`` maps array names (``"y"``, ``"t"``, ``"z"``) to ndarrays whose
    axes follow the layout, and ``sizes`` maps the size symbols to integers.
    """

    def __init__(self, expr: sp.Expr | tuple[sp.Expr, ...], layout: Layout):
        self.layout = tuple(layout)
        self.expr = expr
        # A tuple: several outputs sharing subexpressions.
        exprs = expr if isinstance(expr, tuple) else (expr,)
        #: The leaves that are an input array as it is (its indices the layout's):
        #: leaf symbol -> array name, for the checks the compiled loop can make.
        self._input_leaves: dict[Symbol, str] = {}
        leaves, outputs, arrays = self._lift_all([expand_kernel_functions(e) for e in exprs])
        self._leaves = list(leaves.values())
        self._inputs = self._positions(leaves)
        body = outputs if isinstance(expr, tuple) else outputs[0]
        replacements, reduced = sp.cse(outputs)  # once, for both code generators
        # lambdify's code is compiled on first use (the fallback and the tests' reference).
        self._lambdify_input = (list(leaves), body, replacements, reduced)
        try:
            self._inplace = fused.compile_fused(replacements, reduced, list(leaves), arrays)
        except fused.Unsupported:
            self._inplace = None
        #: Sizes that some sum in the kernel runs over (a sum over the samples forbids
        #: evaluating the kernel block by block).
        self.sums_over = frozenset(
            hi for e in exprs for node in e.atoms(Sum) for _, _, hi in node.limits
        )

    def _lift_all(self, exprs, keep=()) -> tuple[dict[Symbol, Leaf], list, list]:
        """``(leaves, bodies, arrays)``: *exprs* lifted (:meth:`_lift`) with one memo, so
        that CSE sees the value's and the gradient's z[i] as the same symbol and shares
        exp(-|z|) and friends; *arrays* are the leaves that hold arrays, not numbers."""
        leaves: dict[Symbol, Leaf] = {}
        memo: dict[sp.Basic, Symbol] = {}
        bodies = [self._lift(e, leaves, memo, keep) for e in exprs]
        arrays = [sym for node, sym in memo.items() if not isinstance(node, Symbol)]
        return leaves, bodies, arrays

    def _positions(self, leaves: Mapping[Symbol, Leaf]) -> dict[str, int]:
        """``{array name: position among *leaves*}`` of the input arrays read as they are."""
        return {
            self._input_leaves[sym]: k for k, sym in enumerate(leaves) if sym in self._input_leaves
        }

    def _lift(self, expr: sp.Basic, leaves: dict[Symbol, Leaf], memo: dict, keep) -> sp.Basic:
        """*expr* with its array-valued pieces replaced by leaf symbols (added to
        *leaves* and *memo*, each with the function that makes its array); the symbols
        in *keep* stay as they are."""
        layout = self.layout

        def leaf(node: sp.Basic, make: Leaf) -> Symbol:
            if node not in memo:
                sym = sp.Dummy(f"leaf{len(leaves)}")
                memo[node] = sym
                leaves[sym] = make
            return memo[node]

        def walk(node: sp.Basic) -> sp.Basic:
            if node in keep:
                return node
            if isinstance(node, Indexed):
                name, place = str(node.base.label), _placer(node.indices, layout)
                sym = leaf(node, lambda a, s, c: place(np.asarray(a[name])))
                if tuple(node.indices) == tuple(v for v, _ in layout):
                    self._input_leaves[sym] = name
                return sym
            if isinstance(node, softmax):
                base, r, c = node.args
                name, place = str(base.label), _placer((r, c), layout)
                return leaf(node, lambda a, s, cache: place(row_softmax(a[name], cache, name)))
            if isinstance(node, logsumexp):
                base, r = node.args
                name, place = str(base.label), _placer((r,), layout)
                return leaf(node, lambda a, s, cache: place(row_logsumexp(a[name], cache, name)))
            if isinstance(node, KroneckerDelta):
                p, q = node.args
                size, place = dict(layout)[p], _placer((p, q), layout)
                return leaf(node, lambda a, s, c: place(np.eye(s[size])))
            if isinstance(node, Sum):
                return leaf(node, self._sum_leaf(node))
            if isinstance(node, (rowmax, argmax_share, rowgap)):
                return leaf(node, self._row_reduction_leaf(node))
            if isinstance(node, Symbol) and node.is_integer and node.is_positive:
                # A Python float: it keeps float32 arrays float32 (NEP 50)
                return leaf(node, lambda a, s, c: float(s[node]))
            if isinstance(node, Symbol):  # a hyperparameter, passed by name
                name = str(node)
                return leaf(node, lambda a, s, c: a[name])
            if node.args:
                return node.func(*[walk(x) for x in node.args])
            return node

        return walk(expr)

    def _sum_leaf(self, node: Sum) -> Leaf:
        (var, lo, hi), *more = node.limits
        inner = Sum(node.function, *more) if more else node.function
        if lo != 1:
            raise ValueError(f"sums must start at 1, not {lo}")
        var, inner = self._unshadow(var, inner)
        kernel = _sum_kernel(inner, (*self.layout, (var, hi)))
        key = ("sum", _statistic_id(node))

        def evaluate(a, s, cache):
            # One sum recurs in several kernels of a loss, and inside other sums, whose
            # layouts add axes after this one's (the multi-class margin's S_i in its
            # gradient's sums): computed once per block, a new array, kept.
            total = lambda: kernel.evaluate(a, s, cache, summed=(0,))  # noqa: E731
            return _statistic(cache, key, len(self.layout), total)

        return evaluate

    def _unshadow(self, var: Symbol, inner: sp.Expr) -> tuple[Symbol, sp.Expr]:
        """Rename a bound index that is also a layout letter (a kink or a summand
        evaluated over the elements ``(i, j)`` may hold a sum over ``j``)."""
        if var not in dict(self.layout):
            return var, inner
        fresh = sp.Dummy(str(var), integer=True)
        return fresh, inner.xreplace({var: fresh})

    def _row_reduction_leaf(self, node: sp.Basic) -> Leaf:
        """``rowmax`` (the maximum over its index), ``rowgap`` (top minus second) and
        ``argmax_share(R, d)`` (1/c at the c tied maxima of R's row, else 0, at ``d``)."""
        top = node if isinstance(node, rowmax) else node.args[0]
        ((var, lo, hi),) = top.limits
        if lo != 1:
            raise ValueError(f"row maxima must start at 1, not {lo}")
        var, inner = self._unshadow(var, top.function)
        kernel = Kernel(inner, (*self.layout, (var, hi)))
        ndim = len(self.layout) + 1
        key = ("rowmax", _statistic_id(top))

        def row(a, s, cache):
            # Reduced (max, partition, comparison) before anything else runs: scratch is fine.
            vals = _floating(kernel.evaluate(a, s, cache))
            vals = vals.reshape((1,) * (ndim - vals.ndim) + vals.shape)
            return np.broadcast_to(vals, vals.shape[:-1] + (int(s[hi]),))

        def top_of(a, s, c):
            # The row maximum, once per block: argmax_share needs it too.  + 0.0: a
            # maximum of zero is +0.0, whatever order the ties of +0 and -0 came in
            # (the compiled loop's, NumPy's and the C helper's orders differ).
            top = lambda: reduce_rows(np.maximum, row(a, s, c)) + 0.0  # noqa: E731
            return _statistic(c, key, ndim - 1, top)

        if isinstance(node, rowmax):
            return top_of
        if isinstance(node, rowgap):

            def gap(a, s, c):
                vals = row(a, s, c)
                if vals.shape[-1] < 2:
                    return np.full(vals.shape[:-1], np.inf)
                two = np.partition(vals, -2, axis=-1)[..., -2:]
                return two[..., 1] - two[..., 0]

            return gap
        axis = [v for v, _ in self.layout].index(node.args[1])

        def share(a, s, c):
            best = top_of(a, s, c)[..., None]  # first: row() returns scratch
            vals = row(a, s, c)
            out = via_compiled("row_share", vals, best)
            if out is None:
                hit = (vals == best).astype(np.float64)
                out = hit / reduce_rows(np.add, hit, keepdims=True)
            # The share at var = d, placed on d's axis of the layout.
            if out.shape[axis] == 1:
                return np.moveaxis(np.take(out, 0, axis=axis), -1, axis)
            return np.moveaxis(np.diagonal(out, axis1=axis, axis2=ndim - 1), -1, axis)

        return share

    @cached_property
    def _fn(self):
        leaves, body, replacements, reduced = self._lambdify_input
        return sp.lambdify(
            leaves,
            body,
            modules=[NUMPY_FUNCS, "numpy"],
            cse=lambda _: (replacements, reduced if isinstance(self.expr, tuple) else reduced[0]),
            printer=_printer(),
        )

    def __call__(self, arrays: Mapping[str, np.ndarray], sizes: Mapping[Symbol, int], cache=None):
        cache = {} if cache is None else cache
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            return self._fn(*[make(arrays, sizes, cache) for make in self._leaves])

    @property
    def fused(self) -> bool:
        """Whether :meth:`evaluate` runs generated code (else ``lambdify``'s)."""
        return self._inplace is not None and settings().backend != "lambdify"

    @cached_property
    def _compiled(self):
        """The same statements as one C loop (:mod:`symloss.numeric.compiled`), or None."""

        try:
            return compiled.CompiledKernel(*self._inplace.statements, len(self._leaves))
        except fused.Unsupported:
            return None

    @cached_property
    def _row_program(self):
        """``(leaves, compiled, inputs)``: the kernel with its row statistics (sums,
        maxima, argmax shares) computed inside the C loop, row by row (:func:`_row_form`),
        so that a block is read once, and its input leaves (:meth:`_positions`); None
        for a kernel with none, or with one that is not over a whole row."""
        return self._program_with_row_statistics(softmax_in_loop=False)

    @cached_property
    def _small_program(self):
        """As :attr:`_row_program`, with softmax and log-sum-exp computed in the loop
        too (for :meth:`small`: no NumPy call before the loop); None for a kernel
        without row statistics."""
        return self._program_with_row_statistics(softmax_in_loop=True)

    def _program_with_row_statistics(self, softmax_in_loop: bool):
        exprs = self.expr if isinstance(self.expr, tuple) else (self.expr,)
        if len(self.layout) != 2 or self._inplace is None:
            return None
        try:
            stats, outputs = _row_form(
                [expand_kernel_functions(e) for e in exprs], self.layout, softmax_in_loop
            )
            if not stats:
                return None
            keep = [sym for sym, _, _ in stats]
            leaves, bodies, arrays = self._lift_all(
                [e for _, e, _ in stats] + outputs, frozenset(keep)
            )
            steps, names = fused.statements(*sp.cse(bodies), [*leaves, *keep], [*arrays, *keep])
            loop = compiled.CompiledKernel(
                steps,
                names[len(stats) :],
                len(leaves),
                [(name, op) for name, (_, _, op) in zip(names, stats)],
            )
        except fused.Unsupported:
            return None
        return list(leaves.values()), loop, self._positions(leaves)

    def evaluate(
        self, arrays, sizes, cache=None, *, summed=(), into=None, length=None, bounds=None
    ):
        """As calling the kernel, through generated code: the compiled C loop
        (:mod:`symloss.numeric.compiled`) or the fused in-place NumPy code
        (:mod:`symloss.numeric.fused`), as the backend setting says (:mod:`symloss.numeric.config`).

        Outputs numbered in *summed* come summed over the layout's last axis (new
        arrays of the leading shape; over an element-wise kernel's only axis, a 0-d
        float64 array: the block's total, added in double).  *length* is that axis's
        length when it is not its size's (a block of an element-wise loss's samples).
        *into* maps output numbers to ``(array, divisor)``: that output divided by
        *divisor*, written into *array* (of the layout's shape) and returned.  The
        compiled loop does both as it goes.  Other arrays returned belong to the
        calling thread's scratch pool: use them before this thread's next ``evaluate``.

        *bounds* maps input array names to None, or to ``"finite"`` where only
        finite values are asked for: where the compiled loop runs and reads the
        array as it is, it finds the array's ``(minimum, maximum)`` in the same pass
        (for ``"finite"``, ``(-DBL_MAX, DBL_MAX)``; both NaN if it holds a NaN or an
        infinity) and puts them there; the others are set to None (their caller
        checks them itself).
        """
        multi = isinstance(self.expr, tuple)
        into = into or {}
        if length is None:
            length = int(sizes[self.layout[-1][1]])
        outs = None
        if not self.fused:
            if bounds:
                bounds.update(dict.fromkeys(bounds))  # nothing checked: the caller checks
            outs = self(arrays, sizes, cache)
            outs = list(outs) if multi else [outs]
        else:
            cache = {} if cache is None else cache
            how = {"summed": summed, "length": length, "into": into}
            with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
                # Decided on the inputs, before any leaf is made: the row program's
                # leaves are the inputs themselves, the other's include row statistics.
                program = self._row_program if use_compiled(arrays.values()) else None
                if program is not None:
                    values = [make(arrays, sizes, cache) for make in program[0]]
                    outs = self._run_compiled(
                        values, program[1], bounds=bounds, inputs=program[2], **how
                    )
                if outs is None:
                    values = [make(arrays, sizes, cache) for make in self._leaves]
                    if use_compiled(values):
                        outs = self._run_compiled(
                            values, self._compiled, bounds=bounds, inputs=self._inputs, **how
                        )
                summed = () if outs is not None else summed  # summed in the loop
                if outs is None and bounds:
                    bounds.update(dict.fromkeys(bounds))  # nothing checked: the caller checks
                if outs is None:
                    # Small arrays: NumPy allocates faster than the pool is searched.
                    outs = (self._inplace.fresh if _small(values) else self._inplace)(*values)
        ndim = len(self.layout)
        for k in summed:
            # Only the summed axis needs its true length: a value constant along it
            # counts m times.  Other axes broadcast later.
            v = _floating(outs[k])
            v = v.reshape((1,) * (ndim - v.ndim) + v.shape)
            v = np.broadcast_to(v, v.shape[:-1] + (length,))
            # (one axis: a float32 block is added in float64, as the compiled loop does)
            outs[k] = reduce_rows(np.add, v) if ndim > 1 else np.add.reduce(v, dtype=np.float64)
        for k, (array, divisor) in into.items():
            if outs[k] is not array:
                np.divide(outs[k], divisor, out=array)
                outs[k] = array
        return outs if multi else outs[0]

    def small(self, arrays, sizes, g: np.ndarray, divisor: float, total: bool):
        """A value-and-gradient kernel's outputs on a small block through the compiled
        loop, called directly (:meth:`compiled.CompiledKernel.small`): ``(value,
        summed)`` (with *total*, a value per element summed over the last axis, and
        *summed* true) and the gradient divided by *divisor*, written into *g* (new, of
        the layout's shape).  None where NumPy's code runs instead: under
        ``"fused"`` and ``"lambdify"``, for leaves the direct call does not take, and
        under ``"auto"`` until the loop is loaded, cached on disk, or worth compiling
        (``compile_after_calls``).
        """
        current = settings()
        if current.backend == "auto":
            after = current.compile_after_calls
        elif current.backend == "c":
            after = 0
        else:
            return None
        program = self._small_program
        makers, loop = (self._leaves, self._compiled) if program is None else program[:2]
        if loop is None:
            return None
        cache: dict = {}
        values = [make(arrays, sizes, cache) for make in makers]
        try:
            return loop.small(values, int(sizes[self.layout[-1][1]]), g, divisor, after, total)
        except compiled.Unavailable as exc:
            return fallback(exc)

    @staticmethod
    def _run_compiled(values, loop, bounds=None, inputs=None, **how):
        """*loop*'s outputs, or None; *bounds* (see :meth:`evaluate`) filled for the
        arrays among *inputs* (name -> leaf position) that the loop checked."""
        if loop is None:
            return None  # an operation with no C form: the NumPy code runs
        # "auto" leaves inputs that would have to be expanded to NumPy's broadcasting.
        expand = settings().backend == "c"
        found = None
        if bounds:
            found = {inputs[name]: want for name, want in bounds.items() if name in inputs}
        try:
            outs = loop(*values, expand=expand, **how, bounds=found)
        except compiled.Unavailable as exc:
            return fallback(exc)
        if outs is not None and bounds:
            for name in bounds:
                bounds[name] = found[inputs[name]] if name in inputs else None
        return outs


def _floating(values) -> np.ndarray:
    """*values* as an array of float32 or float64 (a float32 array as it is)."""
    v = np.asarray(values)
    return v if v.dtype == np.float32 or v.dtype == np.float64 else v.astype(np.float64)


def _canonical(node: sp.Basic) -> sp.Basic:
    """*node* (a Sum or a rowmax) with its bound indices renamed in a fixed way: the
    value's Σ_j t_ij y_ij and the gradient's Σ_l t_il y_il are one statistic."""
    while len(_BOUND) < len(node.limits):
        _BOUND.append(sp.Dummy(f"b{len(_BOUND)}", integer=True))  # never a user's symbol
    return node.xreplace({var: _BOUND[k] for k, (var, *_) in enumerate(node.limits)})


def _statistic_id(node: sp.Basic) -> int:
    """A small integer per row statistic (see :func:`_canonical`): per-block cache keys
    that compare without SymPy's ``==``."""
    key = _canonical(node)
    with _STATISTICS_LOCK:  # kernels may be built on several threads at once
        return _STATISTICS.setdefault(key, len(_STATISTICS))


_BOUND: list[sp.Dummy] = []
_STATISTICS: dict[sp.Basic, int] = {}
_STATISTICS_LOCK = threading.Lock()


def _statistic(cache: dict, key, axes: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A row statistic (a new array from *compute*), once per block's *cache*, with
    *axes* axes.  A kernel whose layout had more or fewer trailing axes may have cached
    it (a sub-kernel's layout extends its parent's): those axes are of length 1 and
    are reshaped away or added; otherwise it is computed again."""
    if key not in cache:
        cache[key] = compute()
    done = cache[key]
    if done.ndim == axes:
        return done
    if any(d != 1 for d in done.shape[axes:]):
        return compute()
    return done.reshape(done.shape[:axes] + (1,) * (axes - done.ndim))


@lru_cache(maxsize=1024)
def _sum_kernel(expr: sp.Expr, layout: tuple) -> Kernel:
    """The kernel of a sum's summand, compiled once: the same row sum (the cosine's
    sum_k y_ik t_ik) recurs in the value, gradient and Hessian kernels of a loss."""
    return Kernel(expr, layout)


class _KernelPrinter(NumPyPrinter):
    """NumPy code printer that writes reciprocals as divisions (``x**-1.0`` is a slow pow)."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:
            return f"1/({self._print(expr.base)})"
        if expr.exp == 2:
            base = self._print(expr.base)
            return f"(({base})*({base}))"
        return super()._print_Pow(expr, rational=rational)


def _printer() -> _KernelPrinter:
    # The settings lambdify itself uses, plus our kernel-only functions by name.
    return _KernelPrinter(
        {
            "fully_qualified_modules": False,
            "inline": True,
            "allow_unknown_functions": True,
            "user_functions": {name: name for name in NUMPY_FUNCS},
        }
    )
