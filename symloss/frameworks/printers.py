r"""SymPy code printers for the generated NumPy, PyTorch and JAX modules.

Each subclasses SymPy's own printer for the framework (:class:`NumPyPrinter`,
:class:`TorchPrinter`, :class:`JaxPrinter`) and overrides only what the generated code
needs: leaf symbols print as the code that holds them (``y``, ``softmax_z[:, None, :]``),
sums add the terms that hold data before the constants (the order the NumPy kernels
add in, :func:`symloss.numeric.fused._Emitter._order`, so that ``margin + y - s``
rounds as it does there), comparisons are infix, a ``Piecewise`` is a nested
``where``, and symloss's own functions (``sigmoid``, ``softplus``, ``xlogy``,
``xdivy``, ``relu``, ``step``) are calls to the helpers at the top of each generated
module.  :meth:`ArrayCodePrinter.statement` writes one
:class:`~symloss.frameworks.lowering.Statement`.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

import sympy as sp
from sympy import S
from sympy.printing.numpy import JaxPrinter, NumPyPrinter
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from symloss.frameworks.lowering import Statement
from symloss.numeric.ops import maximum, minimum, where_nonneg

#: symloss's functions, printed as calls to the generated module's helpers.
HELPERS = ("sigmoid", "softplus", "xlogy", "xdivy", "relu", "step")

_INFIX = {
    "StrictGreaterThan": ">",
    "GreaterThan": ">=",
    "StrictLessThan": "<",
    "LessThan": "<=",
    "Equality": "==",
    "Unequality": "!=",
}


class ArrayCodePrinter:
    """What the three printers share (a mixin, before SymPy's printer in the MRO).

    Parameters
    ----------
    code : mapping of Symbol -> str
        The code of each leaf symbol and named intermediate.
    data : set of Symbol
        The symbols that hold arrays; the others hold Python numbers.
    like : str
        An input variable whose dtype and device new arrays take.
    """

    #: The framework's module prefix in generated code, and its name in SymPy's printer.
    prefix = ""
    sympy_module = ""

    def __init__(self, code=None, data=(), like: str = "y", **settings):
        super().__init__({"fully_qualified_modules": True, "allow_unknown_functions": False,
                          **settings})  # fmt: skip
        self.leaf_code = dict(code or {})
        self.data = frozenset(data)
        self.like = like

    # -- names and numbers
    def _print(self, expr, **kwargs):
        if (
            isinstance(expr, sp.Expr)
            and expr.is_number
            and not expr.is_Rational
            and expr.is_finite
            and expr.is_real
        ):
            # log(2), pi: the float64 literal the NumPy kernels use (float(expr))
            return repr(float(expr))
        return super()._print(expr, **kwargs)

    def _module_format(self, fqn, register=True):
        text = super()._module_format(fqn, register)
        if self.sympy_module and text.startswith(self.sympy_module + "."):
            return self.prefix + text[len(self.sympy_module) :]
        return text

    def _print_Symbol(self, expr):
        return self.leaf_code.get(expr, expr.name)

    _print_Dummy = _print_Symbol

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        value = float(expr)
        if sp.Rational(repr(value)) == expr:  # 0.5, 0.25: exact as written
            return repr(value)
        return f"({expr.p}/{expr.q})"

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_Half(self, expr):
        return "0.5"

    def _print_Infinity(self, expr):
        return "math.inf"

    def _print_NegativeInfinity(self, expr):
        return "-math.inf"

    def _print_NaN(self, expr):
        return "math.nan"

    def _print_BooleanTrue(self, expr):
        return "True"

    def _print_BooleanFalse(self, expr):
        return "False"

    # -- arithmetic
    def has_data(self, expr: sp.Basic) -> bool:
        return bool(expr.free_symbols & self.data)

    def _print_Add(self, expr, order=None):
        terms = list(expr.as_ordered_terms())
        terms = [t for t in terms if self.has_data(t)] + [t for t in terms if not self.has_data(t)]
        if len(terms) == 2 and terms[0].could_extract_minus_sign():
            # 1 - t and y - t rather than -t + 1 and -t + y: one rounding either way
            # (only the order of three or more terms changes the result)
            terms.reverse()
        prec = precedence(expr)
        out = []
        for k, term in enumerate(terms):
            if term.could_extract_minus_sign():
                text = self.parenthesize(-term, prec)
                out.append(f"-{text}" if k == 0 else f" - {text}")
            else:
                text = self.parenthesize(term, prec)
                out.append(text if k == 0 else f" + {text}")
        return "".join(out)

    def _print_Mul(self, expr):
        return StrPrinter._print_Mul(self, expr)

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == S.Half:
            return f"{self.prefix}.sqrt({self._print(base)})"
        if exp == -S.Half:
            return f"1/{self.prefix}.sqrt({self._print(base)})"
        if exp == -1:
            return f"1/{self.parenthesize(base, PRECEDENCE['Pow'])}"
        b = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        e = self._print(exp)
        if not (exp.is_Number and exp >= 0) and not exp.is_Symbol:
            e = f"({e})"
        return f"{b}**{e}"

    # -- logic
    def _print_Relational(self, expr):
        op = _INFIX[type(expr).__name__]
        lhs = self.parenthesize(expr.lhs, PRECEDENCE["Relational"] + 1)
        rhs = self.parenthesize(expr.rhs, PRECEDENCE["Relational"] + 1)
        return f"{lhs} {op} {rhs}"

    def _operand(self, cond) -> str:
        """*cond* printed to stand before ``&``, ``|``, ``~`` or a method call (which
        bind tighter than a comparison)."""
        text = self._print(cond)
        return text if isinstance(cond, sp.Symbol) else f"({text})"

    def _print_And(self, expr):
        return " & ".join(self._operand(a) for a in expr.args)

    def _print_Or(self, expr):
        return " | ".join(self._operand(a) for a in expr.args)

    def _print_Not(self, expr):
        return f"~{self._operand(expr.args[0])}"

    def _print_Piecewise(self, expr):
        pairs = list(expr.args)
        if not any(self.has_data(c) for _, c in pairs):
            # A choice made by the parameters (Tweedie's power < 2): Python's.
            out = self._print(pairs[-1][0]) if pairs[-1][1] == S.true else "math.nan"
            for value, cond in reversed(pairs[:-1] if pairs[-1][1] == S.true else pairs):
                out = f"({self._print(value)} if {self._print(cond)} else {out})"
            return out
        if pairs[-1][1] != S.true:
            pairs.append((S.NaN, S.true))
        out = pairs[-1][0]
        text = self._print(out)
        for value, cond in reversed(pairs[:-1]):
            text = self.where(cond, value, out, text)
            out = sp.Piecewise((value, cond), (out, True), evaluate=False)
        return text

    def where(self, cond, a, b, b_text: str) -> str:
        """``cond ? a : b`` on arrays (*b* already printed as *b_text*)."""
        return f"{self.prefix}.where({self._print(cond)}, {self._print(a)}, {b_text})"

    # -- functions
    def _call(self, name, expr):
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_sigmoid(self, expr):
        return self._call("sigmoid", expr)

    def _print_softplus(self, expr):
        return self._call("softplus", expr)

    def _print_xlogy(self, expr):
        return self._call("xlogy", expr)

    def _print_xdivy(self, expr):
        return self._call("xdivy", expr)

    def _print_relu(self, expr):
        return self._call("relu", expr)

    def _print_step(self, expr):
        return self._call("step", expr)

    def _print_log1p(self, expr):
        return self._call(f"{self.prefix}.log1p", expr)

    def _print_expm1(self, expr):
        return self._call(f"{self.prefix}.expm1", expr)

    def _print_sign(self, expr):
        return self._call(f"{self.prefix}.sign", expr)

    def _print_Abs(self, expr):
        return self._call(f"{self.prefix}.abs", expr)

    def _print_exp(self, expr):
        return self._call(f"{self.prefix}.exp", expr)

    def _print_log(self, expr):
        return self._call(f"{self.prefix}.log", expr)

    def _print_cosh(self, expr):
        return self._call(f"{self.prefix}.cosh", expr)

    def _print_sinh(self, expr):
        return self._call(f"{self.prefix}.sinh", expr)

    def _print_tanh(self, expr):
        return self._call(f"{self.prefix}.tanh", expr)

    def _print_maximum(self, expr):
        return self._call(f"{self.prefix}.maximum", expr)

    def _print_minimum(self, expr):
        return self._call(f"{self.prefix}.minimum", expr)

    def _print_quotient(self, expr):
        # One division per node (the stable form divides step by step: see
        # symloss.numeric.stabilize._over_common_power).
        x, y = expr.args
        num = self.parenthesize(x, PRECEDENCE["Mul"])
        return f"{num} / {self.parenthesize(y, PRECEDENCE['Mul'], strict=True)}"

    def _print_where_nonneg(self, expr):
        x, a, b = expr.args
        return self.where(sp.GreaterThan(x, 0), a, b, self._print(b))

    def _print_Function(self, expr):
        raise NotImplementedError(f"no array code for {type(expr).__name__}")

    # -- statements
    def statement(self, st: Statement) -> str:
        """The right-hand side of one statement."""
        if st.kind == "expr":
            return self._print(st.expr)
        if st.kind in ("rowsum", "rowmax"):
            body = self._print(st.expr)
            if not (isinstance(st.expr, sp.Symbol)):
                body = f"({body})"
            return self.row(st.kind, body, st.keepdims)
        if st.kind == "size":
            return self.size(st.array, st.axis)
        if st.kind == "softmax":
            return self.softmax(st.array)
        if st.kind == "logsumexp":
            return self.logsumexp(st.array)
        if st.kind == "eye":
            return self.eye(st.array)
        raise ValueError(f"unknown statement kind {st.kind!r}")

    def row(self, kind: str, body: str, keepdims: bool) -> str:
        keep = ", keepdims=True" if keepdims else ""
        if kind == "rowsum":
            return f"{body}.sum(axis=-1{keep})"
        # + 0.0: a maximum of zero is +0.0 whatever the order of ties of +0 and -0
        return f"{self.prefix}.max({body}, axis=-1{keep}) + 0.0"

    def size(self, array: str, axis) -> str:
        return f"{array}.size" if axis is None else f"{array}.shape[{axis}]"

    def softmax(self, array: str) -> str:
        return f"softmax({array})"

    def logsumexp(self, array: str) -> str:
        return f"logsumexp({array})"

    def eye(self, size: str) -> str:
        return f"{self.prefix}.eye({size}, dtype={self.like}.dtype)"

    def full_like(self, value: str) -> str:
        """An array of the input's shape and dtype, filled with *value*."""
        return f"{self.prefix}.full_like({self.like}, {value})"


class NumPyCode(ArrayCodePrinter, NumPyPrinter):
    """The generated NumPy module's printer (``np.exp``, ``np.where``)."""

    prefix = "np"
    sympy_module = "numpy"


class JaxCode(ArrayCodePrinter, JaxPrinter):
    """The generated JAX module's printer (``jnp.exp``, ``jnp.where``)."""

    prefix = "jnp"
    sympy_module = "jax.numpy"


def _torch_code():
    """:class:`TorchCode`, made on first use: importing ``sympy.printing.pytorch`` imports
    torch itself (when installed), which ``symloss show`` should not wait for."""
    from sympy.printing.pytorch import TorchPrinter

    class TorchCode(ArrayCodePrinter, TorchPrinter):
        """The generated PyTorch module's printer.

        ``torch.where`` of two Python numbers makes a tensor of the *default* dtype
        (float32), which would round a float64 loss's parameters: a choice between
        numbers is written as a comparison cast to the input's dtype instead.
        ``torch.maximum`` takes two tensors: a parameter bound is ``torch.clamp``.
        """

        prefix = "torch"
        sympy_module = "torch"

        def where(self, cond, a, b, b_text: str) -> str:
            if self.has_data(a) or self.has_data(b):
                return super().where(cond, a, b, b_text)
            dtype = f"{self.like}.dtype"
            c = self._operand(cond)
            if b == 0:
                mask = f"{c}.to({dtype})"
                return mask if a == 1 else f"{self.parenthesize(a, PRECEDENCE['Mul'])} * {mask}"
            if a == 0:
                mask = f"(~{c}).to({dtype})"
                return mask if b == 1 else f"{self.parenthesize(b, PRECEDENCE['Mul'])} * {mask}"
            # exact: one of the two products is 0 (a and b are finite numbers)
            return f"({self._print(a)} * {c}.to({dtype}) + {self._print(b)} * (~{c}).to({dtype}))"

        def _clamp(self, expr, bound: str):
            a, b = expr.args
            if self.has_data(a) and self.has_data(b):
                name = "maximum" if bound == "min" else "minimum"
                return self._call(f"torch.{name}", expr)
            data, other = (a, b) if self.has_data(a) else (b, a)
            return f"torch.clamp({self._print(data)}, {bound}={self._print(other)})"

        def _print_maximum(self, expr):
            return self._clamp(expr, "min")

        def _print_minimum(self, expr):
            return self._clamp(expr, "max")

        def row(self, kind: str, body: str, keepdims: bool) -> str:
            keep = ", keepdim=True" if keepdims else ""
            if kind == "rowsum":
                return f"{body}.sum(dim=-1{keep})"
            return f"{body}.amax(dim=-1{keep}) + 0.0"

        def size(self, array: str, axis) -> str:
            return f"{array}.numel()" if axis is None else f"{array}.shape[{axis}]"

        def softmax(self, array: str) -> str:
            return f"torch.softmax({array}, dim=-1)"

        def logsumexp(self, array: str) -> str:
            return f"torch.logsumexp({array}, dim=-1, keepdim=True)"

        def eye(self, size: str) -> str:
            return f"torch.eye({size}, dtype={self.like}.dtype, device={self.like}.device)"

    return TorchCode


class _Printers(dict):
    """Printer classes by format; PyTorch's is made on first use (:func:`_torch_code`)."""

    def __missing__(self, fmt):
        if fmt != "torch":
            raise KeyError(fmt)
        self[fmt] = _torch_code()
        return self[fmt]


PRINTERS = _Printers(numpy=NumPyCode, jax=JaxCode)

__all__ = ["HELPERS", "PRINTERS", "ArrayCodePrinter", "JaxCode", "NumPyCode",
           "maximum", "minimum", "where_nonneg"]  # fmt: skip
