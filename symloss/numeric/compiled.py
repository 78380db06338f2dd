"""The compiled kernel backend: a kernel's fused statements as one vectorised C loop.

:mod:`symloss.numeric.fused` runs a kernel as one NumPy call per operation, so each
operation reads and writes the whole block once.  Here the same three-address
statements (:func:`symloss.numeric.fused.statements`) become the body of a single C loop,
compiled with the system's C compiler (``$CC``, else ``cc``) at first use.  The
loop is vectorised (``#pragma omp simd``) and calls glibc's vector math library,
libmvec, for exp, log, log1p, pow and friends (4 or 8 lanes per call, at most 4
ulp from the correctly rounded result, special values as C99's Annex F).

The generated source holds only names made here, C operators and ``repr(float)``
literals: no user text reaches the compiler.  Shared objects are cached by the
hash of their source, the flags, the C library and the CPU
(``$SYMLOSS_CACHE_DIR``, else ``$XDG_CACHE_HOME/symloss`` or ``~/.cache/symloss``).
Their files are run as code, so the cache is trusted only as docs/cache-trust.md
says: every directory from ``/`` down to ``kernels`` is checked on its open
descriptor (a parent: owned by this user or root, writable by no one else unless
sticky, or ``SYMLOSS_TRUST_CACHE_PARENTS=1``; ``kernels``: this user's and writable
by no one else), and each object is checked to be this user's, writable by no one
else, and sealed with its cache key, length and SHA-256 before exactly the bytes
checked are loaded, from a private copy.  An object that fails is compiled again
into place; a directory that fails is refused (:class:`UntrustedCache`).

Selects, ``maximum``/``minimum`` and ``sign`` follow NumPy's results bit for bit,
NaN and signed zeros included (tests/test_compiled.py checks every catalog kernel
and the special values against the NumPy backend).  Reductions over a row add and
compare in another order than NumPy's: sums may differ in the last bit, and the
maximum of a row holding both +0.0 and -0.0 may have the other sign.

This module is long because it is one trust boundary: the C source it generates, the
objects it builds, the cache it keeps and the loader that runs them share the cache
key, the seal and the lock that make loading safe, and splitting them would spread
that invariant over several modules.  Its sections, in order: C source, building,
cached objects, running, row reductions.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import math
import os
import platform
import secrets
import shlex
import shutil
import stat
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from symloss.errors import CompilerUnavailable as Unavailable
from symloss.errors import UntrustedCache
from symloss.numeric import fused

#: NumPy ufunc name -> the C function of the same value (libmvec has vector forms).
_MATH = {
    "exp": "exp",
    "log": "log",
    "log1p": "log1p",
    "expm1": "expm1",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "sinh": "sinh",
    "cosh": "cosh",
    "tanh": "tanh",
    "arctan": "atan",
    "power": "pow",
}
_INFIX = {
    "add": "+",
    "subtract": "-",
    "multiply": "*",
    "divide": "/",
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
    "equal": "==",
    "not_equal": "!=",
    "logical_and": "&",
    "logical_or": "|",
}
_UNARY = {
    "negative": "(-({0}))",
    "absolute": "__builtin_fabs({0})",
    "sqrt": "__builtin_sqrt({0})",
    "logical_not": "(!{0})",
    "mask": "{0}",
    "sign": "sl_sign({0})",
    "maximum": "sl_max({0}, {1})",
    "minimum": "sl_min({0}, {1})",
    "blend": "({2} ? {0} : {1})",
    "xlogy": "({0} * log({1}))",
    "xdivy": "({0} / {1})",
}
_LITERALS = {
    "_np.nan": '__builtin_nan("")',
    "_np.inf": "__builtin_inf()",
    "(-_np.inf)": "(-__builtin_inf())",
    "True": "1",
    "False": "0",
}
#: The float32 loop's forms (source(real="float")) where they differ from the above.
_UNARY_FLOAT = {
    "absolute": "__builtin_fabsf({0})",
    "sqrt": "__builtin_sqrtf({0})",
    "sign": "sl_signf({0})",
    "maximum": "sl_maxf({0}, {1})",
    "minimum": "sl_minf({0}, {1})",
    "xlogy": "({0} * logf({1}))",
}
_LITERALS_FLOAT = {
    **_LITERALS,
    "_np.nan": '__builtin_nanf("")',
    "_np.inf": "__builtin_inff()",
    "(-_np.inf)": "(-__builtin_inff())",
}
#: Rows longer than this are summed in chunks of this many elements, and the chunks'
#: sums pairwise (sl_push).  One row of 10^7 positive values summed left to right (the
#: row helper) was off by up to 670 eps times the sum, lane by lane (the loop) by 56;
#: chunked, as NumPy's pairwise sum, by about 1 (cce_logits on it: 8.7e-12 relative
#: error, 1.3e-15 with NumPy's code).  Shorter rows (every row of the benchmarks) run
#: the one loop they always ran.
CHUNK = 1024
# numpy.maximum(a, b) is b on ties (0.0 and -0.0), and NaN if either is; numpy.sign
# keeps NaN and gives +0.0 for both zeros.  Written without && or ||, which would
# be branches that stop the loop from being vectorised.
_PRELUDE = (
    f"#define SL_CHUNK {CHUNK}\n"
    + """\
static inline double sl_max(double a, double b) { double r = a > b ? a : b; return a != a ? a : r; }
static inline double sl_min(double a, double b) { double r = a < b ? a : b; return a != a ? a : r; }
static inline double sl_rsqrt(double x) {  /* pow(x, -0.5): +inf at -0, +0 at -inf */
    double r = 1.0 / (__builtin_sqrt(x) + 0.0); return x == -__builtin_inf() ? 0.0 : r;
}
static inline double sl_sign(double x) {
    double r = x > 0.0 ? 1.0 : 0.0; r = x < 0.0 ? -1.0 : r; return x != x ? x : r;
}
/* A row longer than SL_CHUNK is summed chunk by chunk, and the chunks' sums pairwise:
   sl_push adds equal-sized partial sums as a binary counter carries. */
typedef struct { double level[64]; long n; } sl_pairs;
static inline void sl_push(sl_pairs *p, double x) {
    long k = 0;
    for (long n = p->n; n & 1; n >>= 1) x = p->level[k++] + x;
    p->level[k] = x;
    p->n++;
}
static inline double sl_total(const sl_pairs *p) {  /* -0.0 + x is x, for x = -0.0 too */
    double s = -0.0;
    for (int k = 63; k >= 0; k--) s = (p->n >> k) & 1 ? s + p->level[k] : s;
    return s;
}
"""
)

# The same helpers in float, for the float32 loop only (the double loop's source, and
# so its cache key, stays as it was).
_PRELUDE_FLOAT = """\
static inline float sl_maxf(float a, float b) { float r = a > b ? a : b; return a != a ? a : r; }
static inline float sl_minf(float a, float b) { float r = a < b ? a : b; return a != a ? a : r; }
static inline float sl_rsqrtf(float x) {
    float r = 1.0f / (__builtin_sqrtf(x) + 0.0f); return x == -__builtin_inff() ? 0.0f : r;
}
static inline float sl_signf(float x) {
    float r = x > 0.0f ? 1.0f : 0.0f; r = x < 0.0f ? -1.0f : r; return x != x ? x : r;
}"""

CC = os.environ.get("CC", "cc")
FLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp-simd",  # honour "#pragma omp simd" (and declare simd) without OpenMP
    "-fno-math-errno",  # exp and log set no errno: they may be vectorised
    "-fno-trapping-math",  # no FP exceptions are observed: comparisons may be blended
    "-ffp-contract=off",  # a*b + c is two roundings, as NumPy computes it
    "-fPIC",
    "-shared",
    "-Wl,-z,defs",  # a symbol missing from libmvec fails here, not when loading
)
LIBS = ("-lmvec", "-lm")


def source(
    statements,
    outputs: list[str],
    kinds: str,
    constants=None,
    modes=None,
    stats=(),
    width=None,
    real: str = "double",
    bounds=(),
    finite=(),
) -> str:
    """C source of ``void symloss_kernel(long rows, long m, const double **in, double **out)``.

    ``kinds[k]`` says what ``in[k]`` (leaf ``Lk``) points at: ``"s"`` one number,
    ``"r"`` one number per row (a row statistic), ``"f"`` ``rows * m`` contiguous
    values.  Statements that read no ``"f"`` value run once per row, the others in
    the inner, vectorised loop over the row's ``m`` elements.  ``modes[j]`` says what
    ``out[j]`` receives: ``"p"`` (the default) one value per row or per element, as
    the output varies (:func:`levels`); ``"s"`` the sum of each row's values (a value
    constant along the row counts ``m`` times); ``"d"`` every element's value divided
    by a number, the next of ``in[len(kinds)]``, ``in[len(kinds) + 1]``, ...  Raises
    :class:`symloss.numeric.fused.Unsupported` for an operation with no C form.

    *stats* are row statistics computed inside the loop, row by row: the k-th,
    ``(name, op)``, is the sum (``op == "sum"``) or the maximum (``"max"``) of the
    values of statement *name* over the row, and is leaf ``L{len(kinds) + k}`` of
    the statements after it (so statistics may nest: a sum of a function of a row
    maximum).  Each runs as its own loop over the row, while the row is in the L1
    cache, before the loop that writes the outputs.

    *width*, if given, is the row length ``m`` compiled in (short rows: the loops over
    a row are then unrolled; the multi-class margin's loop over rows of 10 took 20%
    less time).

    *constants* maps scalar leaves to values compiled in (exponents: see
    :func:`exponent_leaves`).  Powers whose exponent is then a known integer from 0
    to 8, -1 or ±1/2 become products, a reciprocal or a square root, within an ulp
    per operation of ``numpy.power`` and with its special values (NumPy itself takes
    ``sqrt`` for 1/2: -0 at -0, NaN at -inf): ``pow`` is the slowest call here.

    *real* ``"float"`` gives the float32 loop: the arrays ``in`` and ``out`` point
    at (but the numbers, the divisors and the ``"s"`` outputs, which stay double)
    hold floats, every statement computes in float with libm's and libmvec's float
    functions (``expf``), and the row sums and statistics accumulate in double.

    *bounds* are leaves of kind ``"f"`` whose smallest and largest values the loop
    finds as it reads them (an input's domain check, without a pass of its own):
    ``out[len(outputs) + e]`` receives two doubles, the minimum and maximum of leaf
    ``bounds[e]`` over every row, both NaN if it holds a NaN or an infinity (as
    ``symloss_min_max``).  The leaves of *bounds* also in *finite* are only checked to
    be finite (a domain that is the whole real line), by one shared probe: they
    receive ``(-DBL_MAX, DBL_MAX)``, a range holding every finite value, or NaN for
    both when one of them holds a NaN or an infinity.
    """
    single = real == "float"
    # A row of 8 to 32 floats, its length compiled in: 8 lanes, or a row of 10 would run
    # entirely in the scalar remainder of AVX-512's 16 (and call expf one at a time).
    simd = "#pragma omp simd" + (" simdlen(8)" if single and width else "")
    dtypes = {target: dtype for target, _, _, _, dtype, _ in statements}
    level = levels(statements, outputs, kinds)
    known = _fold(statements, constants or {})
    used = sorted({_MATH[op] for *_, op in statements if op in _MATH})
    if any(op == "xlogy" for *_, op in statements) and "log" not in used:
        used.append("log")
    # Declared, not #included: math.h declares the vector forms under -ffast-math only.
    vector = _vector_math(True) if single else _vector_math()
    suffix = "f" if single else ""
    head = [
        ("#pragma omp declare simd notinbranch\n" if f in vector else "")
        + f"{real} {f}{suffix}({f'{real}, {real}' if f == 'pow' else real});"
        for f in used
    ]
    if single:
        head.insert(0, _PRELUDE_FLOAT)
    # The loop (0: before the first statistic, k: after the k-th) a name is known from.
    stage = {f"L{len(kinds) + k}": k + 1 for k in range(len(stats))}
    operands_of, line_of = {}, {}
    for k, kind in enumerate(kinds):
        if kind != "s" and f"L{k}" not in known:
            line_of[f"L{k}"] = f"const {real} L{k} = P{k}[{'r' if kind == 'r' else 'i'}];"
    for target, _, _, operands, _, op in statements:
        stage[target] = max((stage.get(o, 0) for o in operands), default=0)
        operands_of[target] = operands
        # (float32: int masks, of the floats' width, vectorise alongside them)
        mask = "int" if single else "long"
        line_of[target] = f"const {real if dtypes[target] == 'f' else mask} {target} = "
        line_of[target] += f"{_c_expression(op, operands, known, target, single)};"
    setup = []
    for k, kind in enumerate(kinds):
        if f"L{k}" in known:
            setup.append(f"    const {real} L{k} = {_c_float(known[f'L{k}'], single)};")
        elif kind == "s":
            setup.append(
                f"    const {real} L{k} = ({real})in[{k}][0];"
                if single
                else f"    const double L{k} = in[{k}][0];"
            )
        else:
            pointer = f"(const float *)in[{k}]" if single else f"in[{k}]"
            setup.append(f"    const {real} *restrict P{k} = {pointer};")

    def needed(names) -> set:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(operands_of.get(name, ()))
        return seen

    everything = needed([*outputs, *(name for name, _ in stats)])
    order = [f"L{k}" for k in range(len(kinds))] + [t for t, *_ in statements]

    def lines(names, full: bool, at=None) -> list[str]:
        """The loads and statements among *names*, per element or per row (of one stage)."""
        return [
            line_of[t]
            for t in order
            if t in names
            and t in line_of
            and (level.get(t) == "f") == full
            and (at is None or stage.get(t, 0) == at)
        ]

    outer = lines(everything, False, 0)
    first: dict[tuple, int] = {}  # equal statistics (the same summand) are computed once
    for k, (name, op) in enumerate(stats):
        value, acc = _LITERALS.get(name, name), f"S{k}"
        if (name, op) in first:
            outer.append(f"const double {acc} = S{first[name, op]};")
        elif level.get(name) != "f":  # constant along the row
            outer.append(f"const double {acc} = {'(double)M * ' if op == 'sum' else ''}{value};")
        else:
            start = "-0.0" if op == "sum" else "-__builtin_inf()"
            step = f"{acc} += {value};" if op == "sum" else f"{acc} = sl_max({acc}, {value});"
            outer += [
                f"double {acc} = {start};",
                *_row_loop(
                    [*lines(needed([name]), True), step],
                    f"{simd} reduction({'sl_add' if op == 'sum' else 'sl_mx'}:{acc})",
                    [acc] if op == "sum" else [],  # a maximum is exact in any order
                ),
            ]
        first.setdefault((name, op), k)
        # + 0.0: a maximum of zero is +0.0, whatever order the lanes met +0 and -0 in
        # (as symloss.numeric.kernel's row maxima).
        stat = f"{acc}{' + 0.0' if op == 'max' else ''}"
        outer.append(
            f"const {real} L{len(kinds) + k} = ({real})({stat});"
            if single
            else f"const double L{len(kinds) + k} = {stat};"
        )
        outer += lines(everything, False, k + 1)
    checked = [f"L{k}" for k in bounds]
    inner = lines(needed([*outputs, *checked]), True)
    after, sums = [], []
    divisors = len(kinds)
    for j, (o, mode) in enumerate(zip(outputs, modes or "p" * len(outputs))):
        if single and mode != "s":  # (a row's sum is double)
            setup.append(f"    float *restrict O{j} = (float *)out[{j}];")
        else:
            setup.append(f"    double *restrict O{j} = out[{j}];")
        value, full = _literal(o, single), level.get(o) == "f"
        if mode == "d":  # the gradient's 1/n, as NumPy's divide would (not times 1/n)
            setup.append(
                f"    const {real} D{j} = ({real})in[{divisors}][0];"
                if single
                else f"    const double D{j} = in[{divisors}][0];"
            )
            inner.append(f"O{j}[i] = {value} / D{j};")
            divisors += 1
        elif mode == "p":
            (inner if full else after).append(f"O{j}[{'i' if full else 'r'}] = {value};")
        elif full:  # the row's sum, accumulated in the vectorised loop
            outer.append(f"double A{j} = -0.0;")  # -0.0 + x is x, for x = -0.0 too
            inner.append(f"A{j} += {value};")
            after.append(f"O{j}[r] = A{j};")
            sums.append(f"A{j}")
        else:  # constant along the row: m times itself
            after.append(f"O{j}[r] = (double)M * {value};")
    # OpenMP's + starts each lane at +0.0, which turns a row of -0.0 into +0.0 (adding
    # from the first element gives -0.0 there): this reduction starts them at -0.0.
    pragma = f"{simd} reduction(sl_add:{', '.join(sums)})" if sums else simd
    # The checked leaves' extremes, over all rows; a probe (a sum of x * 0) turns NaN
    # at a NaN or an infinity.  In the loop's own type: float lanes stay 8 or 16 wide.
    zero = "0.0f" if single else "0.0"
    tail = []
    if finite:
        setup.append(f"    {real} Fp = {zero};")
        pragma += " reduction(+:Fp)"
    for e, (k, leaf) in enumerate(zip(bounds, checked)):
        j = len(outputs) + e
        if k in finite:
            inner.append(f"Fp += {leaf} * {zero};")
            tail += [
                f"    out[{j}][0] = Fp == {zero} ? -__DBL_MAX__ : (double)Fp;",
                f"    out[{j}][1] = Fp == {zero} ? __DBL_MAX__ : (double)Fp;",
            ]
            continue
        low, high, probe = f"B{e}lo", f"B{e}hi", f"B{e}p"
        setup.append(
            f"    {real} {low} = __builtin_inf(), {high} = -__builtin_inf(), {probe} = {zero};"
        )
        inner += [
            f"{low} = {leaf} < {low} ? {leaf} : {low};",
            f"{high} = {leaf} > {high} ? {leaf} : {high};",
            f"{probe} += {leaf} * {zero};",
        ]
        pragma += f" reduction(min:{low}) reduction(max:{high}) reduction(+:{probe})"
        tail += [
            f"    out[{j}][0] = {probe} == {zero} ? (double){low} : (double){probe};",
            f"    out[{j}][1] = {probe} == {zero} ? (double){high} : (double){probe};",
        ]
    if sums or any(op == "sum" for _, op in stats):
        head.append(
            "#pragma omp declare reduction(sl_add : double : omp_out += omp_in)"
            " initializer(omp_priv = -0.0)"
        )
    if any(op == "max" for _, op in stats):
        head.append(
            "#pragma omp declare reduction(sl_mx : double : omp_out = sl_max(omp_out, omp_in))"
            " initializer(omp_priv = -__builtin_inf())"
        )
    return "\n".join(
        [
            _PRELUDE,
            *head,
            "void symloss_kernel(long rows, long m, const double *const *in, double *const *out)",
            "{",
            *setup,
            f"    const long M = {width or 'm'};",
            "    for (long r = 0; r < rows; r++) {",
            *[f"        {line}" for line in outer],
            *[f"        {line}" for line in _row_loop(inner, pragma, sums)],
            *[f"        {line}" for line in after],
            "    }",
            *tail,
            "}",
            "",
        ]
    )


def _row_loop(body: list[str], pragma: str, sums: list[str]) -> list[str]:
    """C lines running *body* for each element ``i`` of row ``r``, under *pragma*.

    The accumulators *sums* (declared before, as -0.0) are, on a row longer than
    :data:`CHUNK`, summed chunk by chunk and the chunks' sums added pairwise; the
    loop over a shorter row is the same single loop as without sums.
    """

    def loop(start: str, stop: str) -> list[str]:
        head = f"for (long i = {start}; i < {stop}; i++) {{"
        return [pragma, head, *[f"    {line}" for line in body], "}"]

    whole = loop("r * M", "(r + 1) * M")
    if not sums:
        return whole
    chunked = [
        *[f"sl_pairs Q{a}; Q{a}.n = 0;" for a in sums],
        "for (long c0 = r * M; c0 < (r + 1) * M; c0 += SL_CHUNK) {",
        "    const long c1 = c0 + SL_CHUNK < (r + 1) * M ? c0 + SL_CHUNK : (r + 1) * M;",
        *[f"    {a} = -0.0;" for a in sums],
        *[f"    {line}" for line in loop("c0", "c1")],
        *[f"    sl_push(&Q{a}, {a});" for a in sums],
        "}",
        *[f"{a} = sl_total(&Q{a});" for a in sums],
    ]
    return [
        "if (M <= SL_CHUNK) {",
        *[f"    {line}" for line in whole],
        "} else {",
        *[f"    {line}" for line in chunked],
        "}",
    ]


def _c_expression(op: str, operands, known: dict, target: str, single: bool = False) -> str:
    """The C expression of one statement (see :func:`source`; *single*: in float)."""
    args = [_literal(o, single) for o in operands]
    e = known.get(operands[1]) if op == "power" else None
    if target in known:
        return _c_float(known[target], single)
    f = "f" if single else ""
    if e is not None and (e in (-1, 0.5, -0.5) or (e.is_integer() and 0 <= e <= 8)):
        return (
            {
                -1: f"(1.0{f} / {args[0]})",
                0.5: f"__builtin_sqrt{f}({args[0]})",  # numpy.power(x, 0.5) is sqrt(x)
                -0.5: f"sl_rsqrt{f}({args[0]})",
            }.get(e)
            or " * ".join([args[0]] * int(e))
            or f"1.0{f}"
        )
    if op in _MATH:
        return f"{_MATH[op]}{f}({', '.join(args)})"
    if op in _INFIX and len(args) == 2:
        return f"({args[0]} {_INFIX[op]} {args[1]})"
    if op in _UNARY:
        return ((_UNARY_FLOAT.get(op) if single else None) or _UNARY[op]).format(*args)
    raise fused.Unsupported(f"no C form for {op or 'a composite statement'}")


def _literal(operand: str, single: bool) -> str:
    """*operand* in C: a name as it is, a number as a double or (*single*) a float."""
    if not single:
        return _LITERALS.get(operand, operand)
    if operand in _LITERALS_FLOAT:
        return _LITERALS_FLOAT[operand]
    number = _number(operand)
    return operand if number is None else _c_float(number, True)


_FOLD = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
    "negative": np.negative,
}


def _fold(statements, constants: dict[int, float]) -> dict[str, float]:
    """The names whose values the *constants* (leaf index -> value) fix: the leaves,
    and the arithmetic on them and on literals, computed as the loop would."""
    known = {f"L{k}": float(v) for k, v in constants.items()}
    with np.errstate(all="ignore"):
        for target, _, _, operands, dtype, op in statements:
            if op in _FOLD and dtype == "f":
                vals = [known.get(o, _number(o)) for o in operands]
                if None not in vals:
                    known[target] = float(_FOLD[op](*map(np.float64, vals)))
    return known


def _number(operand: str) -> float | None:
    try:
        return float(operand)  # '1.0', '-0.5', '1e-300'; None for names
    except ValueError:
        return None


def _c_float(x: float, single: bool = False) -> str:
    table = _LITERALS_FLOAT if single else _LITERALS
    if x != x:
        return table["_np.nan"]
    if math.isinf(x):
        return table["_np.inf" if x > 0 else "(-_np.inf)"]
    # A float literal: float32 arithmetic stays float32 (a double one would widen it)
    return f"{x!r}f" if single else repr(x)


def exponent_leaves(statements) -> frozenset[int]:
    """Indices of the leaves that some power's exponent is computed from."""
    deps: dict[str, frozenset] = {}
    found: set[str] = set()
    for target, _, _, operands, _, op in statements:
        deps[target] = frozenset().union(*(deps.get(o, {o}) for o in operands))
        if op == "power":
            found |= deps.get(operands[1], {operands[1]})
    return frozenset(int(o[1:]) for o in found if o.startswith("L"))


def levels(statements, outputs: list[str], kinds: str) -> dict[str, str]:
    """``"f"`` for the names (leaves, temporaries) that vary within a row, else ``"r"``."""
    level = {f"L{k}": ("f" if kind == "f" else "r") for k, kind in enumerate(kinds)}
    for target, _, _, operands, _, _ in statements:
        level[target] = "f" if any(level.get(o) == "f" for o in operands) else "r"
    return level


# ------------------------------------------------------------------ building
_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}
_FUNCS: dict[tuple[str, str], object] = {}
_FAILED: dict[str, Unavailable] = {}  # per source: compile errors, unloadable objects
#: "identity": str; "unavailable": the environment's Unavailable (no compiler, no
#: usable cache), raised for every kernel after the first time.  Both are set under
#: _LOCK, each in one assignment.
_STATE: dict[str, object] = {}


def environment_failed() -> bool:
    """Whether no compiled kernel can run in this process (no compiler, no usable
    cache): :func:`build` then raises for every kernel."""
    return "unavailable" in _STATE


def environment_error() -> Unavailable | None:
    """Why no compiled kernel can run in this process, or None."""
    return _STATE.get("unavailable")


def cache_dir() -> Path:
    base = os.environ.get("SYMLOSS_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "symloss"


#: ``1``: accept a cache whose parent directories others may write or own (a shared
#: tree); ``kernels`` and its objects are still checked (docs/cache-trust.md).
TRUST_PARENTS = "SYMLOSS_TRUST_CACHE_PARENTS"
_SEARCH = getattr(os, "O_PATH", os.O_RDONLY)  # enough to look names up in a directory
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW


def _open_cache() -> tuple[int, str]:
    """The kernels directory, open, and its real path (made if missing, private).

    Each directory of the real path is opened from the one above it without
    following links and checked on its descriptor, so the directories checked are
    the ones used (links in ``$SYMLOSS_CACHE_DIR``, ``kernels`` included, are resolved
    first: their targets are what is checked).  A parent must belong to this user or
    root and be writable by no one else unless it is sticky (there, only an entry's
    owner may rename it); ``SYMLOSS_TRUST_CACHE_PARENTS=1`` skips that.  ``kernels``
    itself must be this user's and writable by no one else, always.
    """
    trust_parents = _trust_parents()
    real = os.path.realpath(os.path.join(os.path.abspath(cache_dir()), "kernels"))
    parts = Path(real).parts
    fd = os.open(parts[0], _SEARCH | _DIRECTORY)
    try:
        for depth, name in enumerate(parts[1:], 1):
            if not trust_parents:
                _check_parent(os.fstat(fd), os.path.join(*parts[:depth]))
            # The last one is read (fsync of renames, and the loader's path to it).
            child = _open_dir(fd, name, os.O_RDONLY if depth == len(parts) - 1 else _SEARCH)
            os.close(fd)
            fd = child
        _check_private(os.fstat(fd), f"the kernel cache {real}")
    except OSError as exc:
        os.close(fd)
        raise Unavailable(f"cannot open the kernel cache {real}: {exc.strerror}", True) from None
    except BaseException:
        os.close(fd)
        raise
    return fd, real


def _open_dir(parent: int, name: str, flags: int) -> int:
    """Directory *name* of *parent* (a link is an error), made private if missing."""
    try:
        return os.open(name, flags | _DIRECTORY, dir_fd=parent)
    except FileNotFoundError:
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile
            os.mkdir(name, 0o700, dir_fd=parent)
        return os.open(name, flags | _DIRECTORY, dir_fd=parent)


def _trust_parents() -> bool:
    raw = os.environ.get(TRUST_PARENTS, "").strip()
    if raw not in ("", "0", "1"):
        raise Unavailable(f"{TRUST_PARENTS}={raw!r}: expected 1 (trust) or 0 (check)", True)
    return raw == "1"


def _check_parent(info: os.stat_result, path: str) -> None:
    """A directory above ``kernels``: whoever may rename its entries could put another
    ``kernels`` directory, with other objects, in place of ours."""
    hint = f" (keep the cache in your own tree, or set {TRUST_PARENTS}=1: docs/cache-trust.md)"
    if hasattr(os, "getuid") and info.st_uid not in (0, os.getuid()):
        raise UntrustedCache(
            f"{path}, above the kernel cache, belongs to another user (uid {info.st_uid}){hint}"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise UntrustedCache(f"{path}, above the kernel cache, is writable by others{hint}")


def _check_private(info: os.stat_result, what: str) -> None:
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UntrustedCache(f"{what} belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedCache(f"{what} is writable by others")


def _compiler() -> list[str]:
    """``$CC`` as a command (``CC="ccache gcc"`` works)."""
    return shlex.split(CC) or ["cc"]


@functools.cache
def _vector_math(single: bool = False) -> frozenset[str]:
    """The functions libmvec has vector forms of (glibc 2.22 has exp, log, pow, sin
    and cos; 2.35 added log1p, expm1, tanh and the rest), in double or (*single*)
    in float (``expf``, named without the ``f`` here).  Only these are declared
    ``omp declare simd``; others are called one element at a time."""
    prefix = _vector_prefix()
    if prefix is None:
        return frozenset()
    try:
        lib = ctypes.CDLL("libmvec.so.1")
    except OSError:
        return frozenset()
    if single:  # 4 lanes of float where 2 of double: _ZGVbN4v_expf
        prefix = prefix[:-1] + "4"
    f_ = "f" if single else ""
    names = set(_MATH.values())
    return frozenset(
        f for f in names if hasattr(lib, f"{prefix}{'vv' if f == 'pow' else 'v'}_{f}{f_}")
    )


def _vector_prefix(machine: str | None = None) -> str | None:
    """The vector-function ABI's name prefix of libmvec's 2-lane double forms on this
    machine: ``_ZGVbN2`` (SSE, whose presence implies the wider AVX forms) on x86-64,
    ``_ZGVnN2`` (Advanced SIMD, glibc 2.38+) on aarch64; None elsewhere (every
    function is then called one element at a time)."""
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        return "_ZGVbN2"
    if machine in ("aarch64", "arm64"):
        return "_ZGVnN2"
    return None


def _identity() -> str:
    """What a compiled object depends on besides its source: flags, machine, CPU, C
    library.  Not the compiler's version: a cached object stays valid when the
    compiler changes, and a cache hit needs no compiler at all.
    """
    found = _STATE.get("identity")
    if found is None:
        cpu = platform.machine() + platform.processor()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as f:
                cpu += "".join(
                    sorted({ln for ln in f if ln.startswith(("model name", "flags", "Features"))})
                )
        except OSError:
            pass
        libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
        found = _STATE["identity"] = f"{FLAGS}\n{LIBS}\n{libc}\n{cpu}"
    return found


def build(code: str, symbol: str = "symloss_kernel", nargs: int = 4, compile: bool = True):
    """Function *symbol* of C *code*, compiled (or loaded from the disk cache).

    Its arguments are ``nargs`` integers and pointers (``long`` first, then
    addresses), none of them returned.  Raises :class:`Unavailable`: for every
    kernel once the environment failed (no compiler, no private cache), for this
    code only when it alone failed (a compiler error).  With *compile* false, None
    instead of running the compiler: the function only if it is loaded or cached.
    """
    fn = _FUNCS.get((code, symbol))
    if fn is not None:
        return fn
    with _LOCK:
        if "unavailable" in _STATE:
            raise _STATE["unavailable"]
        if code in _FAILED:
            raise _FAILED[code]
        lib = _LOADED.get(code)
        if lib is None:
            try:
                lib = _build(code, compile)
                if lib is None:
                    return None
                _LOADED[code] = lib
            except Unavailable as exc:
                if exc.environment:
                    _STATE["unavailable"] = exc  # once per process, not per block
                else:
                    _FAILED[code] = exc
                raise
        try:
            fn = getattr(lib, symbol)
        except AttributeError:  # the source has no such function: not a cache problem
            raise Unavailable(f"a compiled kernel has no function {symbol}") from None
        fn.argtypes = [ctypes.c_long, ctypes.c_long, *[ctypes.c_void_p] * (nargs - 2)]
        fn.restype = None
        _FUNCS[code, symbol] = fn
    return fn


def _build(code: str, compile: bool = True):
    """Load *code*'s object from the cache, or compile it into place (docs/cache-trust.md);
    with *compile* false, None where it is not cached."""
    key = hashlib.sha256((_identity() + code).encode()).hexdigest()[:32]
    name = f"k{key}.so"
    folder, real = _open_cache()
    try:
        obj = _read_cached(folder, name, key)
        if obj is not None:
            with contextlib.suppress(OSError):  # sealed, yet it will not load: compiled again
                return _load_bytes(folder, real, obj)
        if not compile:
            return None
        marker, mkey = _toolchain_marker()
        known = None if _STATE.get("retry") else _read_cached(folder, marker, mkey)
        if known is not None:
            raise Unavailable(
                f"{known.decode(errors='replace')} (remembered from an earlier process: "
                f"`symloss build` tries again, as does a change of compiler or C library)",
                True,
                True,
            )
        try:
            obj = _compile_object(code)
        except Unavailable as exc:
            if exc.environment and exc.quiet:  # the toolchain's fault: remember it
                with contextlib.suppress(OSError):
                    _install(folder, real, marker, _seal(str(exc).encode(), mkey))
            raise
        if _STATE.pop("retry", None):  # it works now: forget the failure
            with contextlib.suppress(OSError):
                os.unlink(marker, dir_fd=folder)
        try:
            _install(folder, real, name, _seal(obj, key))
        except OSError as exc:
            raise Unavailable(
                f"cannot store a compiled kernel in {real}: {exc.strerror}", _disk_full(exc)
            ) from None
        try:
            return _load_bytes(folder, real, obj)
        except OSError as exc:
            raise Unavailable(f"cannot load a compiled kernel: {exc}") from None
    finally:
        os.close(folder)


def _toolchain_marker() -> tuple[str, str]:
    """``(file name, key)`` of the cache entry remembering that this toolchain cannot
    build kernels: keyed by the compiler (its command, the file it runs, that file's
    size and time) and the C library, flags and machine, so that installing or
    changing either tries again."""
    command = _compiler()
    found = shutil.which(command[0]) if command else None
    what = [*command, str(found)]
    if found:
        with contextlib.suppress(OSError):
            info = os.stat(found)
            what += [os.path.realpath(found), str(info.st_size), str(info.st_mtime_ns)]
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else ""
    what += [libc, *FLAGS, *LIBS, platform.machine()]
    key = hashlib.sha256("\0".join(what).encode()).hexdigest()[:32]
    return f"toolchain-{key}.failed", key


def retry_toolchain() -> None:
    """Try the compiler again in this process even if an earlier one remembered that
    it cannot build kernels (``symloss build`` does)."""
    with _LOCK:
        _STATE["retry"] = True
        _STATE.pop("unavailable", None)


# ------------------------------------------------------------------ cached objects
#: What a cached object ends with: a marker with the format's number, the cache key
#: it was built for, the length of the object before it, and the SHA-256 of that
#: object.  (Integrity, not authenticity: only this user can write the cache.)
_SEAL = struct.Struct("<16s32sQ32s")
_MAGIC = b"symloss-kernel/1"
_MAX_OBJECT = 64 << 20  # a compiled kernel is tens of kilobytes
#: Descriptors of objects loaded from memory, open for the life of the process.
_PINNED: list[int] = []
#: Errors of writing a file where the disk or the directory will not take it.
_CANNOT_WRITE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def _seal(obj: bytes, key: str) -> bytes:
    """*obj* followed by what :func:`_unseal` checks."""
    return obj + _SEAL.pack(_MAGIC, key.encode(), len(obj), hashlib.sha256(obj).digest())


def _unseal(data: bytes, key: str) -> bytes | None:
    """The object sealed in *data*, if the seal holds: the marker (not an older
    format), this *key* (not another kernel's object under this name), the length
    (neither truncated nor extended) and the SHA-256 of the object (not damaged).
    None otherwise."""
    if len(data) < _SEAL.size:
        return None
    magic, sealed_for, length, digest = _SEAL.unpack_from(data, len(data) - _SEAL.size)
    obj = data[: -_SEAL.size]
    if magic != _MAGIC or sealed_for != key.encode() or length != len(obj):
        return None
    return obj if hashlib.sha256(obj).digest() == digest else None


def _read_cached(folder: int, name: str, key: str) -> bytes | None:
    """The object cached as *name* in *folder*, if it may be loaded: a regular file
    (not a link, a directory, a pipe), this user's, writable by no one else, whose
    seal holds.  None otherwise: the caller compiles it again into place."""
    try:
        # O_NONBLOCK: a named pipe under this name would block the open forever.
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=folder)
    except OSError:  # missing, a link (ELOOP), a socket (ENXIO), unreadable
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_size > _MAX_OBJECT
            or (hasattr(os, "getuid") and info.st_uid != os.getuid())
            or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        ):
            return None
        with open(fd, "rb", closefd=False) as f:
            data = f.read(_MAX_OBJECT + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _unseal(data, key)


def _write_new(folder: int, name: str, data: bytes, durable: bool = False) -> None:
    """A new file *name* in *folder* holding *data*, read and run by its owner only
    (whatever the umask); removed again if writing fails."""
    fd = os.open(name, _NEW_FILE, 0o500, dir_fd=folder)
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
        os.fchmod(fd, 0o500)
        if durable:
            os.fsync(fd)  # the bytes are on disk before the name points at them
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=folder)
        raise
    finally:
        os.close(fd)


def _install(folder: int, real: str, name: str, data: bytes) -> None:
    """*data* as *name*, atomically and durably: a new file, fsync'ed, renamed over
    *name* (another process sees the old object or the new one, a crash leaves one
    or the other, never part of one), then the directory fsync'ed (the rename
    itself survives a crash)."""
    temporary = f".tmp-{secrets.token_hex(8)}"
    _write_new(folder, temporary, data, durable=True)
    try:
        try:
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except IsADirectoryError:
            # A directory under the object's name: moved aside (a rename, atomic), then
            # deleted; another process may have done the same meanwhile.
            aside = f".trash-{secrets.token_hex(8)}"
            with contextlib.suppress(FileNotFoundError):
                os.rename(name, aside, src_dir_fd=folder, dst_dir_fd=folder)
                shutil.rmtree(os.path.join(real, aside), ignore_errors=True)
            os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
    with contextlib.suppress(OSError):  # (a file system without it: the rename is done)
        os.fsync(folder)


def _load_bytes(folder: int, real: str, obj: bytes) -> ctypes.CDLL:
    """dlopen exactly the bytes *obj* (checked, or just compiled).

    They are written to a private copy under a new name, loaded and unlinked: never
    a path that could point at another file by the time the loader opens it, and
    never a name loaded before (the loader hands back the object it already has
    for a name, or for a file, whatever is there now).  Where the cache cannot be
    written (full, read-only), from memory instead.
    """
    name = f".load-{secrets.token_hex(8)}.so"
    try:
        _write_new(folder, name, obj)
    except OSError as exc:
        if exc.errno not in _CANNOT_WRITE:
            raise
        return _load_from_memory(obj)
    try:
        # The directory held open, not its path: nothing above it can be swapped.
        where = f"/proc/self/fd/{folder}" if os.path.isdir("/proc/self/fd") else real
        return ctypes.CDLL(os.path.join(where, name))
    finally:
        with contextlib.suppress(OSError):  # loaded or not, the copy's name goes
            os.unlink(name, dir_fd=folder)


def _load_from_memory(obj: bytes) -> ctypes.CDLL:
    """dlopen *obj* from an anonymous file in memory (Linux).  Its descriptor stays
    open for the life of the process: the loader knows the object by the name it
    was opened under, ``/proc/self/fd/N``, and would hand it back for a later object
    opened under a reused N."""
    if not hasattr(os, "memfd_create"):
        raise OSError(errno.ENOSYS, "the cache cannot be written and there is no memfd_create")
    fd = os.memfd_create("symloss-kernel")
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(obj)
        lib = ctypes.CDLL(f"/proc/self/fd/{fd}")
    except BaseException:
        os.close(fd)  # nothing was loaded under this name: it may be reused
        raise
    _PINNED.append(fd)
    return lib


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _says_disk_full(text: str) -> bool:
    """Whether a compiler's message is about a full disk (its temporaries or output)."""
    return any(os.strerror(e) in text for e in (errno.ENOSPC, errno.EDQUOT))


_EMPTY = "void symloss_kernel(long r, long m, const double *const *in, double *const *out) {}\n"


def _compile_object(code: str) -> bytes:
    """The shared object of *code*, compiled in a private temporary directory."""
    command = _compiler()
    if shutil.which(command[0]) is None:
        raise Unavailable(f"no C compiler: {command[0]!r} is not on PATH (set $CC)", True, True)
    try:
        with tempfile.TemporaryDirectory(prefix="symloss-", ignore_cleanup_errors=True) as tmp:
            problem = _compile(command, code, Path(tmp) / "kernel.so")
            if problem is not None and _says_disk_full(problem):
                # Not the kernel's fault, nor the toolchain's: say so.
                raise Unavailable(f"{CC} could not write a kernel (disk full): {problem}", True)
            if problem is not None:
                # This kernel's fault, or the toolchain's (no libmvec, as on macOS; no C
                # library headers)?  An empty kernel tells, and the latter stops trying.
                if _compile(command, _EMPTY, Path(tmp) / "empty.so") is not None:
                    raise Unavailable(f"{CC} cannot build kernels here: {problem}", True, True)
                raise Unavailable(f"{CC} could not compile a kernel: {problem}")
            return (Path(tmp) / "kernel.so").read_bytes()
    except OSError as exc:  # the temporary directory or the source could not be written
        where = tempfile.gettempdir()
        raise Unavailable(f"cannot compile a kernel in {where}: {exc.strerror}", True) from None


def _compile(command: list[str], code: str, obj: Path) -> str | None:
    """Compile *code* into the shared object *obj*; the compiler's first error, if any
    (a full disk's first, if that is what it says)."""
    src = obj.with_suffix(".c")
    src.write_text(code, encoding="utf-8")
    try:
        done = subprocess.run(
            [*command, *FLAGS, str(src), "-o", str(obj), *LIBS],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"it failed to run ({exc})"
    if done.returncode == 0:
        return None
    lines = done.stderr.splitlines()
    found = [ln for ln in lines if _says_disk_full(ln)] or [ln for ln in lines if "error" in ln]
    return (found or lines[-1:] or [""])[0].strip()


# ------------------------------------------------------------------ running
class CompiledKernel:
    """Callable like :func:`symloss.numeric.fused.compile_fused`'s functions: leaf values in,
    the list of output arrays out (scratch of the calling thread, broadcastable to
    the leaves' shape: row-level outputs have a last axis of 1).

    Raises :class:`Unavailable` when no compiler works.  ctypes releases the GIL
    for the call, so blocks run on several threads at once.
    """

    def __init__(self, statements, outputs: list[str], nleaves: int, stats=()):
        self._statements = statements
        self._outputs = outputs
        self._stats = tuple(stats)  # row statistics computed in the loop (see source)
        self._fns: dict[tuple, object] = {}
        self._small: dict[tuple, object] = {}  # see small()
        # (a row statistic may be an exponent: it is never a constant)
        self._exponents = frozenset(k for k in exponent_leaves(statements) if k < nleaves)
        source(statements, outputs, "f" * nleaves, stats=stats)  # Unsupported now, not at a call

    def function(
        self,
        kinds: str,
        constants: dict[int, float],
        modes: str,
        width=None,
        real="double",
        bounds=(),
        finite=(),
        compile: bool = True,
    ):
        """The compiled loop for leaves of these kinds (and constant exponents), these
        output *modes*, this float type and these checked leaves (see :func:`source`),
        and which outputs are per element; with *compile* false, None where that
        needs the compiler."""
        # By bits: 0.0 == -0.0, but x**-0.0 and x**0.0 are compiled with their own sign.
        consts = tuple(sorted((k, v.hex()) for k, v in constants.items()))
        key = kinds, consts, modes, width, real, bounds, finite
        plan = self._fns.get(key)
        if plan is None:
            level = levels(self._statements, self._outputs, kinds)
            code = source(
                self._statements,
                self._outputs,
                kinds,
                constants,
                modes,
                self._stats,
                width,
                real,
                bounds,
                finite,
            )
            fn = build(code, compile=compile)
            if fn is None:
                return None
            plan = self._fns[key] = fn, [level.get(o) == "f" for o in self._outputs]
        return plan

    def __call__(self, *values, expand=True, summed=(), length=None, into=None, bounds=None):
        """The outputs for these leaf values.

        Outputs numbered in *summed* come summed over the last axis, of length
        *length* (new float64 arrays of the leading shape: 0-d for leaves of one
        axis, the whole total, added in double); *into* maps output numbers to
        ``(array, divisor)``: the output divided by *divisor*, written into *array*
        (of the leaves' broadcast shape, C-contiguous float64, else left to the
        caller) and returned.  None when *summed* or the row statistics cannot be
        met (the leaves' shape has no such last axis, or, for row statistics, no
        axis before it).

        A leaf broadcast along the rows (a (1, m) class weight, a (n, 1, m) softmax of
        a Hessian) is first copied to the full shape; with *expand* false, None is
        returned instead (the NumPy code broadcasts without copies).

        *bounds* maps leaf positions to None, or to ``"finite"`` where finite values
        are all that is asked (a domain that is the whole real line); the loop
        replaces each by the leaf's ``(minimum, maximum)`` (for ``"finite"``,
        ``(-DBL_MAX, DBL_MAX)``), both NaN if it holds a NaN or an infinity, when the
        leaf is an array of the full shape, read in the same pass (see
        :func:`source`), and sets the others to None.
        """
        shape = _shape_of(values)
        summed = frozenset(summed)
        # float32 leaves (and no float64 ones): the float loop, no float64 copies
        dtype = np.float32 if fused.single(values) else np.float64
        # Row sums and row statistics run over the leaves' last axis: it must be the
        # row's true length (a sum whose summand is constant along it counts m times).
        if (summed or self._stats) and (
            len(shape) < (2 if self._stats else 1) or shape[-1] != length
        ):
            return None
        chosen: dict[int, tuple] = {}
        for j, (a, d) in sorted((into or {}).items()):
            if (
                j not in summed
                and a.shape == shape
                and a.dtype == dtype
                and a.flags.c_contiguous
                and a.flags.writeable
                # The loop's pointers are restrict: no input may be read from an output,
                # and no two outputs may share memory.
                and not any(isinstance(v, np.ndarray) and np.may_share_memory(a, v) for v in values)
                and not any(np.may_share_memory(a, b) for b, _ in chosen.values())
            ):
                chosen[j] = (a, d)
        into = chosen
        modes = "".join(
            "s" if j in summed else "d" if j in into else "p" for j in range(len(self._outputs))
        )
        return self._run(values, shape, expand, modes, into, dtype, bounds)

    def _rows(self, shape: tuple, kinds: str, sums: bool) -> tuple[int, int, tuple, int | None]:
        """``(rows, m, row_shape, width)`` of a loop over leaves of these *kinds*: the
        rows it runs (one unless a leaf, a sum or a row statistic is per row), their
        length, the shape of a per-row array, and the row length compiled in (rows of
        8 to 32 elements: one object per m) or None."""
        lead = shape[:-1] if shape else ()
        rows = math.prod(lead) if "r" in kinds or sums or self._stats else 1
        m = math.prod(shape) // rows if rows else 0
        row_shape = lead + (1,) if "r" in kinds or self._stats else (1,) * len(shape)
        return rows, m, row_shape, m if rows > 1 and 8 <= m <= 32 else None

    def _constants(self, values, kinds: str) -> dict[int, float]:
        """The exponents compiled in: small integer and half-integer scalars (one
        object per value; a sweep over real-valued exponents shares the general one)."""
        return {
            k: float(values[k])
            for k in self._exponents
            if kinds[k] == "s"
            and (2 * float(values[k])).is_integer()
            and abs(float(values[k])) <= 8
        }

    def _run(
        self,
        values,
        shape: tuple,
        expand: bool,
        modes: str,
        into: dict,
        dtype=np.float64,
        bounds=None,
    ):
        sums = "s" in modes
        lead, m = (shape[:-1], shape[-1]) if shape else ((), 1)
        kinds = "".join(_kind(v, shape, lead, m) for v in values)
        rows, m, row_shape, width = self._rows(shape, kinds, sums)
        constants = self._constants(values, kinds)
        wants = [shape if kind == "f" else row_shape for kind in kinds]
        if not expand and any(
            k != "s" and v.size != math.prod(w) for v, k, w in zip(values, kinds, wants)
        ):
            return None
        real = "float" if dtype is np.float32 else "double"
        bounds = bounds if bounds is not None else {}
        checked = tuple(sorted(k for k in bounds if kinds[k] == "f"))
        finite = tuple(k for k in checked if bounds[k] == "finite")
        fn, full = self.function(kinds, constants, modes, width, real, checked, finite)
        numbers = [float(v) for v, k in zip(values, kinds) if k == "s"]
        numbers = np.array(numbers + [float(d) for _, d in into.values()] or [0.0])
        keep, addresses, j = [numbers], [], 0
        for v, kind, want in zip(values, kinds, wants):
            if kind == "s":
                addresses.append(numbers.ctypes.data + 8 * j)
                j += 1
                continue
            a = v if v.dtype == dtype else v.astype(dtype)
            if a.shape != want or not a.flags.c_contiguous:  # broadcast or strided
                a = np.ascontiguousarray(np.broadcast_to(a, want))  # freed after the call
            keep.append(a)
            addresses.append(a.ctypes.data)
        addresses += [numbers.ctypes.data + 8 * (j + k) for k in range(len(into))]
        outs = []
        for k, (mode, f) in enumerate(zip(modes, full)):
            if mode == "s":  # a new array: the caller keeps it (a leaf of another kernel)
                outs.append(np.empty(lead))
            elif mode == "d":
                outs.append(into[k][0])
            else:
                outs.append(fused.SCRATCH.array(dtype, -1 - k, shape if f else row_shape))
        extremes = np.empty((len(checked), 2))
        ins = (ctypes.c_void_p * max(1, len(addresses)))(*addresses)
        pointers = [o.ctypes.data for o in outs]
        pointers += [extremes.ctypes.data + 16 * e for e in range(len(checked))]
        ptrs = (ctypes.c_void_p * len(pointers))(*pointers)
        fn(rows, m, ins, ptrs)
        for k in bounds:
            bounds[k] = None
        for k, (low, high) in zip(checked, extremes.tolist()):
            bounds[k] = (low, high)
        return outs

    def small(
        self, values, length: int, g: np.ndarray, divisor: float, after: int | None, total: bool
    ):
        """The outputs of a small block without the general call's bookkeeping: output
        1 divided by *divisor* and written into *g* (a new C-contiguous array of the
        leaves' shape, which no leaf shares), and output 0, the value: with *total*,
        a value per element comes summed over the last axis (an array of the leading
        shape); otherwise a new array per element, or per row.  Returns ``(value,
        summed)``, or None where the general call is needed (leaves broadcast,
        strided or of another type) or where the loop is neither loaded nor cached
        on disk and the compiler is not to run yet: it runs at the call after *after*
        such calls of one signature (never when *after* is None).

        What a call of one signature needs (the loop, the row count, where each leaf
        goes) is worked out once and kept, and each thread fills its own pointer
        table: a call costs a few microseconds besides the loop.
        """
        ndarray = np.ndarray
        sig = [g.shape, g.dtype.char, length, total]
        for v in values:  # a loop: this runs on every call
            if isinstance(v, ndarray) and v.ndim:
                sig.append((v.shape, v.dtype.char, v.flags.c_contiguous))
            else:
                sig.append(None)
        for k in self._exponents:  # an exponent compiled in is part of the loop
            v = values[k]
            sig.append(None if isinstance(v, ndarray) and v.ndim else float(v))
        sig = tuple(sig)
        plan = self._small.get(sig)
        if plan is None:
            plan = self._small_plan(sig, values, length, g, after == 0, total)
        if plan.__class__ is list:  # waiting: [calls so far]
            plan[0] += 1
            if after is None or plan[0] <= after:
                return None
            plan = self._small_plan(sig, values, length, g, True, total)
        if plan is False:
            return None
        fn, rows, m, arrays, scalars, value_shape, summed, tables = plan
        value = np.empty(value_shape, np.float64 if summed else g.dtype)
        try:
            ins, outs, numbers = tables.buffers
        except AttributeError:  # this thread's first call of this signature
            ins, outs, numbers = tables.buffers = tables.make()
        for j, k in enumerate(scalars):
            numbers[j] = float(values[k])
        numbers[len(scalars)] = divisor
        for k in arrays:
            ins[k] = _address(values[k])
        outs[0] = _address(value)
        outs[1] = _address(g)
        fn(rows, m, ins, outs)
        return value, summed

    def _small_plan(self, sig: tuple, values, length, g, compile: bool, total: bool):
        """What :meth:`small` needs for calls of signature *sig*, kept: a tuple; False
        where the general call is needed (and where the loop failed to build: the
        :class:`Unavailable` is raised once); a list (waiting) where the loop is not
        available without the compiler and *compile* is false."""
        if len(self._small) >= 64:  # inputs of ever-changing shapes
            self._small.clear()
        self._small[sig] = False
        plan = self._small[sig] = self._plan_small(values, length, g, compile, total)
        return plan

    def _plan_small(self, values, length: int, g: np.ndarray, compile: bool, total: bool):
        shape, dtype = g.shape, g.dtype
        if (self._stats and (len(shape) < 2 or shape[-1] != length)) or len(self._outputs) != 2:
            return False
        lead, m = (shape[:-1], shape[-1]) if shape else ((), 1)
        kinds = "".join(_kind(v, shape, lead, m) for v in values)
        for v, kind in zip(values, kinds):
            want = shape if kind == "f" else lead + (1,)
            if kind != "s" and (v.shape != want or v.dtype != dtype or not v.flags.c_contiguous):
                return False
        # A value per element is summed in the loop (over the last axis, of the true
        # row length here): no array of values, and no NumPy sum of it.
        summed = (
            total and levels(self._statements, self._outputs, kinds).get(self._outputs[0]) == "f"
        )
        rows, m, row_shape, width = self._rows(shape, kinds, summed)
        constants = self._constants(values, kinds)
        real = "float" if dtype == np.float32 else "double"
        modes = "sd" if summed else "pd"
        found = self.function(kinds, constants, modes, width, real, compile=compile)
        if found is None:
            return [0]
        fn, full = found
        scalars = [k for k, kind in enumerate(kinds) if kind == "s"]
        arrays = [k for k, kind in enumerate(kinds) if kind != "s"]
        value_shape = lead if summed else shape if full[0] else row_shape
        tables = _Tables(len(values), scalars)
        return fn, rows, m, arrays, scalars, value_shape, summed, tables


class _Tables(threading.local):
    """One thread's pointer tables for :meth:`CompiledKernel.small` (``buffers``): the
    leaves' and divisor's addresses, the outputs', and the numbers the scalar leaves'
    and divisor's addresses point at."""

    def __init__(self, nleaves: int, scalars: list[int]):
        self.nleaves, self.scalars = nleaves, scalars

    def make(self):
        numbers = (ctypes.c_double * (len(self.scalars) + 1))()
        at = ctypes.addressof(numbers)
        ins = (ctypes.c_void_p * (self.nleaves + 1))()
        for j, k in enumerate(self.scalars):
            ins[k] = at + 8 * j
        ins[self.nleaves] = at + 8 * len(self.scalars)
        return ins, (ctypes.c_void_p * 2)(), numbers


def _address(a: np.ndarray) -> int:
    """The address of C-contiguous *a*'s data: through ctypes' buffer view, three times
    cheaper than ``a.ctypes.data`` (which a read-only array still needs)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except TypeError:
        return a.ctypes.data


def _shape_of(values) -> tuple:
    """The broadcast shape of the array leaves (numbers and 0-d arrays are scalars)."""
    shapes = {v.shape for v in values if isinstance(v, np.ndarray) and v.ndim}
    return shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes)


def _kind(v, shape: tuple, lead: tuple, m: int) -> str:
    """``"s"`` a number, ``"r"`` one value per row, ``"f"`` per element (see :func:`source`)."""
    if not isinstance(v, np.ndarray) or v.ndim == 0:
        return "s"
    s = v.shape if v.ndim == len(shape) else (1,) * (len(shape) - v.ndim) + v.shape
    if s[-1] == 1 and m > 1 and s[:-1] == lead:
        return "r"
    return "f"


# ------------------------------------------------------------------ row reductions
_ROWS = (
    "#pragma omp declare simd notinbranch\ndouble exp(double);\n"  # in libmvec since 2.22
    + _PRELUDE
    + """
void symloss_row_max(long rows, long m, const double *restrict v, double *restrict out)
{
    for (long r = 0; r < rows; r++) {
        double acc = v[r * m];
        for (long c = 1; c < m; c++) acc = sl_max(acc, v[r * m + c]);
        out[r] = acc;
    }
}
#pragma omp declare reduction(sl_add : double : omp_out += omp_in) initializer(omp_priv = -0.0)
void symloss_row_sum(long rows, long m, const double *restrict v, double *restrict out)
{
    for (long r = 0; r < rows; r++) {
        double acc = v[r * m];
        if (m <= SL_CHUNK) {  /* left to right */
            for (long c = 1; c < m; c++) acc += v[r * m + c];
        } else {  /* chunk by chunk, the chunks' sums pairwise (see source()) */
            sl_pairs q; q.n = 0;
            for (long c0 = 0; c0 < m; c0 += SL_CHUNK) {
                const long c1 = c0 + SL_CHUNK < m ? c0 + SL_CHUNK : m;
                acc = -0.0;
                #pragma omp simd reduction(sl_add:acc)
                for (long c = c0; c < c1; c++) acc += v[r * m + c];
                sl_push(&q, acc);
            }
            acc = sl_total(&q);
        }
        out[r] = acc;
    }
}
/* top = row max of z, e = exp(z - top), total = row sum of e (softmax's pieces). */
void symloss_row_stats(long rows, long m, const double *restrict z, double *restrict top,
                       double *restrict e, double *restrict total)
{
    symloss_row_max(rows, m, z, top);
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < m; c++) e[r * m + c] = z[r * m + c] - top[r];
    #pragma omp simd
    for (long i = 0; i < rows * m; i++) e[i] = exp(e[i]);
    symloss_row_sum(rows, m, e, total);
}
/* The smallest and largest of n values, in one pass; both NaN if a value is NaN or
   infinite (probe, a sum of v * 0, is then NaN). */
void symloss_min_max(long n, long unused, const double *restrict v, double *restrict out)
{
    double lo = __builtin_inf(), hi = -__builtin_inf(), probe = 0.0;
    #pragma omp simd reduction(min:lo) reduction(max:hi) reduction(+:probe)
    for (long i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        probe += v[i] * 0.0;
    }
    out[0] = probe == 0.0 ? lo : probe;
    out[1] = probe == 0.0 ? hi : probe;
}
/* 1/c where v is the row's maximum top (reached c times), else 0: argmax's share. */
void symloss_row_share(long rows, long m, const double *restrict v,
                       const double *restrict top, double *restrict out)
{
    for (long r = 0; r < rows; r++) {
        double count = 0.0;
        for (long c = 0; c < m; c++) count += v[r * m + c] == top[r];
        for (long c = 0; c < m; c++) out[r * m + c] = (v[r * m + c] == top[r]) / count;
    }
}
void symloss_row_divide(long rows, long m, const double *restrict e,
                        const double *restrict total, double *restrict out)
{
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < m; c++) out[r * m + c] = e[r * m + c] / total[r];
}
"""
)


#: The same helpers over float32 arrays (their sums still accumulate in double):
#: the array arguments are floats, exp is expf.
_ROWS_FLOAT = (
    _ROWS.replace("double exp(double);", "float expf(float);")
    .replace("double *restrict", "float *restrict")
    .replace("e[i] = exp(e[i])", "e[i] = expf(e[i])")
)
_ROW_CODE = {np.dtype(np.float64): _ROWS, np.dtype(np.float32): _ROWS_FLOAT}


def _rows_of(v: np.ndarray) -> tuple[int, int] | None:
    """(rows, m) of a C-contiguous float64 or float32 array with rows of at least 2
    elements."""
    if v.ndim < 2 or v.shape[-1] < 2 or v.dtype not in _ROW_CODE or not v.flags.c_contiguous:
        return None
    return v.size // v.shape[-1], v.shape[-1]


def row_reduce(ufunc, v: np.ndarray) -> np.ndarray | None:
    """``ufunc.reduce(v, axis=-1)`` for ``numpy.maximum`` and ``numpy.add`` (added left
    to right, or over rows longer than :data:`CHUNK`, chunk by chunk and the chunks'
    sums pairwise), or None where this does not apply (see :func:`_rows_of`)."""
    shape = _rows_of(v)
    if shape is None or ufunc not in (np.maximum, np.add):
        return None
    fn = build(_ROW_CODE[v.dtype], "symloss_row_max" if ufunc is np.maximum else "symloss_row_sum")
    out = np.empty(v.shape[:-1], v.dtype)
    fn(*shape, v.ctypes.data, out.ctypes.data)
    return out


def min_max(v: np.ndarray) -> tuple[float, float] | None:
    """``(v.min(), v.max())`` in one pass, both NaN if *v* holds a NaN or an infinity
    (outside every domain: infinite bounds are open), or None for an array that is
    not C-contiguous float64 or float32, or is empty.  Cheap enough for the checks
    of a small call: the addresses are read through :func:`_address`."""
    code = _ROW_CODE.get(v.dtype)
    if code is None or not v.flags.c_contiguous or not v.size:
        return None
    out = np.empty(2, v.dtype)
    build(code, "symloss_min_max")(v.size, 0, _address(v), _address(out))
    low, high = out.tolist()
    return low, high


def row_sum_extremes(v: np.ndarray) -> tuple[float, float] | None:
    """The smallest and largest row sum of *v* (as :func:`min_max`), or None where
    :func:`_rows_of` does not apply."""
    shape = _rows_of(v)
    if shape is None:
        return None
    sums = np.empty(shape[0], v.dtype)
    build(_ROW_CODE[v.dtype], "symloss_row_sum")(*shape, _address(v), _address(sums))
    return min_max(sums)


def row_stats(z: np.ndarray):
    """``(top, e, total)``: the row maxima of *z*, ``exp(z - top)`` and its row sums
    (keeping the last axis), in one call; None where :func:`_rows_of` does not apply."""
    shape = _rows_of(z)
    if shape is None:
        return None
    fn = build(_ROW_CODE[z.dtype], "symloss_row_stats", 6)
    row = z.shape[:-1] + (1,)
    top, e, total = np.empty(row, z.dtype), np.empty(z.shape, z.dtype), np.empty(row, z.dtype)
    fn(*shape, z.ctypes.data, top.ctypes.data, e.ctypes.data, total.ctypes.data)
    return top, e, total


def row_share(v: np.ndarray, top: np.ndarray) -> np.ndarray | None:
    """Where *v* equals its row's maximum *top* (last axis 1), 1 / the number of such
    places, else 0; None where :func:`_rows_of` does not apply."""
    return _with_row_values("symloss_row_share", v, top)


def row_divide(e: np.ndarray, total: np.ndarray) -> np.ndarray | None:
    """``e / total`` for a row statistic *total* (last axis 1), or None."""
    return _with_row_values("symloss_row_divide", e, total)


def _with_row_values(symbol: str, v: np.ndarray, per_row: np.ndarray) -> np.ndarray | None:
    """C function *symbol* of an array and one value per row, into a new array."""
    shape = _rows_of(v)
    if (
        shape is None
        or per_row.shape != v.shape[:-1] + (1,)
        or per_row.dtype != v.dtype
        or not per_row.flags.c_contiguous
    ):
        return None
    out = np.empty(v.shape, v.dtype)
    fn = build(_ROW_CODE[v.dtype], symbol, 5)
    fn(*shape, v.ctypes.data, per_row.ctypes.data, out.ctypes.data)
    return out
