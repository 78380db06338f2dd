r"""The source of a module with one function per loss, for NumPy, PyTorch or JAX.

:func:`generate` writes, from the :class:`~symloss.frameworks.spec.Spec` of each
loss, a Python module that imports only its framework and NumPy:

* a docstring with the losses, the conventions of the generated functions, what they
  check, and the symloss version that wrote them;
* the runtime the functions share (``templates/*.py.tmpl``: the inputs' checks with
  symloss's messages, integer labels, weights, reductions, and for PyTorch the
  ``torch.autograd.Function`` classes, for JAX the ``jax.custom_vjp`` functions);
* for each loss, its kernels (the summand of the sum-reduced loss, its gradient, and
  for PyTorch and JAX its Hessian), lowered from the stabilised expressions by
  :mod:`symloss.frameworks.lowering` and printed by :mod:`symloss.frameworks.printers`;
  its conventions as data (``_NAME = _Loss(...)``); and the public function, named by
  the loss's canonical name, whose docstring carries the formula and its gradient in
  LaTeX (NumPy adds ``NAME_grad``).

``Loss.to_torch()`` and ``Loss.to_jax()`` run this same source (:func:`load`), with
symloss's own error classes, so that what the tests check is what is exported.

It is long because the three targets share one writer: splitting it per framework
would repeat the docstring, conventions and kernel emission three times.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import itertools
import linecache
import math
import re
import sys
import textwrap
import types
from collections.abc import Sequence
from importlib import resources

import sympy as sp

from symloss.errors import ArgumentError, InputError, OptionError
from symloss.frameworks.lowering import Lowering, Namer, Unsupported, helper_expansion
from symloss.frameworks.printers import HELPERS, PRINTERS
from symloss.frameworks.spec import Spec, spec
from symloss.numeric import ops
from symloss.symbols import sigmoid, softplus
from symloss.version import __version__

FORMATS = ("numpy", "torch", "jax")

_SERIAL = itertools.count()

_IMPORTS = {
    "numpy": "import math\n\nimport numpy as np\n",
    "torch": "import math\n\nimport numpy as np\nimport torch\n",
    "jax": "import math\n\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n",
}

_FRAMEWORK = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}

_ERRORS = '''

# ============================================================================ errors
class InputError(ValueError):
    """An input is wrong: its dtype, shape, domain or a row constraint."""


class ArgumentError(TypeError):
    """A keyword input is missing or unexpected, or an option is not a number."""


class OptionError(ValueError):
    """An option (a parameter, the reduction) is outside its domain."""
'''

#: What the functions of each framework do, for the module's docstring.
_CONVENTIONS = {
    "numpy": """\
Each function takes the prediction (or logits) and the target as arrays, in float64
(other real dtypes are converted), and the loss's options as keywords.  ``NAME_grad``
returns the gradient of the same value by the prediction, in closed form.""",
    "torch": """\
Each function returns a tensor and differentiates through a torch.autograd.Function
whose backward pass evaluates the gradient symloss derived in closed form (not
autograd through the forward code).  With create_graph=True the gradient can be
differentiated again, through the closed-form Hessian (double backward: Hessian-vector
products, torch.autograd.functional.hessian); third derivatives are not available.
Inputs stay on their device and keep their dtype: float32 in, float32 out.  The
gradient is by the prediction and the per-sample weights; a target (or an extra input)
that requires grad is an error: detach it.""",
    "jax": """\
Each function is traceable by jax.jit and jax.vmap and differentiable by jax.grad
through a jax.custom_vjp rule that evaluates the gradient symloss derived in closed form
(not autodiff through the forward code).  Its own VJP evaluates the closed-form
Hessian, so jax.grad of jax.grad and jax.jacrev of jax.grad give second derivatives;
forward mode (jax.jvp, jax.jacfwd, jax.hessian) is not defined for custom_vjp
functions.  Hyperparameters are Python numbers (static under jit).  The gradient is
by the prediction and the per-sample weights; differentiating by the target or an
extra input raises InputError.""",
}

_SHARED = """\
Shapes.  An element-wise loss takes a prediction of any shape, each element a sample;
a loss over rows takes (n, m), the classes last.  The target and extra inputs (var=)
broadcast to the prediction's shape, the weight to the per-sample values' shape
(the prediction's, or (n,)).  Where the loss allows it, the target may be integer
class labels of shape (n,) (ignore_index as PyTorch's); their mean divides by the
summed class weights of the kept labels (PyTorch's weighted mean), and one-hot rows
by n.

Reductions.  "mean" divides the weighted sum by the count (n, the kept labels, or
n m where the loss says so; the weights do not change the count, as in PyTorch),
"sum" adds, "none" gives one value per sample, "batchmean" divides by n.

Checks, with symloss's messages.  Always: dtypes (real numbers), shapes, {devices}options,
missing or unexpected keyword inputs.  {values}"""

_VALUE_CHECKS = {
    "numpy": "Always, too: every input in its domain (logits finite, probabilities in "
    "[0, 1]...), labels in [0, m), target rows summing to 1, weights finite and >= 0.",
    "torch": "Where the data is on the CPU and torch.compile is not tracing (elsewhere "
    "reading it would wait for the device, or break the graph): every input in its "
    "domain (logits finite, probabilities in [0, 1]...), labels in [0, m), target rows "
    "summing to 1, weights finite and >= 0.",
    "jax": "Where the inputs are concrete arrays on the CPU (not traced by jit, vmap or "
    "grad, and not on an accelerator): every input in its domain (logits finite, "
    "probabilities in [0, 1]...), labels in [0, m), target rows summing to 1, weights "
    "finite and >= 0.",
}

#: Names a generated function may not give an intermediate value.
RESERVED = {
    *HELPERS,
    "softmax",
    "logsumexp",
    "math",
    "np",
    "torch",
    "jax",
    "jnp",
    "value",
    "grad",
    "hess",
    "n",
    "m",
    "weight",
    "reduction",
    *dir(builtins),
}


def _template(name: str) -> str:
    return resources.files("symloss.frameworks").joinpath("templates", name).read_text("utf-8")


# ------------------------------------------------------------------ text helpers
def literal(value) -> str:
    """*value* (numbers, strings, None, tuples of them) as Python source."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, (int, float)):
        value = float(value) if isinstance(value, float) else value
        if isinstance(value, float) and math.isinf(value):
            return "math.inf" if value > 0 else "-math.inf"
        if isinstance(value, float) and math.isnan(value):
            return "math.nan"
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise TypeError(f"no literal for {type(value).__name__}")


def docstring(text: str, indent: str) -> str:
    """A raw triple-quoted docstring of *text*, indented (nothing in *text* can end it)."""
    text = text.replace('"""', '" " "').rstrip()
    if text.endswith("\\"):
        text += " "
    body = textwrap.indent(text, indent).lstrip()
    if "\n" not in body and len(indent) + len(body) + 6 <= 99:
        return f'{indent}"""{body}"""' if "\\" not in body else f'{indent}r"""{body}"""'
    return f'{indent}r"""{body}\n{indent}"""'


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def wrap(lhs: str, rhs: str, indent: str, width: int = 99) -> list[str]:
    """``lhs = rhs`` as one line, or laid out over several (:func:`_layout`).

    The layout only adds parentheses and line breaks; as a guard, a layout whose syntax
    tree differs from the one line's is not used.
    """
    lines = _layout(rhs, len(indent) + len(lhs), indent, width)
    lines = [indent + lhs + lines[0], *lines[1:]]
    if len(lines) > 1:
        one = ast.dump(ast.parse(f"{lhs}{rhs}".strip()))
        if ast.dump(ast.parse(textwrap.dedent("\n".join(lines)))) != one:  # pragma: no cover
            return [f"{indent}{lhs}{rhs}"]
    return lines


def _pieces(text: str, kind: str) -> list[str]:
    """*text* cut at its top-level ``+``/``-`` (*kind* ``"sum"``), ``*`` (``"product"``,
    not ``**``) or the commas of its one call (``"call"``: the arguments)."""
    depth, start, out = 0, 0, []
    k = 0
    base = 1 if kind == "call" else 0
    while k < len(text):
        c = text[k]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == base:
            if kind == "sum" and k > 0 and text[k : k + 3] in (" + ", " - "):
                out.append(text[start:k])
                start = k + 1
                k += 2
            elif kind == "product" and k > 0 and c == "*" and text[k + 1 : k + 2] != "*" \
                    and text[k - 1] != "*":  # fmt: skip
                out.append(text[start:k])
                start = k  # the piece keeps its "*"
            elif kind == "call" and c == ",":
                out.append(text[start:k])
                start = k + 1
        k += 1
    out.append(text[start:])
    return [p.strip() for p in out]


def _layout(text: str, column: int, indent: str, width: int) -> list[str]:
    """Lines holding the expression *text*, whose first line starts at *column*: as
    is where it fits, else cut at its top-level sums, its call's arguments or its
    products, in parentheses (only whitespace changes: the tokens and their meaning
    stay as printed)."""
    if column + len(text) <= width or len(indent) > width // 2:
        return [text]
    inner = indent + "    "
    terms = _pieces(text, "sum")
    if len(terms) > 1:
        lines = ["("]
        for term in terms:
            lines += _operand(term, inner, width)
        return [*lines, f"{indent})"]
    call = re.match(r"^([\w.]+)\(", text)
    if call and _closing(text, call.end() - 1) == len(text) - 1:
        args = _pieces(text, "call")
        args[0] = args[0][call.end() :]
        args[-1] = args[-1][:-1]
        lines = [f"{call.group(1)}("]
        for arg in args:
            laid = _indented(arg, inner, width)
            laid[-1] += ","
            lines += laid
        return [*lines, f"{indent})"]
    factors = _pieces(text, "product")
    if len(factors) > 1:
        lines = ["("]
        for factor in factors:
            if factor.startswith("*"):
                factor = "* " + factor[1:].lstrip()
            lines += _operand(factor, inner, width)
        return [*lines, f"{indent})"]
    return [text]


def _operand(piece: str, indent: str, width: int) -> list[str]:
    """A term or factor with its operator (``+ a``, ``- b``, ``* c``) on its own lines:
    the operator stays in front, whatever layout the operand gets."""
    op = piece[:2] if piece[:2] in ("+ ", "- ", "* ") else ""
    laid = _layout(piece[len(op) :], len(indent) + len(op), indent, width)
    return [indent + op + laid[0], *laid[1:]]


def _indented(text: str, indent: str, width: int) -> list[str]:
    laid = _layout(text, len(indent), indent, width)
    return [indent + laid[0], *laid[1:]]


def _closing(text: str, start: int) -> int:
    depth = 0
    for k in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return k
    return -1


# ------------------------------------------------------------------ kernels
def _arrays(s: Spec) -> tuple[dict, dict]:
    arrays = {a.key: a.key for a in s.arrays}
    scalars = {}
    for p in s.params:
        if p.vector:
            arrays[str(p.symbol.label)] = p.name
        else:
            scalars[p.symbol] = p.name
    return arrays, scalars


def _sizes(s: Spec) -> dict:
    sizes = {s.layout[0][1]: ("n", 0 if s.rank == 2 else None)}
    if s.rank == 2:
        sizes[s.layout[1][1]] = ("m", -1)
    from symloss.symbols import m  # the classes' size that label smoothing's eps/m uses

    sizes.setdefault(m, ("m", -1))
    return sizes


def kernel(s: Spec, fmt: str, name: str, outputs: Sequence[tuple[str, sp.Expr, str]],
           layout, doc: str) -> str:  # fmt: skip
    """One kernel function ``name(pred, target, *extras, *params)`` returning *outputs*
    (``(variable, expression, shape)``, the shape one of ``"value"``, ``"input"``,
    ``"blocks"``), over *layout*."""
    arrays, scalars = _arrays(s)
    pred = s.pred.key
    low = Lowering(arrays, scalars, _sizes(s), pred, reserved=RESERVED)
    fn = low.function([e for _, e, _ in outputs], layout)
    printer = PRINTERS[fmt](fn.code, fn.data, like=pred)
    args = [a.key for a in s.arrays] + [p.name for p in s.params]
    doc = "\n\n".join(textwrap.fill(p, 84) for p in doc.split("\n\n"))
    lines = [f"def {name}({', '.join(args)}):", docstring(doc, "    ")]
    for st in fn.statements:
        lines += wrap(f"{st.name} = ", printer.statement(st), "    ")
    full = set(range(len(layout)))
    shapes = {
        "input": f"{pred}.shape",
        "value": f"{pred}.shape" if s.rank == 1 else f"({pred}.shape[0], 1)",
        "blocks": f"(*{pred}.shape, {pred}.shape[-1])",
    }
    wanted = {"input": full, "value": full if not s.row_value else {0}, "blocks": full}
    names = []
    for (var, _, shape), expr, span in zip(outputs, fn.outputs, fn.spans):
        code = printer.doprint(expr)
        if not expr.free_symbols & fn.data:
            code = _full(fmt, shapes[shape], code, pred)
        elif not wanted[shape] <= set(span):
            code = f"{printer.prefix}.broadcast_to({code}, {shapes[shape]})"
        lines += wrap(f"{var} = ", code, "    ")
        names.append(var)
    lines.append(f"    return {', '.join(names)}")
    return "\n".join(lines) + "\n"


def _full(fmt: str, shape: str, value: str, like: str) -> str:
    if fmt == "torch":
        return f"torch.full({shape}, {value}, dtype={like}.dtype, device={like}.device)"
    if fmt == "jax":
        return f"jnp.full({shape}, {value}, dtype={like}.dtype)"
    return f"np.full({shape}, {value}, dtype={like}.dtype)"


def _kernels(s: Spec, fmt: str) -> tuple[str, dict[str, str]]:
    """The kernel functions of one loss, and their names by role."""
    pred = s.pred.key
    base = f"_{s.name}"
    per = "row" if s.row_value else "element"
    value_doc = (
        f"Each {per}'s loss for the sum reduction: E's summand, before the mean's 1/n "
        "and the weights."
    )
    grad_doc = f"dE/d{pred} of the sum reduction, in closed form (symloss's derivation)."
    sources, names = [], {}
    layout = s.layout
    plan = [("value", [("value", s.value, "value")], value_doc)]
    if fmt == "torch":
        plan.append(
            (
                "value_and_grad",
                [("value", s.value, "value"), ("grad", s.gradient, "input")],
                "Both of the above, sharing their intermediate values.",
            )
        )
    plan.append(("grad", [("grad", s.gradient, "input")], grad_doc))
    for role, outs, doc in plan:
        name = f"{base}_{role}"
        if role == "value_and_grad":
            doc = f"{value_doc}\n\nAnd {grad_doc[0].lower()}{grad_doc[1:]}"
        sources.append(kernel(s, fmt, name, outs, layout, doc))
        names[role] = name
    if fmt != "numpy" and s.hessian is not None:
        if s.hessian_index is None:
            doc = f"d2E/d{pred}2 of the sum reduction: the Hessian is diagonal (closed form)."
            hess_layout, shape = layout, "input"
        else:
            doc = (
                f"Each sample's Hessian block d2E/d{pred}_ij d{pred}_ik of the sum "
                "reduction, of shape (n, m, m) (closed form)."
            )
            hess_layout, shape = (*layout, (s.hessian_index, layout[-1][1])), "blocks"
        name = f"{base}_hess"
        sources.append(kernel(s, fmt, name, [("hess", s.hessian, shape)], hess_layout, doc))
        names["hess"] = name
    return "\n\n".join(sources), names


# ------------------------------------------------------------------ per loss
def _domain(a) -> str:
    return literal(
        (a.key, a.who, a.lo, a.lo_open, a.hi, a.hi_open, a.members, a.text, a.description)
    )


def constant_name(s: Spec) -> str:
    return f"_{s.name.upper()}"


def _conventions(s: Spec, kernels: dict[str, str]) -> str:
    params = ", ".join(
        literal((p.name, p.vector, p.lo, p.lo_open, p.hi, p.hi_open, p.text)) for p in s.params
    )
    table = ", ".join(f'"{role}": {fn}' for role, fn in kernels.items())
    fields = [
        f"pred={_domain(s.pred)}",
        f"target={_domain(s.target)}",
        f"extras=({''.join(_domain(e) + ', ' for e in s.extras)})",
        f"params=({params}{',' if len(s.params) == 1 else ''})",
        f"rank={s.rank}",
        f"row_value={s.row_value}",
        f"labels={s.labels}",
        f"label_gather={s.label_gather}",
        f"row_sum={literal(s.row_sum)}",
        f"ignore_index={literal(s.ignore_index)}",
        f"label_reduction={s.label_reduction}",
        f"mean_over={literal(s.mean_over)}",
        f"reductions={literal(s.reductions)}",
        f"kernels={{{table}}}",
        f"hessian_blocks={s.hessian_index is not None}",
        f"hessian_error={literal(s.hessian_error)}",
    ]
    lines = [f"{constant_name(s)} = _Loss(", f"    {literal(s.loss_name)},"]
    for f in fields:
        lines.append(f"    {f},")
    lines.append(")")
    return "\n".join(lines)


def _signature(s: Spec) -> str:
    keyword_only = [a.key for a in s.extras]
    for p in s.params:
        keyword_only.append(f"{p.name}={literal(p.value)}")
    keyword_only.append(f"reduction={literal(s.reduction)}")
    return f"{s.pred.key}, {s.target.key}, weight=None, *, {', '.join(keyword_only)}"


def _arguments(s: Spec) -> str:
    extras = ", ".join(f"{literal(a.key)}: {a.key}" for a in s.extras)
    params = ", ".join(f"{literal(p.name)}: {p.name}" for p in s.params)
    return f"{s.pred.key}, {s.target.key}, weight, {{{extras}}}, {{{params}}}, reduction"


def _function_doc(s: Spec, fmt: str, grad: bool = False) -> str:
    pred, target = s.pred, s.target
    array = {"numpy": "array", "torch": "tensor", "jax": "array"}[fmt]
    shape = "(n, m), the classes last" if s.rank == 2 else "any shape, each element a sample"
    head = f"{s.title}: the gradient by {pred.key}." if grad else f"{s.title}."
    lines = [head, "", ".. math::", "", f"    {s.latex[0]}", ""]
    lines += [
        f"Its gradient, in closed form{' (what this returns)' if grad else ''}:",
        "",
        ".. math::",
        "",
        f"    {s.latex[1]}",
        "",
    ]
    if s.conventions:
        lines += textwrap.wrap(one_line(s.conventions), 84) + [""]
    lines += ["Parameters", "----------"]

    def described(head: str, text: str) -> list[str]:
        return [head, *textwrap.wrap(text, 84, initial_indent="    ", subsequent_indent="    ")]

    def said(domain) -> str:
        return f" ({one_line(domain.description)})" if domain.description else ""

    lines += described(
        f"{pred.key} : {array} of {shape}", f"The {pred.who}s, in {pred.text}{said(pred)}."
    )
    lines += described(
        f"{target.key} : {array}, broadcastable to {pred.key}'s shape",
        f"The targets, in {target.text}{said(target)}"
        + (", or integer class labels of shape (n,)" if s.labels else "")
        + ".",
    )
    lines += described(
        f"weight : {array}, optional", "Per-sample weights (they do not change the mean's count)."
    )
    for a in s.extras:
        lines += described(
            f"{a.key} : {array}, broadcastable to {pred.key}'s shape", f"In {a.text}{said(a)}."
        )
    for p in s.params:
        kind = "sequence of float" if p.vector else "float"
        lines += described(
            f"{p.name} : {kind} in {p.text}", one_line(p.description) if p.description else ""
        )
    lines += [f"reduction : {{{', '.join(repr(r) for r in s.reductions)}}}"]
    lines += ["", f"Generated by symloss {__version__} from the loss {s.name!r}."]
    return "\n".join(lines)


def _public(s: Spec, fmt: str) -> str:
    const, args = constant_name(s), _arguments(s)
    if fmt != "numpy":
        body = [f"    return {const}({args})"]
    else:
        body = [f"    return _value({const}, {args})"]
    out = [f"def {s.name}({_signature(s)}):", docstring(_function_doc(s, fmt), "    "), *body]
    if fmt == "numpy":
        out += [
            "",
            "",
            f"def {s.name}_grad({_signature(s)}):",
            docstring(_function_doc(s, fmt, grad=True), "    "),
            f"    return _gradient({const}, {args})",
        ]
    return "\n".join(out) + "\n"


def _section(s: Spec, fmt: str) -> str:
    kernels, names = _kernels(s, fmt)
    bar = "# " + "=" * 76
    head = f"{bar}\n# {s.name}: {one_line(s.title)}\n{bar}"
    return "\n\n\n".join(
        [head + "\n" + kernels.rstrip("\n"), _conventions(s, names), _public(s, fmt).rstrip("\n")]
    )


# ------------------------------------------------------------------ helpers
def _numpy_helpers() -> str:
    """sigmoid and softplus as the NumPy kernels expand them; xlogy, xdivy, relu and
    step as symloss's NumPy kernels define them (:mod:`symloss.numeric.ops`)."""
    out = []
    docs = {
        "sigmoid": "1 / (1 + exp(-x)), through exp(-|x|), which does not overflow.",
        "softplus": "log(1 + exp(x)) as max(0, x) + log1p(exp(-|x|)), which does not overflow.",
    }
    for function in (sigmoid, softplus):
        expr, x = helper_expansion(function)
        replacements, (reduced,) = sp.cse([expr], symbols=sp.numbered_symbols("h", cls=sp.Dummy))
        namer = Namer({"x"})
        namer.names[x] = "x"
        code = {x: "x"}
        lines = [f"def {function.__name__}(x):", f'    """{docs[function.__name__]}"""']
        for sym, e in replacements:
            name = namer.name(sym, e)
            code[sym] = name
            lines.append(f"    {name} = {PRINTERS['numpy'](code, set(code)).doprint(e)}")
        lines.append(f"    return {PRINTERS['numpy'](code, set(code)).doprint(reduced)}")
        out.append("\n".join(lines))
    for name in ("xlogy", "xdivy", "relu", "step"):
        source = inspect.getsource(ops.NUMPY_FUNCS[name])
        source = re.sub(r"^def _np_(\w+)\(", r"def \1(", source, count=1)
        out.append(f"# (as symloss.numeric.ops._np_{name})\n{source.rstrip()}")
    return "\n\n\n" + "\n\n\n".join(out)


# ------------------------------------------------------------------ the module
def generate(specs: Sequence[Spec], fmt: str, *, standalone: bool = True,
             command: str | None = None) -> str:  # fmt: skip
    """The source of a module with one function per loss in *specs* for *fmt*
    (``"numpy"``, ``"torch"`` or ``"jax"``).

    *standalone* modules define their own error classes; otherwise (:func:`load`)
    symloss's are injected.  *command* is the command line named in the docstring.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    specs = list(specs)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"two losses would have the same function name: {names}")
    publics = [
        n for s in specs for n in ((s.name, f"{s.name}_grad") if fmt == "numpy" else (s.name,))
    ]
    listing = "\n".join(f"- ``{s.name}``: {one_line(s.title)}" for s in specs)
    how = f"``{command}``" if command else "symloss"
    doc = "\n\n".join(
        [
            f"{_FRAMEWORK[fmt]} losses, generated by symloss {__version__}.",
            listing,
            f"Written by {how} from each loss's SymPy expression: the kernels below are "
            "the stabilised forms symloss's own NumPy kernels evaluate, and the gradient "
            "is the closed form symloss derived.  This module imports only "
            f"{_FRAMEWORK[fmt] if fmt != 'numpy' else 'NumPy'}"
            f"{' and NumPy' if fmt != 'numpy' else ''}.  Regenerate it rather than edit it.",
            _CONVENTIONS[fmt],
            _SHARED.format(
                values=_VALUE_CHECKS[fmt], devices="devices, " if fmt == "torch" else ""
            ),
        ]
    )
    doc = "\n\n".join(
        textwrap.fill(p, 88) if not p.startswith("-") else p for p in doc.split("\n\n")
    )
    parts = [docstring(doc, ""), "", _IMPORTS[fmt].rstrip("\n")]
    parts.append("\n__all__ = [\n" + "".join(f"    {name!r},\n" for name in publics) + "]")
    if standalone:
        parts.append(_ERRORS.rstrip("\n"))
    parts.append("\n\n" + _template("common.py.tmpl").rstrip("\n"))
    if fmt == "numpy":
        parts.append(_numpy_helpers())
    parts.append(_template(f"{fmt}.py.tmpl").rstrip("\n"))
    for s in specs:
        parts.append("\n\n" + _section(s, fmt))
    return "\n".join(parts) + "\n"


def load(specs: Sequence[Spec], fmt: str) -> dict:
    """Run :func:`generate`'s source for *specs* with symloss's error classes; the
    module's namespace.  Its source is registered with :mod:`linecache`, so that
    tracebacks and debuggers show the generated lines."""
    source = generate(specs, fmt, standalone=False)
    names = ", ".join(s.name for s in specs[:3]) + (", ..." if len(specs) > 3 else "")
    filename = f"<symloss {fmt}: {names}>"
    # A module in sys.modules, as an imported one: torch.compile (dynamo) looks the
    # functions' module up by name.
    module = types.ModuleType(f"_symloss_generated_{fmt}_{next(_SERIAL)}")
    module.__file__ = filename
    module.__dict__.update(
        InputError=InputError, ArgumentError=ArgumentError, OptionError=OptionError
    )
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # The source holds only names this package made (identifiers checked by
    # lowering.safe_identifier), float literals and escaped docstrings: no user text
    # runs as code.
    exec(compile(source, filename, "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    module.__source__ = source
    return module.__dict__


_LOADED: dict = {}


def runtime(loss, fmt: str):
    """The generated runtime object of *loss* for *fmt* (its ``_NAME`` constant): call it
    as ``rt(pred, target, weight, extra, params, reduction)``.  Made once per loss
    structure (losses that differ only in their parameters' values share it) and kept
    on the loss."""
    key = f"_framework_{fmt}"
    found = loss.__dict__.get(key)
    if found is None:
        structure = (_structure(loss), fmt)
        if structure not in _LOADED:
            s = spec(loss)
            bare = dataclasses.replace(
                s,
                params=tuple(dataclasses.replace(p, value=None) for p in s.params),
                reduction=s.reductions[0],
            )
            _LOADED[structure] = load([bare], fmt)[constant_name(bare)]
        found = loss.__dict__.setdefault(key, _LOADED[structure])
    return found


def _structure(loss) -> tuple:
    """What the generated code of *loss* depends on: everything but its parameters'
    values and its reduction (both arguments of the generated functions)."""
    text = sp.srepr
    return (
        loss.name,
        loss.title,
        loss.conventions,
        text(loss.term),
        text(loss.scale),
        text(loss.stable_term) if loss.stable_term is not None else None,
        text(loss.indices),
        text(loss.element_indices),
        text(loss.pred),
        text(loss.target),
        text(loss.extra_inputs),
        tuple((p.name, text(p.symbol), str(p.domain), p.description) for p in loss.params),
        tuple((c.name, c.description) for c in loss.constraints),
        loss.ignore_index,
        loss.label_reduction,
        tuple(loss.reductions),
        text(loss.mean_over),
        loss.composition is not None,
        tuple(
            sorted(
                (k, str(d and d.text()), str(d and d.description)) for k, d in loss.domains.items()
            )
        ),
    )


def parameters(loss) -> dict:
    """The loss's parameter values, as the generated functions take them."""
    out = {}
    for p in loss.params:
        value = loss.param_values[p.name]
        out[p.name] = tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else value
    return out


__all__ = [
    "FORMATS",
    "Unsupported",
    "generate",
    "kernel",
    "literal",
    "load",
    "parameters",
    "runtime",
]
