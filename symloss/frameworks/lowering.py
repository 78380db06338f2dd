r"""From a kernel expression over ``Indexed`` elements to named array statements.

The NumPy kernels (:mod:`symloss.numeric.kernel`) lift every array-valued piece of a
stabilised expression to an array and compile the element-wise rest.  This module
does the same, for code that a person reads: the result is a list of
:class:`Statement` objects, each one line of the generated function, with names
that say what they hold (``softmax_z``, ``sum_t_y``, ``one_minus_t``), for the
framework printers of :mod:`symloss.frameworks.printers` to write out.

* An element ``y[i, k]`` becomes the array ``y``, viewed along the layout's axes
  (``y[:, None, :]`` in the layout ``(i, j, k)`` of a Hessian block);
* ``softmax(z, i, j)`` and ``logsumexp(z, i)`` become ``softmax_z = softmax(z)`` and
  ``logsumexp_z = logsumexp(z)``, computed once per function;
* a sum over the class index ``Sum(f, (k, 1, m))`` becomes a row sum of ``f``
  evaluated along the last axis (``sum_t_y = (t * y).sum(-1, keepdims)``), a row
  maximum ``rowmax`` a row maximum, and an argmax share the tied maxima's indicator
  over their count, as :mod:`symloss.numeric.kernel` computes them;
* ``KroneckerDelta(j, k)`` becomes an identity matrix on the axes ``j`` and ``k``;
* the rest is element-wise: it is rewritten with the kernels' expansions
  (:func:`symloss.numeric.stabilize.expand_kernel_functions`: ``log(1 + x)`` as
  ``log1p(x)``, ``log cosh`` without overflow, ``Max`` as ``maximum``) and its common
  subexpressions get a name each (:func:`sympy.cse`).

Only ``sigmoid`` and ``softplus`` keep their names here: each framework prints them
with its own stable primitive (``torch.sigmoid``, ``jax.nn.softplus``), and the NumPy
module with a helper printed from the same expansion the NumPy kernels use.

Layer: :mod:`symloss.frameworks` (imports :mod:`symloss.numeric`, :mod:`symloss.symbols`).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import sympy as sp
from sympy import Indexed, IndexedBase, KroneckerDelta, S, Sum, Symbol
from sympy.codegen.cfunctions import expm1, log1p

from symloss.numeric.ops import maximum, minimum, quotient, where_nonneg
from symloss.numeric.stabilize import expand_kernel_functions
from symloss.symbols import (
    argmax_share,
    logsumexp,
    relu,
    rowgap,
    rowmax,
    sigmoid,
    softmax,
    softplus,
    step,
    xdivy,
    xlogy,
)

Layout = Sequence[tuple[Symbol, Symbol]]


class Unsupported(ValueError):
    """The expression holds a piece the code generator has no array form for."""


@dataclass
class Statement:
    """One line of a generated function: ``name = <kind>(payload)``.

    *kind* is ``"expr"`` (an element-wise SymPy expression over the names defined
    before), ``"rowsum"`` / ``"rowmax"`` (the sum or maximum of an element-wise
    expression along the last axis; ``keepdims`` says whether that axis stays, with
    length 1), ``"softmax"`` / ``"logsumexp"`` (of an input array, along its rows),
    ``"eye"`` (an identity matrix of a size) or ``"size"`` (a size of an input:
    ``axis`` -1 for the classes, 0 for the samples, None for every element).
    """

    name: str
    kind: str
    expr: sp.Expr | None = None
    array: str = ""
    keepdims: bool = True
    axis: int | None = None
    symbol: Symbol | None = field(default=None, repr=False)


@dataclass
class Function:
    """The statements of one generated function and the names of its outputs."""

    statements: list[Statement]
    outputs: list[sp.Expr]
    #: Symbol -> the code that stands for it (a name, or an array viewed along axes).
    code: dict[Symbol, str]
    #: Symbols holding arrays (the others hold numbers: parameters and sizes).
    data: frozenset
    #: For each output, the layout axes it varies along (an output constant along
    #: some axes is broadcast to the full shape by the caller).
    spans: list[frozenset]
    #: The sizes the function reads, by name (``n``, ``m``).
    sizes: dict[str, Statement]


# ------------------------------------------------------------------ naming
_WORDS = {
    sp.exp: "exp",
    sp.log: "log",
    log1p: "log1p",
    expm1: "expm1",
    sp.Abs: "abs",
    sp.sign: "sign",
    sp.cosh: "cosh",
    sp.sinh: "sinh",
    sp.tanh: "tanh",
    sigmoid: "sigmoid",
    softplus: "softplus",
    relu: "relu",
    step: "step",
    maximum: "max",
    minimum: "min",
}

_COMPARE = {
    "StrictGreaterThan": "gt",
    "GreaterThan": "ge",
    "StrictLessThan": "lt",
    "LessThan": "le",
    "Equality": "eq",
    "Unequality": "ne",
}

#: Longest name a description may give; longer ones fall back to a word for the
#: kind of expression (``ratio``, ``product``) and a number.
MAX_NAME = 22


def safe_identifier(text: str, fallback: str = "value") -> str:
    """*text* made a Python identifier that is no keyword, builtin-shadowing dunder,
    or private name: the characters outside ``[A-Za-z0-9_]`` become ``_``."""
    name = re.sub(r"_+", "_", re.sub(r"\W", "_", str(text), flags=re.ASCII)).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        name += "_"
    return name


class Namer:
    """Readable, unique names for intermediate values, made from what they hold."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self.names: dict[Symbol, str] = {}

    def reserve(self, name: str) -> str:
        base, k = name, 2
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        return name

    def describe(self, expr: sp.Basic, depth: int = 0) -> str | None:
        """A short name for *expr* (``one_minus_t``, ``exp_neg_abs_z``), or None."""
        if depth > 3:
            return None
        if isinstance(expr, Symbol):
            return self.names.get(expr, str(expr) if str(expr).isidentifier() else None)
        if expr.is_Integer:
            return {1: "one", 2: "two", -1: "minus_one"}.get(int(expr), None)
        if expr == S.Half:
            return "half"
        d = lambda e: self.describe(e, depth + 1)  # noqa: E731
        if isinstance(expr, sp.Mul):
            coeff, rest = expr.as_coeff_Mul()
            if coeff == -1:
                inner = d(rest)
                return f"neg_{inner}" if inner else None
            factors = [d(f) for f in sp.Mul.make_args(expr)]
            if len(factors) <= 3 and all(factors):
                return "_".join(factors)
            return None
        if isinstance(expr, sp.Add) and len(expr.args) == 2:
            a, b = expr.args
            if b.is_Number:
                a, b = b, a
            if a.is_Number:  # 1 - t, t - 1, t + 2
                if b.could_extract_minus_sign():
                    x, y = d(a), d(-b)
                    return f"{x}_minus_{y}" if x and y else None
                x, y = d(b), d(abs(a))
                word = "minus" if a.is_negative else "plus"
                return f"{x}_{word}_{y}" if x and y else None
            if a.could_extract_minus_sign() and not b.could_extract_minus_sign():
                a, b = b, a
            if b.could_extract_minus_sign():
                x, y = d(a), d(-b)
                return f"{x}_minus_{y}" if x and y else None
            x, y = d(a), d(b)
            return f"{x}_plus_{y}" if x and y else None
        if isinstance(expr, sp.core.relational.Relational):
            x, y = d(expr.lhs), d(expr.rhs)
            word = _COMPARE.get(type(expr).__name__)
            return f"{x}_{word}_{y}" if x and y and word else None
        if isinstance(expr, sp.Pow):
            base = d(expr.base)
            if base is None:
                return None
            if expr.exp == 2:
                return f"{base}_squared"
            if expr.exp == -1:
                return f"inv_{base}"
            if expr.exp == S.Half:
                return f"sqrt_{base}"
            exp = d(expr.exp)
            return f"{base}_pow_{exp}" if exp else None
        if isinstance(expr, xlogy):
            a, b = (d(x) for x in expr.args)
            return f"{a}_log_{b}" if a and b else None
        if isinstance(expr, (xdivy, quotient)):
            a, b = (d(x) for x in expr.args)
            return f"{a}_over_{b}" if a and b else None
        word = _WORDS.get(type(expr))
        if word is not None:
            inner = [d(a) for a in expr.args]
            return f"{word}_{'_'.join(inner)}" if all(inner) and len(inner) <= 2 else None
        return None

    def name(self, sym: Symbol, expr: sp.Basic, prefix: str = "") -> str:
        """Name *sym*, which holds *expr*, and remember it."""
        text = self.describe(expr)
        if text is not None:
            text = prefix + text
        if text is None or len(text) > MAX_NAME:
            text = prefix + _kind_word(expr) if prefix else _kind_word(expr)
        name = self.reserve(safe_identifier(text, "value"))
        self.names[sym] = name
        return name


def _kind_word(expr: sp.Basic) -> str:
    if isinstance(expr, sp.Add):
        return "terms"
    if isinstance(expr, sp.Mul):
        if any(f.is_Pow and f.exp.is_negative for f in sp.Mul.make_args(expr)):
            return "ratio"
        return "product"
    if isinstance(expr, sp.Pow):
        return "power"
    if isinstance(expr, sp.Piecewise):
        return "branch"
    if isinstance(expr, (xlogy, xdivy)):
        return type(expr).__name__
    if isinstance(expr, quotient):
        return "ratio"
    if isinstance(expr, (sp.core.relational.Relational, sp.And, sp.Or, sp.Not)):
        return "condition"
    word = _WORDS.get(type(expr))
    return word or "value"


# ------------------------------------------------------------------ placement
def placement(name: str, positions: Sequence[int], ndim: int) -> str:
    """The code viewing an array whose axes lie at *positions* of an *ndim*-axis
    layout: ``y``, ``y[:, None]``, ``softmax_z[:, None, :]``.  Axes before the first
    position are left to broadcasting."""
    if list(positions) != sorted(set(positions)):
        raise Unsupported(f"{name}: axes out of the layout's order {positions}")
    if not positions:
        return name
    first = positions[0]
    index = [":" if a in positions else "None" for a in range(first, ndim)]
    if all(x == ":" for x in index):
        return name
    return f"{name}[{', '.join(index)}]"


# ------------------------------------------------------------------ lowering
class Lowering:
    """Lowers kernel expressions to the statements of one function (see the module).

    Parameters
    ----------
    arrays : mapping of IndexedBase -> str
        The variable that holds each input array (``z``, ``t``, ``var``, and vector
        parameters such as ``class_weight``), and whose axes follow the input layout
        (vector parameters: the last axis).
    scalars : mapping of Symbol -> str
        The variable of each scalar parameter.
    sizes : mapping of Symbol -> (str, int | None)
        Each size symbol's variable name and the input axis it measures (None: the
        number of elements).
    pred : str
        The variable of the input the sizes are read from.
    """

    def __init__(self, arrays, scalars, sizes, pred: str, reserved: Sequence[str] = ()):
        # by the array's name: the IndexedBase objects of two losses may differ in
        # their assumptions but be the same array
        self.arrays = {str(getattr(b, "label", b)): name for b, name in arrays.items()}
        self.scalars = dict(scalars)
        self.sizes = dict(sizes)
        self.pred = pred
        self.namer = Namer(set(reserved) | set(self.arrays.values()) | set(self.scalars.values()))
        self.code: dict[Symbol, str] = {}
        self.data: set[Symbol] = set()
        self.span: dict[Symbol, frozenset] = {}
        self.statements: list[Statement] = []  # array statements, in discovery order
        self.rows: list[Statement] = []  # row sums and maxima (payload lowered, not yet CSE'd)
        self.size_statements: dict[str, Statement] = {}
        self._by_code: dict[str, Symbol] = {}
        self._memo: dict[tuple, Symbol] = {}
        self._arrays_made: dict[tuple, Statement] = {}

    # -- leaves
    def _leaf(self, code: str, span, data: bool = True) -> Symbol:
        sym = self._by_code.get(code)
        if sym is None:
            sym = sp.Dummy(safe_identifier(code.split("[")[0]))
            self._by_code[code] = sym
            self.code[sym] = code
            self.namer.names[sym] = safe_identifier(code.split("[")[0])
            self.span[sym] = frozenset(span)
            if data:
                self.data.add(sym)
        return sym

    def _array_statement(self, kind: str, array: str, name: str, **kw) -> Statement:
        key = (kind, array, tuple(sorted(kw.items())))
        found = self._arrays_made.get(key)
        if found is None:
            found = Statement(self.namer.reserve(name), kind, array=array, **kw)
            self._arrays_made[key] = found
            self.statements.append(found)
        return found

    def _size(self, size: Symbol) -> Symbol:
        if size not in self.sizes:
            raise Unsupported(f"unknown size {size}")
        var, axis = self.sizes[size]
        if var not in self.size_statements:
            st = Statement(var, "size", array=self.pred, axis=axis)
            self.size_statements[var] = st
            self.namer.taken.add(var)
        return self._leaf(var, (), data=False)

    # -- the walk
    def lower(self, expr: sp.Expr, layout: Layout) -> sp.Expr:
        """*expr* over the leaf symbols, its array pieces made statements."""
        letters = [v for v, _ in layout]
        return self._walk(expr, tuple(layout), letters)

    def _walk(self, node, layout, letters):
        if isinstance(node, Indexed):
            base = str(node.base.label)
            if base not in self.arrays:
                raise Unsupported(f"unknown array {base}")
            positions = [self._position(ix, letters, node) for ix in node.indices]
            code = placement(self.arrays[base], positions, len(letters))
            return self._leaf(code, positions)
        if isinstance(node, softmax):
            base, r, c = node.args
            name = self._array_name(base)
            st = self._array_statement("softmax", name, f"softmax_{name}")
            positions = [self._position(r, letters, node), self._position(c, letters, node)]
            return self._leaf(placement(st.name, positions, len(letters)), positions)
        if isinstance(node, logsumexp):
            base, r = node.args
            name = self._array_name(base)
            st = self._array_statement("logsumexp", name, f"logsumexp_{name}")
            at = self._position(r, letters, node)
            if at + 1 >= len(letters):
                raise Unsupported("a log-sum-exp in a layout without its row axis")
            # (n, 1): its second axis is the row's, of length 1
            return self._leaf(placement(st.name, [at, at + 1], len(letters)), [at])
        if isinstance(node, KroneckerDelta):
            a, b = node.args
            size = dict(layout).get(a)
            if size is None or dict(layout).get(b) != size:
                raise Unsupported(f"a Kronecker delta over {a}, {b} outside the layout")
            self._size(size)
            st = self._array_statement("eye", self.sizes[size][0], f"eye_{self.sizes[size][0]}")
            positions = [self._position(a, letters, node), self._position(b, letters, node)]
            return self._leaf(placement(st.name, positions, len(letters)), positions)
        if isinstance(node, (Sum, rowmax)):
            return self._reduction(node, layout, letters)
        if isinstance(node, argmax_share):
            return self._walk(_share(node), layout, letters)
        if isinstance(node, rowgap):
            raise Unsupported("rowgap is for locating kinks, not for evaluation")
        if isinstance(node, Symbol):
            if node in self.scalars:
                return self._leaf(self.scalars[node], (), data=False)
            if node in self.sizes:
                return self._size(node)
            if node in letters:
                raise Unsupported(f"the index {node} outside an element")
            raise Unsupported(f"unknown symbol {node}")
        if isinstance(node, IndexedBase):
            raise Unsupported(f"the array {node} outside an element")
        if not node.args:
            return node
        return node.func(*[self._walk(a, layout, letters) for a in node.args])

    def _array_name(self, base) -> str:
        name = self.arrays.get(str(base.label))
        if name is None:
            raise Unsupported(f"unknown array {base}")
        return name

    @staticmethod
    def _position(index, letters, node) -> int:
        try:
            return letters.index(index)
        except ValueError:
            raise Unsupported(f"{node}: index {index} is not among {letters}") from None

    def _reduction(self, node, layout, letters):
        key = (node, tuple(letters))
        if key in self._memo:
            return self._memo[key]
        (var, lo, hi), *more = node.limits
        if more:  # Sum(f, (k, ..), (l, ..)): the innermost first
            inner = node.func(node.function, *more)
            return self._walk(node.func(inner, (var, lo, hi)), layout, letters)
        if lo != 1:
            raise Unsupported(f"a reduction from {lo}, not 1")
        kind = "rowsum" if isinstance(node, Sum) else "rowmax"
        body = node.function
        if not body.has(var):
            # constant along the row: m f, or f itself for a maximum
            return self._walk(hi * body if kind == "rowsum" else body, layout, letters)
        last, last_size = layout[-1]
        if last_size == hi and (var == last or not body.has(last)):
            # along the layout's own last axis, which the body does not use: the
            # reduced axis stays, of length 1
            inner_layout, keepdims = layout, True
            body = body.xreplace({var: last})
        else:
            fresh = sp.Dummy(str(var), integer=True)
            inner_layout, keepdims = (*layout, (fresh, hi)), False
            body = body.xreplace({var: fresh})
        inner_letters = [v for v, _ in inner_layout]
        lowered = self._walk(body, inner_layout, inner_letters)
        same = (kind, lowered, keepdims)
        if same in self._memo:  # the same reduction under another index letter
            self._memo[key] = self._memo[same]
            return self._memo[same]
        sym = sp.Dummy(kind)
        span = set()
        for s in lowered.free_symbols:
            span |= self.span.get(s, frozenset())
        span.discard(len(inner_letters) - 1)
        st = Statement("", kind, expr=lowered, keepdims=keepdims, symbol=sym)
        self.rows.append(st)
        self.data.add(sym)
        self.span[sym] = frozenset(span)
        self._memo[key] = self._memo[same] = sym
        return sym

    # -- the whole function
    def function(self, exprs: Sequence[sp.Expr], layout: Layout) -> Function:
        """The statements computing every expression of *exprs* over *layout*."""
        lowered = [self.lower(e, layout) for e in exprs]
        bodies = [st.expr for st in self.rows]
        everything = [_common_factors(_expand(e)) for e in (*bodies, *lowered)]
        counter = iter(sp.numbered_symbols("cse", cls=sp.Dummy))
        replacements, reduced = sp.cse(everything, symbols=counter, order="none")
        for st, body in zip(self.rows, reduced[: len(bodies)]):
            st.expr = body
        outputs = list(reduced[len(bodies) :])

        pending: list[tuple[Symbol, Statement]] = []
        for sym, expr in replacements:
            pending.append((sym, Statement("", "expr", expr=expr, symbol=sym)))
            self.span[sym] = self._span_of(expr)
            if expr.free_symbols & self.data:
                self.data.add(sym)
        for st in self.rows:
            pending.append((st.symbol, st))
        ordered = _topological(pending, set(self.code))
        # Names, in the order a reader meets them.
        for sym, st in ordered:
            if st.kind == "expr":
                st.name = self.namer.name(sym, st.expr)
            else:
                prefix = "sum_" if st.kind == "rowsum" else "max_"
                st.name = self.namer.name(sym, st.expr, prefix=prefix)
            self.code[sym] = st.name
        statements = [*self.size_statements.values(), *self.statements] + [st for _, st in ordered]
        spans = [self._span_of(e) for e in outputs]
        return Function(
            statements,
            outputs,
            dict(self.code),
            frozenset(self.data),
            spans,
            dict(self.size_statements),
        )

    def _span_of(self, expr: sp.Basic) -> frozenset:
        span: set = set()
        for s in expr.free_symbols:
            span |= self.span.get(s, frozenset())
        return frozenset(span)


def _share(node: argmax_share) -> sp.Expr:
    """``argmax_share(R, d)`` as the tied maxima's indicator over their count, the
    form :func:`symloss.numeric.kernel._row_form` evaluates."""
    best, d = node.args
    ((var, lo, hi),) = best.limits
    hit = sp.Piecewise((S.One, sp.Eq(best.function, best, evaluate=False)), (S.Zero, True))
    at_d = sp.Piecewise(
        (S.One, sp.Eq(best.function.xreplace({var: d}), best, evaluate=False)), (S.Zero, True)
    )
    return at_d / Sum(hit, (var, lo, hi))


class _keep_sigmoid(sp.Function):
    nargs = 1


class _keep_softplus(sp.Function):
    nargs = 1


def _expand(expr: sp.Expr) -> sp.Expr:
    """The kernels' expansions (:func:`expand_kernel_functions`), except that sigmoid
    and softplus stay (each framework has a stable primitive for them), and
    ``Heaviside(x, h0)`` as a choice between 1, ``h0`` and 0."""
    expr = expr.replace(sigmoid, _keep_sigmoid).replace(softplus, _keep_softplus)
    expr = expand_kernel_functions(expr)
    expr = expr.replace(_keep_sigmoid, sigmoid).replace(_keep_softplus, softplus)
    return expr.replace(
        lambda e: isinstance(e, sp.Heaviside),
        lambda e: sp.Piecewise(
            (S.One, e.args[0] > 0),
            (e.args[1] if len(e.args) > 1 else S.Half, sp.Eq(e.args[0], 0)),
            (S.Zero, True),
        ),
    )


def _common_factors(expr: sp.Expr) -> sp.Expr:
    """*expr* with the factors common to the terms of each sum taken out
    (:func:`sympy.factor_terms`): ``2*y - 2*t`` becomes ``2*(y - t)``, which shares
    ``y - t`` with the value ``(y - t)**2`` and costs one array operation where the
    sum of products cost three.  Only whole factors move (no expansion, no common
    denominators, no signs pulled out), so no term is added that could cancel."""
    return sp.factor_terms(expr, radical=False, clear=False, fraction=False, sign=False)


def helper_expansion(function) -> sp.Expr:
    """The expansion the NumPy kernels use for *function* (sigmoid, softplus) at a
    symbol ``x``: what the generated NumPy module's helper computes."""
    x = sp.Symbol("x", real=True)
    return expand_kernel_functions(function(x)), x


def _topological(pending, defined: set) -> list:
    """*pending* ``(symbol, statement)`` pairs in an order where each statement comes
    after the symbols it uses: the given order where it allows."""
    done = set(defined)
    own = {sym for sym, _ in pending}
    out, rest = [], list(pending)
    while rest:
        for k, (sym, st) in enumerate(rest):
            needs = st.expr.free_symbols & own
            if needs <= done:
                out.append((sym, st))
                done.add(sym)
                del rest[k]
                break
        else:  # pragma: no cover - cse's output has no cycles
            raise Unsupported("a cycle among the intermediate values")
    return out


__all__ = [
    "Function",
    "Lowering",
    "Namer",
    "Statement",
    "Unsupported",
    "helper_expansion",
    "placement",
    "safe_identifier",
    "where_nonneg",
    "maximum",
    "minimum",
]
