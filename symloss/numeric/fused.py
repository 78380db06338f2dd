"""The fused kernel backend: element-wise SymPy expressions as in-place NumPy code.

``lambdify`` prints an expression as one nested NumPy call, so every operation
allocates a fresh array.  Here the same expression (after common-subexpression
elimination) is written as a sequence of ufunc calls with ``out=`` buffers taken
from a per-thread scratch pool and reused once a value is dead.  Over a block of
rows that fits in cache, a kernel then touches its inputs once and allocates
nothing after the first block.  The code is generated from the expression, never
written by hand, and ``tests/test_fused.py`` checks it against the ``lambdify``
kernel for every registered loss.

The arrays a generated function returns live in the scratch pool of the calling
thread: they must be used (copied or reduced) before the next fused call on that
thread.  :class:`symloss.numeric.kernel.Kernel` hides this behind ``Kernel.evaluate``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import numpy as np
import sympy as sp
from sympy import Add, Mul, Pow, S
from sympy.codegen.cfunctions import expm1, log1p

from symloss.numeric.ops import maximum, minimum, quotient, where_nonneg
from symloss.symbols import relu, step, xdivy, xlogy


class Unsupported(Exception):
    """The expression holds a node the generator does not know (``lambdify`` is used)."""


# SymPy function -> NumPy ufunc name (one argument, or as many as the ufunc takes).
_UFUNCS = {
    sp.exp: "exp",
    sp.log: "log",
    log1p: "log1p",
    expm1: "expm1",
    sp.Abs: "absolute",
    sp.sin: "sin",
    sp.cos: "cos",
    sp.tan: "tan",
    sp.sinh: "sinh",
    sp.cosh: "cosh",
    sp.tanh: "tanh",
    sp.atan: "arctan",
}
_COMPARE = {
    sp.StrictLessThan: "less",
    sp.LessThan: "less_equal",
    sp.StrictGreaterThan: "greater",
    sp.GreaterThan: "greater_equal",
    sp.Eq: "equal",
    sp.Ne: "not_equal",
}
_LOGIC = {sp.And: "logical_and", sp.Or: "logical_or"}


_BLEND = (
    "_np.bitwise_xor(_i({0}, {out}), _i({1}, {out}), out=_i({out})); "
    "_np.bitwise_and(_i({out}), {2}, out=_i({out})); "
    "_np.bitwise_xor(_i({out}), _i({1}, {out}), out=_i({out}))"
)


class _Emitter:
    """Turns expressions into three-address statements over temporaries."""

    def __init__(self, names: dict[sp.Basic, str], data: frozenset):
        self.names = dict(names)  # leaf symbol -> argument name
        self.leaf_names = dict(names)
        self.data = set(data)  # leaves that are arrays, and the temporaries built on them
        self.memo: dict[sp.Basic, str] = {}
        self.masks: dict[str, str] = {}  # condition -> its int64 mask
        # (target, kind, code template, operands); kind "ufunc" may write over an
        # operand that dies here, "composite" may not.
        self.statements: list[tuple[str, str, str, tuple[str, ...], str]] = []

    # -- helpers
    def _new(
        self, kind: str, template: str, operands: Sequence[str], dtype: str = "f", op=""
    ) -> str:
        target = f"T{len(self.statements)}"
        self.statements.append((target, kind, template, tuple(operands), dtype, op))
        return target

    def ufunc(self, name: str, *operands: str, dtype: str = "f") -> str:
        args = ", ".join(f"{{{i}}}" for i in range(len(operands)))
        return self._new("ufunc", f"_np.{name}({args}, out={{out}})", operands, dtype, name)

    def select(self, default: str, pairs: list[tuple[str, str]]) -> str:
        """The value of the first true condition, else *default* (as ``numpy.select``).

        Each choice is a bit-wise blend of the two bit patterns (float64 or
        float32, as the result) under a mask of all ones or all zeros:
        ``b ^ ((a ^ b) & mask)``.  It picks bits, so it is exact for every value (inf
        and NaN included), and it runs about 4x faster than ``numpy.where`` on an
        unpredictable condition (benchmarks/kernels.py).
        """
        acc = default
        for value, cond in reversed(pairs):
            mask = self.masks.get(cond)
            if mask is None:
                mask = self._new("ufunc", "_np.subtract(0, {0}, out={out})", (cond,), "i", "mask")
                self.masks[cond] = mask
            # Not "ufunc": the result must not overwrite b, which the last step reads.
            acc = self._new("composite", _BLEND, (value, acc, mask), op="blend")
        return acc

    # -- the walk
    def emit(self, node: sp.Basic) -> str:
        if node in self.names:
            return self.names[node]
        if node.is_Number or node in (S.NaN, S.Infinity, S.NegativeInfinity):
            return self.literal(node)
        if node is S.true or node is S.false:
            return repr(bool(node))
        if node.is_NumberSymbol:
            return repr(float(node))
        hit = self.memo.get(node)
        if hit is None:
            hit = self.memo[node] = self._emit(node)
        return hit

    @staticmethod
    def literal(node: sp.Basic) -> str:
        try:
            value = float(node)
        except TypeError:  # zoo, I: no float64 value
            raise Unsupported(f"no float64 value for {node}") from None
        if value != value:
            return "_np.nan"
        if value in (float("inf"), float("-inf")):
            return "_np.inf" if value > 0 else "(-_np.inf)"
        return repr(value)

    def _emit(self, node: sp.Basic) -> str:
        if isinstance(node, Add):
            return self._add(node)
        if isinstance(node, Mul):
            return self._mul(node)
        if isinstance(node, Pow):
            return self._pow(node)
        func = type(node)
        if func in _UFUNCS:
            return self.ufunc(_UFUNCS[func], *[self.emit(a) for a in node.args])
        if func in _COMPARE:
            return self.ufunc(_COMPARE[func], *[self.emit(a) for a in node.args], dtype="?")
        if func in _LOGIC:
            acc = self.emit(node.args[0])
            for a in node.args[1:]:
                acc = self.ufunc(_LOGIC[func], acc, self.emit(a), dtype="?")
            return acc
        if func is sp.Not:
            return self.ufunc("logical_not", self.emit(node.args[0]), dtype="?")
        if func is sp.sign:
            # numpy.sign takes a branchy loop when it writes over its input (3.9 ns per
            # element on random signs against 0.47): never in place.
            return self._new(
                "composite", "_np.sign({0}, out={out})", (self.emit(node.args[0]),), op="sign"
            )
        if func is sp.Heaviside and len(node.args) == 2:
            # numpy.heaviside branches per element (4.9 ns); this is about 1.5 ns.
            x, h0 = (self.emit(a) for a in node.args)
            at = self.ufunc("equal", x, "0.0", dtype="?")
            nan = self.ufunc("not_equal", x, x, dtype="?")  # heaviside(NaN) = NaN
            return self.select(self.ufunc("greater", x, "0.0"), [(x, nan), (h0, at)])
        if func is relu:
            return self.ufunc("maximum", self.emit(node.args[0]), "0.0")
        if func is step:  # relu'(0) = 0, as autograd
            return self.ufunc("greater", self.emit(node.args[0]), "0.0")
        if func is xlogy or func is xdivy:
            x, y = (self.emit(a) for a in node.args)
            op = "_np.log({1}, out={out}); _np.multiply({0}, {out}, out={out})"
            if func is xdivy:
                op = "_np.divide({0}, {1}, out={out})"
            zero = self.ufunc("equal", x, "0.0", dtype="?")
            core = self._new("composite", op, (x, y), op=func.__name__)
            return self.select(core, [("0.0", zero)])
        if func is sp.Piecewise:
            pairs = [(self.emit(e), c) for e, c in node.args]
            pairs = [(e, self.emit(c)) for e, c in pairs]
            if pairs[-1][1] == "True":
                return self.select(pairs[-1][0], pairs[:-1])
            return self.select("_np.nan", pairs)
        # The kernel-only functions of symloss.numeric.ops, matched by identity (a
        # user's function that happens to be called "maximum" is not numpy.maximum).
        if func is maximum or func is minimum:
            return self.ufunc(func.__name__, *[self.emit(a) for a in node.args])
        if func is quotient:
            return self.ufunc("divide", *[self.emit(a) for a in node.args])
        if func is where_nonneg:
            x, a, b = (self.emit(v) for v in node.args)
            return self.select(b, [(a, self.ufunc("greater_equal", x, "0.0", dtype="?"))])
        raise Unsupported(f"no fused form for {func.__name__}")

    def _add(self, node: Add) -> str:
        acc = None
        for term in self._order(node):
            minus = term.could_extract_minus_sign()
            value = self.emit(-term if minus else term)
            if acc is None:
                acc = self.ufunc("negative", value) if minus else value
            else:
                acc = self.ufunc("subtract" if minus else "add", acc, value)
        return acc

    def _order(self, node: Add) -> list[sp.Expr]:
        """The order a sum is added in: a deterministic one, that adds the terms
        holding data before the constants (numbers, parameters).

        Rounding depends on it: ``margin + y_ij - S_i`` (a multi-class margin, with
        ``S_i = y_i,label``) keeps a margin of 1e-6 to 1e-12 relative as
        ``(y_ij - S_i) + margin``, and to 1e-2 at ``|y| = 1e8`` the other way.
        SymPy's own order is by the names of the leaves, which are dummies.
        """
        stable = {leaf: sp.Symbol(name) for leaf, name in self.leaf_names.items()}
        back = {v: k for k, v in stable.items()}
        terms = [t.xreplace(back) for t in node.xreplace(stable).as_ordered_terms()]
        data = [t for t in terms if t.free_symbols & self.data]
        return data + [t for t in terms if not t.free_symbols & self.data]

    def _mul(self, node: Mul) -> str:
        coeff, factors = node.as_coeff_mul()
        num, den = [], []
        for f in factors:
            b, e = f.as_base_exp()
            if e.is_number and e.is_negative:
                den.append(b if e == -1 else Pow(b, -e))
            else:
                num.append(f)
        if coeff == -1:
            inner = self.emit(Mul(*num, *[1 / d for d in den]) if den else Mul(*num))
            return self.ufunc("negative", inner)
        acc = self.literal(coeff) if coeff != 1 else None
        for f in num:
            value = self.emit(f)
            acc = value if acc is None else self.ufunc("multiply", acc, value)
        for d in den:
            acc = self.ufunc("divide", "1.0" if acc is None else acc, self.emit(d))
        return acc

    def _pow(self, node: Pow) -> str:
        b, e = node.args
        if e.is_number and e.is_negative:
            return self.ufunc("divide", "1.0", self.emit(Pow(b, -e) if e != -1 else b))
        base = self.emit(b)
        if e == 2:
            return self.ufunc("multiply", base, base)
        if e == 3:
            return self.ufunc("multiply", self.ufunc("multiply", base, base), base)
        if e == S.Half:
            return self.ufunc("sqrt", base)
        return self.ufunc("power", base, self.emit(e))


def generate(replacements, reduced, leaves: Sequence[sp.Symbol], data=()) -> str:
    """Python source of ``fused(L0, L1, ..., _s, _b, _m)`` computing every expression in
    *reduced* after the common subexpressions *replacements* (``sympy.cse``'s output).
    *data* are the leaves that hold arrays (the others are numbers and parameters).

    ``_s``, ``_b`` and ``_m`` (``(slot, *operands)``) return float64, boolean and
    int64 scratch arrays of the operands' broadcast shape.  Raises :class:`Unsupported`.
    """
    return _assemble(*statements(replacements, reduced, leaves, data), len(leaves))


def statements(replacements, reduced, leaves: Sequence[sp.Symbol], data=()):
    """The three-address statements ``(target, kind, numpy_template, operands, dtype,
    op)`` and the output names, which both this module and :mod:`symloss.numeric.compiled`
    render.  Leaves are named ``L0, L1, ...``, temporaries ``T0, T1, ...``."""
    names = {leaf: f"L{k}" for k, leaf in enumerate(leaves)}
    em = _Emitter(names, frozenset(data))
    for sym, expr in replacements:
        em.names[sym] = em.emit(expr)
        if expr.free_symbols & em.data:
            em.data.add(sym)
    outputs = [em.emit(e) for e in reduced]
    return em.statements, outputs


def _assemble(statements, outputs: list[str], nleaves: int) -> str:
    last_use: dict[str, int] = {}
    for k, (_, _, _, operands, _, _) in enumerate(statements):
        for o in operands:
            last_use[o] = k
    for o in outputs:
        last_use[o] = len(statements)  # outputs live to the end
    free: dict[str, list[int]] = {"f": [], "?": [], "i": []}
    slot_of: dict[str, int] = {}
    count = {"f": 0, "?": 0, "i": 0}
    lines: list[str] = []
    fresh: list[str] = []  # the same statements for small inputs (see below)
    kind_of: dict[str, str] = {}  # temporary -> its dtype
    condition: dict[str, str] = {}  # mask -> the condition it was made of
    for k, (target, kind, template, operands, dtype, op) in enumerate(statements):
        dying = [o for o in dict.fromkeys(operands) if o in slot_of and last_use.get(o) == k]
        if kind == "ufunc":  # a ufunc may write over an operand of the same shape
            for o in dying:
                free[statements[int(o[1:])][4]].append(slot_of[o])
        if free[dtype]:
            slot = free[dtype].pop()
        else:
            slot, count[dtype] = count[dtype], count[dtype] + 1
        slot_of[target] = slot
        if kind != "ufunc":
            for o in dying:
                free[statements[int(o[1:])][4]].append(slot_of[o])
        alloc = {"f": "_s", "?": "_b", "i": "_m"}[dtype]
        arrays = "".join(f", {o}" for o in operands if not _is_literal(o))
        allocation = f"    {target} = {alloc}({slot}{arrays})"
        lines.append(allocation)
        lines.append("    " + template.format(*operands, out=target))
        # The small-input form: a ufunc allocates its result itself (no pool lookup),
        # unless its result's dtype would differ from the statement's (a float made
        # of booleans only, say), when it is given a fresh array of the right dtype.
        kinds = {kind_of.get(o, "f") for o in operands if not _is_literal(o)}
        if kind == "ufunc" and template.endswith(", out={out})") and (dtype != "f" or "f" in kinds):
            call = template[: -len(", out={out})")] + ")"  # NumPy allocates the result
            fresh.append(f"    {target} = " + call.format(*operands))
            if op == "mask":
                condition[target] = operands[0]
        elif op == "blend" and operands[2] in condition:
            # numpy.where picks values as exactly as the blend of bits, in one call.
            value, other, mask = operands
            fresh.append(f"    {target} = _np.where({condition[mask]}, {value}, {other})")
        else:
            fresh.append(allocation)
            fresh.append("    " + template.format(*operands, out=target))
        kind_of[target] = dtype
    args = ", ".join([f"L{k}" for k in range(nleaves)] + ["_s", "_b", "_m"])
    body = "\n".join(lines) if lines else "    pass"
    # Masks only blends used are not needed by numpy.where.
    used = {w for line in fresh for w in re.findall(r"\bT\d+\b", line.partition("=")[2])}
    used |= set(outputs)
    fresh = [ln for ln in fresh if ln.split()[0] not in condition or ln.split()[0] in used]
    small = "\n".join(fresh) if fresh else "    pass"
    result = f"    return [{', '.join(outputs)}]\n"
    return f"def fused({args}):\n{body}\n{result}\ndef fresh({args}):\n{small}\n{result}"


def _is_literal(operand: str) -> bool:
    return (
        operand in ("True", "False")
        or operand.startswith(("_np.", "(-_np."))
        or (operand[0].isdigit() or operand[0] == "-")
    )


class Scratch:
    """Per-thread pools of scratch arrays, by (slot, shape, dtype)."""

    #: More shapes than this in one thread's pool clears it (inputs of changing size).
    LIMIT = 64

    def __init__(self):
        self._local = threading.local()

    def release(self) -> None:
        """Drop the calling thread's arrays (after a kernel ran over a whole input)."""
        self._local.pool = {}

    def _pool(self) -> dict:
        pool = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def get(self, dtype, slot: int, operands) -> np.ndarray:
        shapes = {np.shape(o) for o in operands}
        shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)
        return self.array(dtype, slot, shape)

    def array(self, dtype, slot: int, shape: tuple) -> np.ndarray:
        pool = self._pool()
        key = (slot, shape, dtype)
        arr = pool.get(key)
        if arr is None:
            if len(pool) >= self.LIMIT:
                pool.clear()
            arr = pool[key] = np.empty(shape, dtype=dtype)
        return arr


#: One pool for all fused kernels: a thread runs one kernel at a time, and the
#: arrays a kernel returns are consumed before that thread's next call.
SCRATCH = Scratch()


def _float(slot, *operands):
    return SCRATCH.get(np.float64, slot, operands)


def _float32(slot, *operands):
    return SCRATCH.get(np.float32, slot, operands)


def _mask32(slot, *operands):
    return SCRATCH.get(np.int32, slot, operands)


def _bool(slot, *operands):
    return SCRATCH.get(np.bool_, slot, operands)


def _mask(slot, *operands):
    return SCRATCH.get(np.int64, slot, operands)


def _new(dtype, operands) -> np.ndarray:
    shapes = [np.shape(o) for o in operands]
    shape = shapes[0] if len(shapes) == 1 else np.broadcast_shapes(*shapes)
    return np.empty(shape, dtype=dtype)


def _new_float(slot, *operands):
    return _new(np.float64, operands)


def _new_bool(slot, *operands):
    return _new(np.bool_, operands)


def _new_mask(slot, *operands):
    return _new(np.int64, operands)


def _new_float32(slot, *operands):
    return _new(np.float32, operands)


def _new_mask32(slot, *operands):
    return _new(np.int32, operands)


def _bits(x, like=None) -> np.ndarray:
    """The integer bit patterns of *x* taken as *like*'s float type (float64 or
    float32; *x*'s own when *like* is None): a view, not a copy, for arrays of that
    type."""
    dtype = (x if like is None else like).dtype
    return np.asarray(x, dtype=dtype).view(np.int32 if dtype == np.float32 else np.int64)


def single(values) -> bool:
    """Whether a kernel computes in float32 on these leaf values: some array leaf is
    float32 and none is float64 (numbers are Python floats, which NumPy fits to the
    arrays)."""
    found = False
    for v in values:  # a loop: this runs on every call
        if isinstance(v, np.ndarray):
            if v.dtype == np.float64:
                return False
            found = found or v.dtype == np.float32
    return found


def compile_fused(replacements, reduced, leaves: Sequence[sp.Symbol], data=()):
    """A function of the leaves' values returning the list of *reduced*'s values."""
    steps, outputs = statements(replacements, reduced, leaves, data)
    source = _assemble(steps, outputs, len(leaves))
    namespace = {"_np": np, "_i": _bits}
    # The source holds only names this module made (L0, T3, _np.exp) and float
    # literals: no user text reaches it, as with lambdify's own exec.
    exec(compile(source, "<symloss fused kernel>", "exec"), namespace)
    fn, small = namespace["fused"], namespace["fresh"]

    def run(*values):
        if single(values):
            return fn(*values, _float32, _bool, _mask32)
        return fn(*values, _float, _bool, _mask)

    def fresh(*values):
        """As *run*, with new arrays (no scratch pool): cheaper on small inputs."""
        if single(values):
            return small(*values, _new_float32, _new_bool, _new_mask32)
        return small(*values, _new_float, _new_bool, _new_mask)

    run.fresh = fresh
    run.source = source
    run.statements = steps, outputs  # for symloss.numeric.compiled
    return run
