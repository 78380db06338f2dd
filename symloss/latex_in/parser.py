r"""LaTeX to SymPy: read a loss formula as written in a paper or printed by symloss.

The ANTLR grammar of ``latex2sympy2_extended`` is the engine, wrapped in three layers:

1. **Lexing** (:func:`_lex`): spacing (``\,``, ``\quad`` ...), ``\left``/``\right``,
   ``\limits`` and fonts are dropped; ``\mathrm{..}``/``\operatorname{..}`` names, bare
   words (``log``, ``max`` ...), decorated letters (``\hat{y}``) and Greek letters become
   single tokens; anything unknown is refused.
2. **Structure** (:class:`_Reader`): brackets, ``|..|``, ``\frac``, ``\sqrt``, ``e^{..}``,
   function calls, subscripted letters, numbers and ``cases`` are read here and replaced
   by placeholders ``v_{k}``; every group becomes its own small engine input.  The engine
   only sees flat text (placeholders, ``+ - / \cdot ^``, ``\sum`` and bracket-free
   functions such as ``\ln v_{1}``).  That keeps it fast (its cost grows steeply with
   nesting), clear of its quirks (``\log`` in base 10, ``2\frac{1}{2} = 5/2``, ``\gamma``
   as Euler's constant), and it never sees a user-written name.
3. **Rebuilding** (:meth:`_Reader.build`): the engine's output is walked, placeholders are
   replaced by their meaning, and letters subscripted by indices of an enclosing sum
   become :func:`~symloss.symbols.array` elements.

Work is bounded: length, nesting and digit counts are checked before parsing, nesting
of functions is capped (:data:`MAX_CALL_DEPTH`), and the whole call shares a wall-clock
budget (:data:`TIME_BUDGET`), checked as ANTLR reads tokens and between groups, and
run under :func:`symloss._budget.budget` (time and memory).

The module is long because the three layers share the token and placeholder types and
the reader's state (positions for messages, the deadline, the magnitude bounds); split
apart, each would import the others' internals.  Papers' notation (positive parts,
indicators, cases with conditions, sums without limits, ``y^{(i)}``) lives in the reader.

Magnitudes are bounded *before* SymPy sees them (:class:`_Magnitudes`).  SymPy
evaluates exact arithmetic as it builds an expression (``9^{10^{99}}``, but also
``e^{10^{99}\ln 2}``, which it turns into ``2^{10^{99}}``), and later steps put small
rationals in for the symbols (:func:`symloss.identify`, the gradient's sign checks)
or expand sums with literal limits (``\sum_{k=1}^{10^9}``).  Such work is one long C
call that holds the GIL, so no timer can stop it.  Each node is therefore sized from
its arguments before it is built, and the formula is refused with a
:class:`ParseError` at the offending term when

* an exponent that is a number has an absolute value above :data:`MAX_EXPONENT`
  (nested powers multiply: ``(x^{100})^{100}`` has exponent 10^4);
* a number the expression would hold (a literal, a folded product or sum of
  constants, a power of one) has more than :data:`MAX_NUMBER_DIGITS` digits;
* an exact value at sample points (symbols replaced by rationals of 3 digits, the
  index of a sum with literal limits by its largest value) would have more than
  :data:`MAX_EXACT_DIGITS` digits (``2^{10^{99} y_i}``);
* a sum with literal limits would expand to more than
  :data:`symloss._budget.MAX_NODES` nodes.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from dataclasses import dataclass, field

import sympy as sp
from antlr4 import CommonTokenStream, InputStream
from antlr4.error.ErrorListener import ErrorListener
from latex2sympy2_extended.antlr_parser import PSLexer, PSParser
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, _Latex2Sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from symloss import symbols as _symbols
from symloss.errors import BudgetExceeded, ParseError
from symloss.symbolic import budget as _budget

# fmt: off
__all__ = ["MAX_CALL_DEPTH", "MAX_DEPTH", "MAX_DIGITS", "MAX_EXACT_DIGITS", "MAX_EXPONENT",
           "MAX_LENGTH", "MAX_NUMBER_DIGITS", "RESERVED_NAMES", "TIME_BUDGET", "ParsedLatex",
           "parse_latex"]

MAX_LENGTH = 10_000  #: longest accepted input, in characters
MAX_DEPTH = 100  #: deepest accepted nesting of brackets, braces and ``|..|``
MAX_DIGITS = 100  #: longest accepted number literal, in digits
#: deepest accepted nesting of functions, ``|..|``, roots and bracketed sums; SymPy's own
#: evaluation of nested ``Abs``/``Max`` grows polynomially with it
MAX_CALL_DEPTH = 32
TIME_BUDGET = 5.0  #: wall-clock seconds allowed per call of :func:`parse_latex`
#: largest absolute value of an exponent that is a number (``x^{1000}``, ``2^{-1000}``)
MAX_EXPONENT = 1_000
#: most digits of a number the parsed expression may hold; far below the 4,300 digits
#: past which Python refuses to print an int, and float64 ends at 309 anyway
MAX_NUMBER_DIGITS = 1_000
#: most digits of an exact value at sample points (symbols replaced by small rationals):
#: keeps each exact operation of identify() and of the sign checks to milliseconds
MAX_EXACT_DIGITS = 100_000

#: names that a multi-letter array (``\mathrm{var}_{i}``, passed by keyword at call time)
#: cannot have: the keywords of Loss.__call__, grad, hess and value_and_grad
RESERVED_NAMES = frozenset({"pred", "target", "weight", "out", "self"})

_GREEK = set(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu"
    " xi pi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Pi Sigma"
    " Phi Psi Omega ell infty".split()
)
_CONSTANTS = {"e": sp.E, "pi": sp.pi, "infty": sp.oo}
_FUNCS = {"log": sp.log, "ln": sp.log, "exp": sp.exp, "cosh": sp.cosh, "sinh": sp.sinh,
          "tanh": sp.tanh, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "max": sp.Max,
          "min": sp.Min, "sigmoid": _symbols.sigmoid, "softmax": _symbols.softmax,
          "ReLU": "relu", "relu": "relu", "softplus": "softplus", "sign": sp.sign,
          "sgn": sp.sign, "indicator": "indicator"}
#: functions written by name that are SymPy expressions of their argument
_EXPANDED = {"relu": lambda x: sp.Max(0, x), "softplus": lambda x: sp.log(1 + sp.exp(x))}
_DROP = {r"\,", r"\;", r"\:", r"\!", "\\ ", "~", r"\quad", r"\qquad", r"\limits", r"\nolimits",
         r"\displaystyle", r"\textstyle", r"\enspace", r"\thinspace"}
_SIZERS = {r"\left": "lbar", r"\right": "rbar", r"\bigl": "lbar", r"\bigr": "rbar",
           r"\Bigl": "lbar", r"\Bigr": "rbar", r"\biggl": "lbar", r"\biggr": "rbar",
           r"\big": "|", r"\Big": "|", r"\bigg": "|", r"\Bigg": "|"}
_NAME_FONTS = {r"\mathrm", r"\operatorname", r"\text", r"\textrm", r"\mathit", r"\textit"}
_LETTER_FONTS = {r"\mathcal", r"\mathbf", r"\boldsymbol", r"\bm", r"\mathbb", r"\mathsf"}
_DECORATIONS = {r"\hat", r"\widehat", r"\tilde", r"\widetilde", r"\bar", r"\overline"}
_RELATIONS = {"<": "<", ">": ">", r"\lt": "<", r"\gt": ">", r"\le": r"\leq", r"\leq": r"\leq",
              r"\leqslant": r"\leq", r"\ge": r"\geq", r"\geq": r"\geq", r"\geqslant": r"\geq"}
_SYMBOLS = {r"\frac": r"\frac", r"\dfrac": r"\frac", r"\tfrac": r"\frac", r"\sqrt": r"\sqrt",
            r"\sum": r"\sum", r"\substack": r"\substack", r"\cdot": "*", r"\times": "*",
            r"\lvert": "lbar", r"\rvert": "rbar", r"\vert": "|", r"\|": "norm",
            r"\Vert": "norm", r"\lVert": "lnorm", r"\rVert": "rnorm", r"\{": "(", r"\}": ")",
            "\\\\": "\\\\", **{r: r for r in _RELATIONS}, **{c: c for c in "+-*/=,^_&()[]{}|"}}
_ALLOWED = (sp.Add, sp.Mul, sp.Pow, sp.log, sp.exp, sp.cosh, sp.sinh, sp.tanh, sp.sin, sp.cos,
            sp.tan, sp.core.relational.Relational, sp.And)  # what the engine may give back
# fmt: on
_CLOSING = {"(": ")", "[": "]", "{": "}"}
#: capital Greek letters that papers use for special functions (gamma, normal CDF, digamma)
_FUNCTION_LETTERS = frozenset({"Gamma", "Phi", "Psi"})
_TOKEN_RE = re.compile(r"\\[A-Za-z]+|\\.|[A-Za-z]+|[0-9]+(?:\.[0-9]+)?|\.[0-9]+|\s+|.", re.S | re.A)
_PLACEHOLDER_RE = re.compile(r"v_\{?(\d+)\}?")
_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("_DEADLINE", default=0.0)


@dataclass(frozen=True)
class ParsedLatex:
    """The result of :func:`parse_latex`: an optional left-hand side name and the loss."""

    name: str | None
    expr: sp.Expr


@dataclass
class _Tok:
    kind: str  # "letter" (y, delta, \hat{y}), "word" (log, softmax, MSE), "num" or "sym"
    text: str  # the normalised spelling
    pos: int  # where the original spelling starts and ends
    end: int


def parse_latex(text, *, pred="y", target="t", logits=None, log_base=None) -> ParsedLatex:
    r"""Parse a LaTeX loss formula into a SymPy expression.

    Parameters
    ----------
    text : str
        ``E = ...``, ``\mathcal{L} = ...``, ``L(y,t) = ...`` or a bare right-hand side.
    pred, target, logits : str, optional
        How the prediction, target and logits arrays are written in *text* (a letter or
        a decorated letter such as ``\hat{y}``); they become the arrays ``y``, ``t`` and
        ``z`` of :mod:`symloss.symbols`.  *logits* defaults to ``"z"`` unless *pred* or
        *target* is ``z`` (a user who names the prediction z means it); only names
        given explicitly clash.
    log_base : int or sympy.Expr, optional
        Base of ``\log`` and bare ``log``; ``None`` (the default) is the natural log.
        ``\ln`` is always natural and ``\log_2`` always base 2.

    Returns
    -------
    ParsedLatex
        ``name`` is the left-hand side's name (``None`` for a bare right-hand side) and
        ``expr`` the loss.  Letters subscripted by the indices of enclosing sums are
        array elements; other subscripted letters and parameters are plain symbols.

    Raises
    ------
    ParseError
        For any input this parser does not understand, with the 0-based position of
        the problem in *text*.  No other exception escapes, whatever the input.

    Examples
    --------
    >>> parse_latex(r"E = \frac{1}{2}\sum_{k=1}^{n}{(y_k-t_k)^2}").expr
    Sum((-t[k] + y[k])**2, (k, 1, n))/2
    """
    if not isinstance(text, str):
        raise ParseError("", 0, "the formula must be a string")
    if len(text) > MAX_LENGTH:
        raise ParseError(text, MAX_LENGTH, f"formula longer than {MAX_LENGTH} characters")
    token = _DEADLINE.set(time.monotonic() + TIME_BUDGET)
    try:
        # The parser's own deadline is checked between groups; the budget also stops
        # one long SymPy call, and bounds memory.
        with _budget.budget(TIME_BUDGET + 1.0, "reading the formula"):
            return _parse(text, pred, target, logits, log_base)
    except ParseError:
        raise
    except RecursionError:
        raise ParseError(text, 0, "formula nested too deeply") from None
    except BudgetExceeded as exc:
        raise ParseError(text, 0, str(exc)) from None
    except Exception as exc:  # a bug of ours: still never escape as another type
        raise ParseError(text, 0, f"internal error while parsing: {type(exc).__name__}") from exc
    finally:
        _DEADLINE.reset(token)


def _parse(text, pred, target, logits, log_base) -> ParsedLatex:
    depth = 0
    for match in re.finditer(r"\\[{}]|[{}()\[\]]", text):
        depth += 1 if match.group()[-1] in "{([" else -1
        if depth > MAX_DEPTH:
            raise ParseError(text, match.start(), f"nested deeper than {MAX_DEPTH} levels")
    names = {}
    options = [(pred, "y"), (target, "t")]
    if logits is not None:
        options.append((logits, "z"))
    for option, canonical in options:
        try:
            toks = _lex(option) if isinstance(option, str) else []
        except ParseError:
            toks = []
        if len(toks) != 1 or toks[0].kind != "letter" or toks[0].text in names:
            raise ParseError(text, 0, f"invalid or repeated array name {option!r}")
        names[toks[0].text] = canonical
    if logits is None and "z" not in names:  # the default name of the logits
        names["z"] = "z"
    if isinstance(log_base, int) and not isinstance(log_base, bool):
        log_base = sp.Integer(log_base)
    elif log_base is not None and not isinstance(log_base, sp.Expr):
        raise ParseError(text, 0, "log_base must be None, an int or a SymPy number")
    toks = _lex(text)
    if not toks:
        raise ParseError(text, 0, "empty formula")
    depth, equals = 0, []
    for k, tok in enumerate(toks):
        depth += (tok.text in _CLOSING) - (tok.text in _CLOSING.values())
        depth += (tok.text == r"\begin{cases}") - (tok.text == r"\end{cases}")
        if tok.text == "=" and depth == 0:
            equals.append(k)
    if len(equals) > 1:
        raise ParseError(text, toks[equals[1]].pos, "more than one '=' in the formula")
    name = _lhs_name(text, toks[: equals[0]]) if equals else None
    toks = toks[equals[0] + 1 :] if equals else toks
    if not toks:
        raise ParseError(text, len(text), "nothing after '='")
    reader = _Reader(text, toks, names, log_base)
    try:
        out = reader.read()
    except RecursionError:
        reader.fail("formula nested too deeply")
    expr = reader.build(out, frozenset())
    if not isinstance(expr, sp.Expr) or isinstance(expr, sp.Tuple):
        raise ParseError(text, toks[0].pos, "the formula is not a single expression")
    if expr.has(sp.nan, sp.zoo):
        raise ParseError(text, toks[0].pos, "the formula divides by zero or is undefined")
    return ParsedLatex(name, expr)


def _lex(text: str) -> list[_Tok]:
    """Split *text* into normalised tokens (see the module docstring)."""
    raw = [(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
    raw = [r for r in raw if not r[0].isspace() and r[0] not in _DROP]
    out: list[_Tok] = []

    def fail(reason, at):
        raise ParseError(text, raw[at][1] if at < len(raw) else len(text), reason)

    def argument(k):  # "{abc}", "{\alpha}" or, after a decoration, "y": (word, next index)
        cmd, stop = raw[k - 1][0], k
        if k < len(raw) and raw[k][0] != "{" and cmd in _DECORATIONS:
            word = raw[k][0]
        else:
            stop = k + 1
            while stop < len(raw) and raw[stop][0] != "}":
                stop += 1
            if k >= len(raw) or raw[k][0] != "{" or stop >= len(raw):
                fail(f"{cmd} needs an argument in braces", k)
            word = "".join(r[0] for r in raw[k + 1 : stop])
            if cmd in (r"\text", r"\textrm", r"\mathrm"):  # \text{otherwise.}, \text{if }
                word = word.rstrip(".,;:")
        if not re.fullmatch(r"\\?[A-Za-z]+", word):
            fail(f"unsupported argument of {cmd}", k)
        return word, stop + 1

    k = 0
    while k < len(raw):
        t, pos, end = raw[k]
        k += 1
        if t in _SIZERS:
            delim = raw[k][0] if k < len(raw) else ""
            if delim in ("|", r"\vert", r"\lvert", r"\rvert"):
                out.append(_Tok("sym", _SIZERS[t], pos, raw[k][2]))
            elif delim in (r"\|", r"\Vert", r"\lVert", r"\rVert"):  # \left\| v \right\|
                kind = {"lbar": "lnorm", "rbar": "rnorm"}.get(_SIZERS[t], "norm")
                out.append(_Tok("sym", kind, pos, raw[k][2]))
            elif delim in ("(", ")", "[", "]", r"\{", r"\}"):
                out.append(_Tok("sym", _SYMBOLS[delim], pos, raw[k][2]))
            elif delim != "." or t not in (r"\left", r"\right"):
                fail(f"unsupported delimiter after {t}", k)
            k += 1
        elif (
            t in (r"\mathbb", r"\mathbf", r"\mathds", r"\mathbbm", r"\boldsymbol")
            and k + 2 < len(raw)
            and raw[k][0] == "{"
            and raw[k + 1][0] in ("1", "I")
            and raw[k + 2][0] == "}"
            and (raw[k + 1][0] == "1" or t == r"\mathbb")
        ):
            out.append(_Tok("word", "indicator", pos, raw[k + 2][2]))
            k += 3
        elif t in _NAME_FONTS or t in _LETTER_FONTS or t in _DECORATIONS:
            word, k = argument(k)
            greek = word[0] == "\\" and word[1:] in _GREEK
            letter = word[1:] if greek else word if len(word) == 1 else None
            if t in _DECORATIONS and letter:
                out.append(_Tok("letter", f"{t}{{{letter}}}", pos, raw[k - 1][2]))
            elif letter:
                out.append(_Tok("letter", letter, pos, raw[k - 1][2]))
            elif t in _NAME_FONTS and word[0] != "\\":
                out.append(_Tok("word", word, pos, raw[k - 1][2]))
            else:
                fail(f"{t} must hold a single letter", k - 1)
        elif t in (r"\begin", r"\end"):
            word, k = argument(k)
            if word != "cases":
                fail(f"unsupported environment {word!r}", k - 1)
            out.append(_Tok("sym", f"{t}{{cases}}", pos, raw[k - 1][2]))
        elif t.isascii() and t.isalpha():
            if t in _FUNCS:  # bare log, max, softmax ...
                out.append(_Tok("word", t, pos, end))
            else:  # "ty" is t times y
                out.extend(_Tok("letter", c, pos + n, pos + n + 1) for n, c in enumerate(t))
        elif t.isascii() and (t[0].isdigit() or t[0] == "." and len(t) > 1):
            if sum(c.isdigit() for c in t) > MAX_DIGITS:
                fail(f"number longer than {MAX_DIGITS} digits", k - 1)
            out.append(_Tok("num", t, pos, end))
        elif t[1:] in _GREEK or t[1:] in _FUNCS:
            out.append(_Tok("letter" if t[1:] in _GREEK else "word", t[1:], pos, end))
        elif t in _SYMBOLS:
            out.append(_Tok("sym", _SYMBOLS[t], pos, end))
        elif t in (".", ";", ":"):  # punctuation, kept only where a case or formula ends
            out.append(_Tok("sym", t, pos, end))
        elif re.fullmatch(r"\\[A-Za-z]+", t):
            fail(f"unknown function {t}", k - 1)
        else:
            fail(f"unexpected {t!r}", k - 1)
    if out and out[-1].text in (".", ","):  # a sentence's full stop after the formula
        out.pop()
    ends = ("\\\\", r"\end{cases}", "&")
    for k in range(len(out) - 2, -1, -1):  # "x, & if ...", "... = 1, \\", "otherwise. \end"
        if out[k].text in (".", ",", ";", ":") and out[k + 1].text in ends:
            del out[k]
    for tok in out:
        if tok.kind == "sym" and tok.text in (".", ";", ":"):
            raise ParseError(text, tok.pos, f"unexpected {tok.text!r}")
    for k in range(len(out) - 3, -1, -1):  # SymPy prints y[i] as {y}_{i}
        if out[k].text == "{" and out[k + 1].kind == "letter" and out[k + 2].text == "}":
            if k + 3 < len(out) and out[k + 3].text == "_":
                out[k : k + 3] = [_Tok("letter", out[k + 1].text, out[k].pos, out[k + 2].end)]
    return out


def _lhs_name(text: str, toks: list[_Tok]) -> str:
    """The name of ``E``, ``MSE``, ``\\mathcal{L}``, ``L_{\\text{MSE}}``, ``L_\\delta(y, t)``,
    ``D_{\\mathrm{KL}}(t \\| y)``, ``\\ell(\\hat y, y)`` or ``J(\\theta)``: a name, an
    optional subscript, optional arguments in brackets; only the name is kept."""
    if toks and toks[0].kind in ("letter", "word"):
        name, k = toks[0].text, 1
        while k < len(toks) and toks[k].kind == "letter" and len(toks[k].text) == 1:
            name, k = name + toks[k].text, k + 1  # FL, MSE
        if k < len(toks) and toks[k].text == "_":
            k += 1
            if k < len(toks) and toks[k].text == "{":
                depth, first = 0, k
                while k < len(toks):
                    depth += (toks[k].text == "{") - (toks[k].text == "}")
                    k += 1
                    if depth == 0:
                        break
                inner = [t.text for t in toks[first + 1 : k - 1]]
            else:
                inner = [toks[k].text] if k < len(toks) else []
                k += 1
            if inner and all(re.fullmatch(r"[A-Za-z0-9]+", w) for w in inner):
                name += "_" + "".join(inner)
        if k < len(toks) and toks[k].text in ("(", "[") and toks[-1].text in (")", "]"):
            k = len(toks)
        if k == len(toks):
            return name
    at = toks[0].pos if toks else 0
    raise ParseError(text, at, "the left-hand side must be a name such as E, L or L(y, t)")


@dataclass
class _Out:
    """Flat engine text being assembled, its placeholders, and where each part came from."""

    start: int
    end: int = 0
    parts: list = field(default_factory=list)  # (engine text, original position)
    slots: list = field(default_factory=list)  # what placeholder v_{k} stands for
    operand: bool = False  # does the text so far end with an operand?

    def slot(self, entry) -> str:
        self.slots.append(entry)
        return f"v_{{{len(self.slots) - 1}}}"

    def emit(self, piece: str, pos: int, operand: bool = True) -> None:
        self.parts.append((piece, pos))
        self.operand = operand

    def single(self):
        """The slot if the text is one placeholder, which needs no engine run."""
        return self.slots[0] if [p for p, _ in self.parts] == ["v_{0}"] else None

    def position_of(self, k: int) -> int:
        """Where the text that placeholder ``v_{k}`` stands for starts."""
        tag = f"v_{{{k}}}"
        return next((pos for piece, pos in self.parts if tag in piece), self.start)

    def locate(self, column: int) -> int:
        for piece, pos in self.parts:
            if column <= len(piece):
                return pos
            column -= len(piece) + 1
        return self.end


class _Reader:
    """Reads tokens into :class:`_Out` trees, then rebuilds SymPy expressions from them."""

    def __init__(self, text, toks, names, log_base):
        self.text, self.toks, self.names, self.log_base = text, toks, names, log_base
        self.i, self.depth = 0, 0
        self.sizes = _Magnitudes()

    def peek(self, ahead=0):
        k = self.i + ahead
        return self.toks[k].text if k < len(self.toks) else None

    def take(self, what=None, opener=None) -> _Tok:
        if what is not None and self.peek() != what:
            if self.peek() is None and opener is not None:
                self.fail(f"unclosed {self.text[opener.pos : opener.end]!r}", opener.pos)
            self.fail(f"expected {what!r} here")
        if self.peek() is None:
            self.fail("the formula ends too early")
        self.i += 1
        return self.toks[self.i - 1]

    def fail(self, reason: str, pos: int | None = None):
        if pos is None:
            pos = self.toks[self.i].pos if self.i < len(self.toks) else len(self.text)
        raise ParseError(self.text, pos, reason)

    # -- reading --------------------------------------------------------------------------
    def read(self) -> _Out:
        self.depth = -1  # the top level is not a nesting level
        out = self.expr(set())
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            self.fail(f"unmatched {self.text[tok.pos : tok.end]!r}")
        self.depth = 0
        return out

    def expr(self, stops, cond=False, in_bars=False) -> _Out:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH} levels")
        out = _Out(self.toks[self.i].pos if self.i < len(self.toks) else len(self.text))
        while self.peek() is not None and self.peek() not in stops:
            if self.peek() in ("|", "rbar") and in_bars and out.operand:
                break
            self.item(out, cond)
        if not out.parts:
            self.fail("expected an expression here")
        out.end = self.toks[self.i].pos if self.i < len(self.toks) else len(self.text)
        self.depth -= 1
        return out

    def item(self, out: _Out, cond: bool) -> None:
        tok = self.take()
        t, pos = tok.text, tok.pos
        if tok.kind == "num":
            out.emit(out.slot(("num", sp.Rational(t))), pos)
        elif tok.kind == "letter":
            self.identifier(tok, out)
        elif tok.kind == "word":
            self.function(tok, out, cond)
        elif t == "[" and self.peek() == "[":  # Iverson's [\![ cond ]\!]
            self.take()
            inner = self.expr({"]"}, cond=True)
            self.take("]", tok)
            self.take("]", tok)
            out.emit(out.slot(("iverson", inner)), pos)
        elif t in _CLOSING:
            inner = self.group(tok)
            if self.peek() == "_" and (
                self.peek(1) == "+" or self.peek(1) == "{" and self.peek(2) == "+"
            ):  # the positive part [x]_+ or (x)_+, max(0, x)
                self.take()
                if self.take().text == "{":
                    self.take("+")
                    self.take("}")
                out.emit(out.slot(("positive", inner)), pos)
            else:
                out.emit(out.slot(("group", inner)), pos)
        elif t in ("lnorm", "norm"):  # \lVert v \rVert_p, \|v\|
            inner = self.expr({"rnorm"} if t == "lnorm" else {"norm"})
            if self.peek() not in ("rnorm", "norm"):
                self.fail("unclosed norm", pos)
            self.take()
            order = None
            if self.peek() == "_":
                self.take()
                braced = self.peek() == "{" and self.take()
                order = (self.take().text,)
                if braced:
                    self.take("}")
                if order not in (("1",), ("2",), ("infty",)):
                    self.fail("a norm's subscript must be 1, 2 or \\infty", pos)
            out.emit(out.slot(("norm", inner, order)), pos)
        elif t in ("lbar", "|"):
            inner = self.expr({"rbar"} if t == "lbar" else set(), in_bars=True)
            if self.peek() not in ("|", "rbar"):
                self.fail("unclosed '|'", pos)
            self.take()
            out.emit(out.slot(("abs", inner)), pos)
        elif t in ("+", "-"):
            minus = t == "-"
            while self.peek() in ("+", "-"):  # runs of signs are folded: "--x" is "x"
                minus ^= self.take().text == "-"
            if minus or out.operand:
                out.emit("-" if minus else "+", pos, operand=False)
        elif t in ("*", "/", "^") and not out.operand:
            self.fail(f"{self.text[pos : tok.end]!r} needs something on its left", pos)
        elif t in ("*", "/"):
            out.emit(r"\cdot" if t == "*" else "/", pos, operand=False)
        elif t == "^":
            out.emit(f"^{{{out.slot(('group', self.argument()))}}}", pos)
        elif t == r"\frac":
            out.emit(out.slot(("frac", self.argument(), self.argument())), pos)
        elif t == r"\sqrt":
            index = self.group(self.take()) if self.peek() == "[" else None
            out.emit(out.slot(("root", self.argument(), index)), pos)
        elif t == r"\sum":
            self.sum(tok, out)
        elif t == r"\begin{cases}":
            out.emit(out.slot(("cases", self.cases(tok))), pos)
        elif t in _RELATIONS and cond:
            out.emit(_RELATIONS[t], pos, operand=False)
        elif t == "=" and cond:  # t_i = 1 in a case's condition
            out.emit("=", pos, operand=False)
        else:
            self.fail(f"unexpected {self.text[pos : tok.end]!r}", pos)

    def group(self, opener: _Tok) -> _Out:
        inner = self.expr({_CLOSING[opener.text], ","})
        if self.peek() == ",":
            self.fail("unexpected ','")
        self.take(_CLOSING[opener.text], opener)
        return inner

    def argument(self) -> _Out:
        """The argument of ``\\frac``, ``\\sqrt`` or ``^``: ``{...}`` or one token."""
        if self.peek() == "{":
            return self.group(self.take())
        tok = self.single_token()
        if tok.kind not in ("num", "letter"):
            self.fail("put this argument in braces", tok.pos)
        out = _Out(tok.pos, tok.end)
        entry = ("num", sp.Rational(tok.text)) if tok.kind == "num" else ("id", tok.text, None)
        out.emit(out.slot(entry), tok.pos)
        return out

    def single_token(self) -> _Tok:
        """Take one token; of a number only its first digit, as TeX does for ``x^12``."""
        if self.peek() is None:
            self.fail("an argument is missing here")
        tok = self.take()
        if tok.kind == "num" and len(tok.text) > 1 and tok.text.isdigit():
            rest = _Tok("num", tok.text[1:], tok.pos + 1, tok.end)
            tok = _Tok("num", tok.text[0], tok.pos, tok.pos + 1)
            self.toks[self.i - 1 : self.i] = [tok, rest]
        return tok

    def subscript(self) -> tuple[str, ...]:
        """The index letters or digits of ``_i``, ``_{ij}``, ``_{i,j}`` or ``_{10}``."""
        if self.peek() != "{":
            tok = self.single_token()
            if not (tok.kind == "letter" and len(tok.text) == 1 or tok.text.isdigit()):
                self.fail("unsupported subscript", tok.pos)
            return (tok.text,)
        opener, subs = self.take(), []
        while self.peek() != "}":
            tok = self.take() if self.peek() is not None else self.fail("unclosed '{'", opener.pos)
            if tok.kind == "letter" and self.peek() == "_":  # z_{i,t_i}: a gather
                self.fail(
                    f"an index chosen by a label ({tok.text}_...) picks one element per sample"
                    " (a gather), which needs integer labels: write the loss with one-hot"
                    " targets, as in -\\sum_j t_{ij}\\log\\mathrm{softmax}(z)_{ij}",
                    tok.pos,
                )
            if tok.kind == "word" or tok.kind == "letter" and len(tok.text) == 1:
                subs.extend(tok.text)
            elif tok.text.isdigit():
                subs.append(tok.text)
            elif tok.text != ",":
                self.fail("unsupported subscript", tok.pos)
        self.take()
        return tuple(subs) if subs else self.fail("empty subscript", opener.pos)

    def identifier(self, tok: _Tok, out: _Out) -> None:
        name, subs, power = tok.text, None, None
        if self.peek() == "_":
            self.take()
            subs = self.subscript()
        if name == "e" and subs is None and self.peek() == "^":
            self.take()
            return out.emit(out.slot(("call", "exp", [self.argument()], None, None)), tok.pos)
        if name in _FUNCTION_LETTERS and subs is None and self.peek() in ("(", "["):
            # \Gamma(x), \Phi(x): special functions, not a hyperparameter times (x)
            self.fail(f"unsupported function {self.text[tok.pos : tok.end]}", tok.pos)
        if name == "sigma" and subs is None and self.peek() in _CLOSING:
            args = self.call_args(1, r"\sigma")
            return out.emit(out.slot(("call", "sigmoid", args, None, None)), tok.pos)
        if (
            self.peek() == "^"
            and subs is None
            and [self.peek(q) for q in (1, 2, 4, 5)] == ["{", "(", ")", "}"]
            and self.toks[self.i + 3].kind == "letter"
            and len(self.peek(3)) == 1
        ):  # y^{(i)}: course notation for sample i
            subs = (self.peek(3),)
            self.i += 6
        if self.peek() == "^" and subs is None:
            self.take()
            power = self.argument()
            if self.peek() == "_":  # y^2_i
                self.take()
                subs = self.subscript()
        out.emit(out.slot(("id", name, subs)), tok.pos)
        if power is not None:
            out.emit(f"^{{{out.slot(('group', power))}}}", tok.pos)

    def function(self, tok: _Tok, out: _Out, cond: bool) -> None:
        fname, src = tok.text, self.text[tok.pos : tok.end]
        if cond and fname in ("if", "for", "when", "where"):
            return
        if fname not in _FUNCS and self.peek() == "_" and fname.isalpha():
            # \mathrm{var}_{i}: a multi-letter array (an extra input such as a variance)
            if fname in RESERVED_NAMES:  # L(y, t, weight=...) would be the sample weight
                names = ", ".join(sorted(RESERVED_NAMES))
                self.fail(
                    f"{src} cannot name an input: {names} are keywords of the loss's call", tok.pos
                )
            self.take()
            return out.emit(out.slot(("id", fname, self.subscript())), tok.pos)
        if fname not in _FUNCS:
            self.fail(f"unknown function {src}", tok.pos)
        if fname == "softmax":  # softmax(z)_{ij} or softmax(z, i, j)
            args = [a.single() for a in self.call_args(0, src)] if self.peek() in _CLOSING else []
            if len(args) == 1 and self.peek() == "_" and self.take():
                args += [("id", s, None) for s in self.subscript()]
            if len(args) != 3 or any(a is None or a[0] != "id" or a[2] for a in args):
                self.fail("write softmax(z)_{ij}", tok.pos)
            return out.emit(out.slot(("softmax", args[0][1], (args[1][1], args[2][1]))), tok.pos)
        base = power = None
        if fname == "max" and self.peek() == "_":  # \max_{j}(f): a maximum over one index
            self.take()
            letters = self.subscript()
            if len(letters) != 1 or not letters[0].isalpha():
                self.fail(r"\max_{...} takes one index letter", tok.pos)
            (arg,) = (
                self.call_args(1, src)
                if self.peek() in _CLOSING
                else self.fail(
                    rf"put the argument of {src}_{{{letters[0]}}} in parentheses", tok.pos
                )
            )
            return out.emit(out.slot(("rowmax", letters[0], arg)), tok.pos)
        if self.peek() == "_":
            if fname != "log":
                self.fail(f"{src} takes no subscript")
            self.take()
            base = self.argument()
        if self.peek() == "^":  # \cosh^2(x)
            self.take()
            power = self.argument()
        if self.peek() in _CLOSING:
            count = 2 if fname in ("max", "min") else 1
            args = self.call_args(count, src, cond=fname == "indicator")
            return out.emit(out.slot(("call", fname, args, base, power)), tok.pos)
        if fname in ("max", "min", "sigmoid") or power is not None:
            self.fail(f"put the argument of {src} in parentheses")
        if fname == "log" and (base is not None or self.log_base is not None):
            entry = ("group", base) if base is not None else ("num", self.log_base)
            return out.emit(rf"\log_{{{out.slot(entry)}}}", tok.pos, operand=False)
        out.emit(r"\ln" if fname in ("log", "ln") else "\\" + fname, tok.pos, operand=False)

    def call_args(self, count: int, name: str, cond: bool = False) -> list[_Out]:
        """Arguments in brackets: exactly one if *count* is 1, at least two if 2, any if 0."""
        opener = self.take()
        if count != 1 and opener.text == "{" and self.peek() == "(":  # \max{\left(a, b\right)}
            args = self.call_args(count, name)
            self.take("}", opener)
            return args
        if cond:
            args = [self.expr({_CLOSING[opener.text]}, cond=True)]
            self.take(_CLOSING[opener.text], opener)
            return args
        args = [self.expr({_CLOSING[opener.text], ","})]
        while self.peek() == "," and self.take():
            args.append(self.expr({_CLOSING[opener.text], ","}))
        self.take(_CLOSING[opener.text], opener)
        if count and (count == 1) != (len(args) == 1):
            self.fail(f"{name} takes {'one argument' if count == 1 else 'two or more'}", opener.pos)
        return args

    def sum(self, tok: _Tok, out: _Out) -> None:
        if self.peek() == "_" and self.peek(1) == "{" and self.peek(2) == r"\substack":
            return self.substack(tok, out)
        index = lower = upper = None
        for _ in range(2):  # _{i=1}^{n} or ^{n}_{i=1}; _i and _{i} alone run over all
            if self.peek() == "_" and index is None:
                self.take()
                opener = self.take() if self.peek() == "{" else None
                index = self.take()
                if index.kind != "letter" or len(index.text) != 1:
                    self.fail("the summation index must be a single letter", index.pos)
                if opener is None:
                    continue
                if self.peek() == "=":
                    self.take("=")
                    lower = self.expr({"}"})
                self.take("}", opener)
            elif self.peek() == "^" and upper is None:
                self.take()
                upper = self.argument()
        if index is None:
            self.fail(r"\sum needs an index, as in \sum_{i=1}^{n} or \sum_i", tok.pos)
        i = out.slot(("index", index.text))
        lo = out.slot(("group", lower) if lower is not None else ("num", sp.Integer(1)))
        # No upper limit: all samples for the outermost sum, all classes inside it.
        hi = out.slot(("group", upper) if upper is not None else ("size",))
        out.emit(rf"\sum_{{{i}={lo}}}^{{{hi}}}", tok.pos, operand=False)

    def substack(self, tok: _Tok, out: _Out) -> None:
        r"""SymPy's ``\sum_{\substack{1 \leq j \leq m\\1 \leq i \leq n}}``, inner index first."""
        self.take()
        brace, _, opener = self.take(), self.take(), self.take("{")
        sums = []
        while not sums or self.peek() == "\\\\" and self.take():
            leq = {r"\le", r"\leq"}
            lower = self.expr(leq)
            self.take()
            index = self.take()
            if index.kind != "letter" or len(index.text) != 1 or self.peek() not in leq:
                self.fail(r"write \substack limits as 1 \leq i \leq n", index.pos)
            self.take()
            upper = self.expr({"\\\\", "}"})
            i, lo = out.slot(("index", index.text)), out.slot(("group", lower))
            sums.append(rf"\sum_{{{i}={lo}}}^{{{out.slot(('group', upper))}}}")
        self.take("}", opener)
        self.take("}", brace)
        out.emit(" ".join(reversed(sums)), tok.pos, operand=False)

    def cases(self, opener: _Tok) -> list:
        rows, stops = [], {"\\\\", r"\end{cases}"}
        while True:
            value, cond = self.expr({"&", ","} | stops), None
            if self.peek() == "," and self.peek(1) == "&":
                self.take()
            if self.peek() == "&" and self.take():
                while self.peek() in (",", "if", "for", "when", "where"):
                    self.take()
                if self.peek() in ("otherwise", "else"):
                    self.take()
                else:
                    cond = self.expr(stops, cond=True)
            rows.append((value, cond))
            if self.peek() == "\\\\" and self.take() and self.peek() != r"\end{cases}":
                continue
            self.take(r"\end{cases}", opener)
            return rows

    # -- rebuilding -----------------------------------------------------------------------
    def build(self, out: _Out, bound: frozenset) -> sp.Basic:
        """The SymPy value of *out*, inside sums over the index letters in *bound*."""
        single = out.single()
        heavy = single is None or single[0] in ("abs", "call", "cases", "root")
        self.depth += heavy
        try:
            if self.depth > MAX_CALL_DEPTH:
                self.fail("functions nested too deeply", out.start)
            if time.monotonic() > _DEADLINE.get():
                self.fail("formula too long to read in time", out.start)
            if single is not None:
                return self.resolve(out, single, bound, out.position_of(0))
            return self.walk(_run_engine(" ".join(p for p, _ in out.parts)), out, bound)
        except _EngineError as exc:
            if exc.column is None:
                self.fail("formula too long to parse in time", out.start)
            self.fail("malformed formula here", out.locate(exc.column))
        except (ParseError, RecursionError, BudgetExceeded):
            raise
        except (ArithmeticError, TypeError, ValueError):  # SymPy refusing, e.g. log(x, 0)
            self.fail("invalid expression", out.start)
        except Exception:  # the engine's own errors are plain Exceptions
            self.fail("malformed formula here", out.start)
        finally:
            self.depth -= heavy

    def walk(self, e, out: _Out, bound: frozenset) -> sp.Basic:
        """Rebuild the engine's result *e*, putting the placeholders' meanings in."""
        if isinstance(e, sp.Symbol) and _PLACEHOLDER_RE.fullmatch(e.name):
            k = int(_PLACEHOLDER_RE.fullmatch(e.name).group(1))
            if k < len(out.slots):
                return self.resolve(out, out.slots[k], bound, out.position_of(k))
        if isinstance(e, sp.Basic) and (e.is_Number or e in (sp.E, sp.pi)):
            return e
        pos = self.where(e, out)
        if isinstance(e, sp.Sum):  # nested sums arrive as one Sum, innermost limit first
            names = [str(self.walk(v, out, bound)) for v, *_ in e.limits]
            result = self.walk(e.function, out, bound | set(names))
            for k, (v, lo, hi) in enumerate(e.limits):
                scope = bound | set(names[k + 1 :])
                lo, hi = self.walk(lo, out, scope), self.walk(hi, out, scope)
                result = sp.Sum(result, (_symbols.index(names[k]), lo, hi))
                self.checked(result, self.where(v, out))  # at its \sum
            return result
        if not isinstance(e, _ALLOWED):
            self.fail("unsupported construct", out.start)
        args = [self.walk(a, out, bound) for a in e.args]
        if isinstance(e, sp.log):  # the engine's unevaluated log(x, base)
            return self.log(args[0], args[1] if len(args) > 1 else None, out.start)
        return self.power(*args, pos) if isinstance(e, sp.Pow) else self.make(e.func, args, pos)

    def where(self, e: sp.Basic, out: _Out) -> int:
        """Where the engine's node *e* starts in the text: at its first placeholder."""
        for node in sp.preorder_traversal(e):
            match = isinstance(node, sp.Symbol) and _PLACEHOLDER_RE.fullmatch(node.name)
            if match:
                return out.position_of(int(match.group(1)))
        return out.start

    def make(self, func, args, pos: int) -> sp.Basic:
        """``func(*args)``, sized from *args* first: SymPy evaluates as it builds, and an
        exact power or product of huge numbers cannot be interrupted once started."""
        try:
            self.sizes.combine(func, args)
        except _TooLarge as exc:
            self.fail(exc.reason, pos)
        return func(*args)

    def checked(self, node: sp.Basic, pos: int) -> sp.Basic:
        """*node*, built already (no evaluation to fear), sized: sums and their limits."""
        try:
            self.sizes.size(node)
        except _TooLarge as exc:
            self.fail(exc.reason, pos)
        return node

    def log(self, x, base, pos):
        if x.is_zero or base is not None and (base.is_zero or base == 1):
            self.fail("logarithm of zero or in base 0 or 1", pos)
        return sp.log(x) if base is None else sp.log(x, base)

    def power(self, base, exponent, pos):
        # SymPy raises every number inside the base exactly: 9^{10^6}, but also the 2 of
        # (2 y_i)^{10^6}, the 3 of (3^{1/2} y_i)^{10^6} and exp(10^6 \ln 2) = 2^{10^6}.
        return self.make(sp.Pow, [base, exponent], pos)

    def resolve(self, out: _Out, entry, bound: frozenset, pos: int) -> sp.Basic:
        """The SymPy value of one placeholder, whose text starts at *pos*."""
        kind, build = entry[0], lambda part: self.build(part, bound)
        if kind == "num":
            return entry[1]
        if kind == "group":
            return build(entry[1])
        if kind == "index":
            return _symbols.index(entry[1])
        if kind == "size":  # a sum written without an upper limit
            return _symbols.m if bound else _symbols.n
        if kind == "abs":
            return self.make(sp.Abs, [build(entry[1])], pos)
        if kind == "norm":
            return self.norm(build(entry[1]), entry[2], bound, pos)
        if kind == "positive":
            return self.make(sp.Max, [sp.S.Zero, build(entry[1])], pos)
        if kind == "iverson":
            return self.checked(sp.Piecewise((1, self.condition(entry[1], bound)), (0, True)), pos)
        if kind == "frac":
            numerator, denominator = build(entry[1]), build(entry[2])
            return self.make(
                sp.Mul, [numerator, self.power(denominator, sp.S.NegativeOne, pos)], pos
            )
        if kind == "root":
            degree = sp.Integer(2) if entry[2] is None else build(entry[2])
            return self.power(build(entry[1]), self.power(degree, sp.S.NegativeOne, pos), pos)
        if kind == "id":
            return self.identifier_value(entry[1], entry[2], bound, out.start)
        if kind == "softmax":
            return _symbols.softmax(self.array(entry[1], out.start), *map(_symbols.index, entry[2]))
        if kind == "rowmax":  # the index is bound inside, like a sum's, and runs to m
            body = self.build(entry[2], bound | {entry[1]})
            return self.checked(
                _symbols.rowmax(body, (_symbols.index(entry[1]), 1, _symbols.m)), pos
            )
        if kind == "cases":
            rows = [
                (build(v), True if c is None else self.condition(c, bound)) for v, c in entry[1]
            ]
            return self.checked(sp.Piecewise(*rows), pos)
        _, fname, args, base, power = entry  # a function call
        values = [build(a) for a in args]
        if fname == "log" and (base is not None or self.log_base is not None):
            value = self.log(values[0], build(base) if base else self.log_base, pos)
        elif fname in ("log", "ln"):
            value = self.log(values[0], None, pos)
        elif fname == "indicator":  # 1{cond}, 1[cond], I(cond): 1 where cond holds, else 0
            value = self.checked(sp.Piecewise((1, values[0]), (0, True)), pos)
        elif _FUNCS[fname] in _EXPANDED:
            value = _EXPANDED[_FUNCS[fname]](*values)
            self.checked(value, pos)
        else:
            value = self.make(_FUNCS[fname], values, pos)
        return value if power is None else self.power(value, build(power), pos)

    def norm(self, inner: sp.Basic, order, bound: frozenset, pos: int) -> sp.Basic:
        r"""``\lVert v_i \rVert_p`` of one row: each input array written with the samples'
        indices only (``y_i``) is that sample's row, summed over a new class index."""
        if not bound:
            self.fail(
                "a norm of the whole batch does not split into per-sample terms: write a"
                " sum over the samples of one row's norm, as in"
                " \\frac{1}{n}\\sum_{i=1}^{n}\\lVert y_i - t_i\\rVert_2^2",
                pos,
            )
        inputs = {_symbols.array(v) for v in self.names.values()}
        rows = [e for e in inner.atoms(sp.Indexed) if e.base in inputs and len(e.indices) == 1]
        if not rows:  # a scalar: the norm is its absolute value
            return self.make(sp.Abs, [inner], pos)
        taken = set(bound) | {str(s) for s in inner.free_symbols}
        k = _symbols.fresh_index(taken, "jklpqrsuvw")
        v = inner.xreplace({e: e.base[(*e.indices, k)] for e in rows})
        if order == ("1",):
            return self.checked(sp.Sum(sp.Abs(v), (k, 1, _symbols.m)), pos)
        if order == ("infty",):
            return self.checked(_symbols.rowmax(sp.Abs(v), (k, 1, _symbols.m)), pos)
        return self.checked(sp.sqrt(sp.Sum(v**2, (k, 1, _symbols.m))), pos)

    def condition(self, out: _Out, bound: frozenset) -> sp.Basic:
        """A condition; a chained one (``0 < x < 1``) is the conjunction of its links."""
        relations = set(_RELATIONS.values()) | {"="}
        links = [k for k, (piece, _) in enumerate(out.parts) if piece in relations]
        if len(links) < 2:
            return self.build(out, bound)
        parts = []
        for k in range(len(links)):
            lo = links[k - 1] + 1 if k else 0
            hi = links[k + 1] if k + 1 < len(links) else len(out.parts)
            part = _Out(out.parts[lo][1], out.end, out.parts[lo:hi], out.slots)
            parts.append(self.build(part, bound))
        return sp.And(*parts)

    def identifier_value(self, name, subs, bound, pos) -> sp.Basic:
        if name in self.names and bound and not all(s in bound for s in subs or "?"):
            role = {"y": "the prediction", "t": "the target", "z": "the logits"}[self.names[name]]
            written = name if subs is None else f"{name}_{{{''.join(subs)}}}"
            self.fail(
                f"{written!r} ({role}) is not indexed by the sums around it: write it with"
                " the sum's index, as in y_i inside \\sum_{i=1}^{n}",
                pos,
            )
        mean = re.fullmatch(r"\\(?:bar|overline)\{(\w+)\}", name)
        if subs is None and mean and mean.group(1) in self.names:
            self.fail(
                f"{name} reads as the mean of {mean.group(1)} over the batch: a loss that uses a"
                " statistic of the whole batch (a batch mean or standard deviation) does not"
                " split into per-sample terms",
                pos,
            )
        if subs is None:
            if name in bound:
                return _symbols.index(name)
            if name in ("n", "m"):
                return getattr(_symbols, name)
            return _CONSTANTS.get(name) or sp.Symbol(name)
        if all(s in bound for s in subs):  # y_i, y_{ij}, y_{i,j} inside sums over i and j
            return self.array(name, pos)[tuple(map(_symbols.index, subs))]
        label = "".join(subs) if all(len(s) == 1 for s in subs) else ",".join(subs)
        return sp.Symbol(f"{name}_{label}" if len(label) == 1 else f"{name}_{{{label}}}")

    def array(self, name: str, pos: int) -> sp.IndexedBase:
        if name in self.names:
            return _symbols.array(self.names[name])
        if name in self.names.values():
            self.fail(f"{name!r} is ambiguous with the given pred/target/logits names", pos)
        return _symbols.array(name)


# -- magnitudes ---------------------------------------------------------------------------
class _TooLarge(Exception):
    """A node is over one of the magnitude bounds; *reason* says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Size:
    """Upper bounds for one node as SymPy evaluates it.  Sizes are log10s.

    At *sample points* symbols are small rationals (identify() draws p/100, the sign
    checks of a gradient use 3/10 and sizes of 7) and the index of a sum with literal
    limits is any integer between them.
    """

    stored: float  #: the largest number the evaluated node holds
    #: its numeric coefficient, which products and powers fold with others (a number
    #: multiplied into a sum reaches every term; (2 y)^{10} is 1024 y^{10})
    coef: float = 0.0
    #: at sample points the value is a rational (``rational``) or a root of one, which
    #: SymPy computes exactly; ``digits`` bounds its numerator and denominator
    rational: bool = False
    exact: bool = False
    digits: float = 0.0
    mag: float = math.inf  #: of its absolute value at sample points (exact values only)
    const: bool = False  #: a number once the indices of literal sums have values
    nodes: float = 1.0  #: tree size once sums with literal limits are expanded


_AT_SAMPLE = _Size(0.0, rational=True, exact=True, digits=3.0, mag=1.0)  # p/100, 3/10, 7
_NAMED = _Size(0.0, mag=1.0, const=True)  # pi, E, oo: held as names, never as digits
_PASSING = (sp.Abs, sp.Max, sp.Min, sp.Piecewise, ExprCondPair)  # value is an argument's


def _log10(x) -> float:
    """log10 of |x| for an int or Rational of any size (no str(): it stops at 4,300 digits)."""
    x = abs(x)
    if not x:
        return 0.0
    if isinstance(x, sp.Rational):
        return math.log10(int(x.p)) - math.log10(int(x.q))
    return math.log10(x)


def _pow10(x: float) -> float:
    return math.inf if x > 300 else 10.0**x


def _show(e: sp.Basic) -> str:
    """*e*, short, for a message."""
    if isinstance(e, sp.Rational) and max(abs(e.p), e.q).bit_length() > 40:
        return f"of about 10^{_log10(e):.0f}"
    try:
        text = sp.sstr(e)
    except ValueError:  # a number past Python's printing limit
        return "here"
    return text if len(text) <= 40 else text[:37] + "..."


class _Magnitudes:
    """Sizes (:class:`_Size`) of SymPy nodes, found from their arguments' sizes alone, so
    that a node can be checked before SymPy builds (and evaluates) it.

    :meth:`combine` sizes ``func(*args)``; :meth:`size` sizes a built node, with *env*
    the sizes of the indices of enclosing sums.  Both raise :class:`_TooLarge` past a
    bound.  Sizes are memoised: each node is sized once per *env*.
    """

    def __init__(self):
        self.memo: dict = {}

    def size(self, node: sp.Basic, env: tuple = ()) -> _Size:
        key = (node, env)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self._size(node, env)
        return found

    def _size(self, node: sp.Basic, env: tuple) -> _Size:
        if isinstance(node, sp.Rational):
            d = max(_log10(node.p), _log10(node.q))
            mag = max(0.0, _log10(node))
            return _Size(d, d, rational=True, exact=True, digits=d, mag=mag, const=True)
        if isinstance(node, sp.Symbol):
            return dict(env).get(node, _AT_SAMPLE)
        if isinstance(node, (sp.Indexed, sp.IndexedBase, sp.Idx)):
            return _AT_SAMPLE
        if isinstance(node, sp.Sum):
            return self._sum(node.function, node.limits, env)
        if not node.args:
            return _NAMED
        return self.combine(node.func, node.args, env)

    def combine(self, func, args, env: tuple = ()) -> _Size:
        """The size of ``func(*args)`` once SymPy has evaluated it."""
        sizes = [self.size(a, env) for a in args]
        if func is sp.Pow:
            return self.power(*args, *sizes, env)
        if func is sp.exp:
            return self.exp(args[0], env)
        common = dict(
            rational=all(z.rational for z in sizes),
            exact=all(z.exact for z in sizes),
            const=all(z.const for z in sizes),
            nodes=1.0 + sum(z.nodes for z in sizes),
        )
        if func is sp.Add:
            # the constant terms fold into one rational: its denominator is the product
            folded = [z.digits for z in sizes if z.exact and z.const]
            fold = sum(folded) + math.log10(len(folded)) if len(folded) > 1 else 0.0
            size = _Size(
                max([z.stored for z in sizes] + [fold]),
                max([z.coef for z in sizes] + [fold]),
                digits=sum(z.digits for z in sizes) + math.log10(len(sizes)),
                mag=max(z.mag for z in sizes) + math.log10(len(sizes)),
                **common,
            )
        elif func is sp.Mul:
            coef = sum(z.coef for z in sizes)  # the coefficients fold into one number
            size = _Size(
                max([z.stored for z in sizes] + [coef]),
                coef,
                digits=sum(z.digits for z in sizes),
                mag=sum(z.mag for z in sizes),
                **common,
            )
        elif isinstance(func, type) and issubclass(func, _PASSING):
            size = _Size(
                max(z.stored for z in sizes),
                sizes[0].coef if func is sp.Abs else 0.0,  # Abs(3 x) is 3 Abs(x)
                digits=max(z.digits for z in sizes),
                mag=max(z.mag for z in sizes),
                **common,
            )
        else:  # log, sin, sigmoid, a relation ...: an unevaluated function of its arguments
            size = _Size(
                max((z.stored for z in sizes), default=0.0),
                const=common["const"],
                nodes=common["nodes"],
            )
        return self.check(size)

    def power(self, base, exponent, sb: _Size, se: _Size, env: tuple) -> _Size:
        if base is sp.E:
            return self.exp(exponent, env)
        nodes = 1.0 + sb.nodes + se.nodes
        if not se.rational:  # 2^{\log y}, y^{y^{y}}: no exact power, SymPy keeps it as it is
            return _Size(max(sb.stored, se.stored), const=sb.const and se.const, nodes=nodes)
        if se.const:
            # A number as exponent, at most MAX_EXPONENT; nested powers' multiply.
            inner = self.size(base.exp, env) if isinstance(base, sp.Pow) else None
            nested = inner is not None and inner.const and inner.rational
            total = base.exp * exponent if nested else exponent
            if isinstance(total, sp.Rational):
                largest = float(abs(total)) if _log10(total) < 300 else math.inf
            else:  # 2^{k} in a sum with literal limits: k is a number there
                largest = _pow10(se.mag + (inner.mag if nested else 0.0))
            if largest > MAX_EXPONENT:
                raise _TooLarge(f"exponent {_show(total)} too large (at most {MAX_EXPONENT})")
            grow = float(abs(exponent)) if isinstance(exponent, sp.Rational) else _pow10(se.mag)
            integer = getattr(exponent, "is_integer", False) is True
        else:  # y^{t}: a rational of at most 10^mag at sample points
            grow, integer = _pow10(se.mag), False
        grow = max(grow, 1.0)
        if isinstance(base, sp.exp):  # exp(x)^c is exp(c x)
            self.exp(sp.Mul(base.args[0], exponent), env)
        for inner_exp in base.atoms(sp.exp) if not isinstance(base, sp.exp) else ():
            self.exp(sp.Mul(inner_exp.args[0], exponent), env)  # (3 e^x)^c is 3^c e^{c x}
        # A number as exponent folds the base's coefficient (2^{10} is 1024, (2 y)^{10}
        # is 1024 y^{10}); a symbol keeps it apart until a sample point is put in.
        raised = sb.coef * grow if se.const else 0.0
        size = _Size(
            max(sb.stored, se.stored, raised),
            raised,
            rational=sb.rational and integer,
            exact=sb.exact,
            digits=sb.digits * grow,
            mag=sb.digits * grow,  # |b|^-c is at most (denominator)^c
            const=sb.const and se.const,
            nodes=nodes,
        )
        return self.check(size)

    def exp(self, arg, env: tuple) -> _Size:
        """exp(arg): SymPy turns each term ``c \\log(b)`` of *arg* into ``b^c``."""
        sa = self.size(arg, env)
        size = _Size(sa.stored, const=sa.const, nodes=1.0 + sa.nodes)
        terms = sp.Add.make_args(arg)
        for term in terms:
            if not term.has(sp.log):
                continue
            factors = sp.Mul.make_args(term)
            # every log of the term: SymPy's logcombine may merge them into one
            bases = [g.args[0] for f in factors if f.has(sp.log) for g in f.atoms(sp.log)]
            coeff = [f for f in factors if not f.has(sp.log)]
            base = sp.Mul(*bases, evaluate=False) if len(bases) > 1 else bases[0]
            power = sp.Mul(*coeff, evaluate=False) if len(coeff) > 1 else (coeff or [sp.S.One])[0]
            as_power = self.power(base, power, self.size(base, env), self.size(power, env), env)
            if len(terms) == 1:
                return as_power
            size = _Size(max(size.stored, as_power.stored), const=size.const, nodes=size.nodes)
        return size

    def _sum(self, function, limits, env: tuple) -> _Size:
        """A sum: with literal limits ``doit`` adds its terms one by one."""
        (var, lo, hi), inside = limits[-1], limits[:-1]  # SymPy keeps innermost first
        slo, shi = self.size(lo, env), self.size(hi, env)
        literal = slo.const and slo.rational and shi.const and shi.rational
        reach = max(slo.mag, shi.mag)
        if literal:
            index = _Size(reach, reach, True, True, reach, reach, True)
            if isinstance(lo, sp.Integer) and isinstance(hi, sp.Integer):
                terms = max(int(hi) - int(lo) + 1, 0)
                count = float(terms) if terms < 10**300 else math.inf
            else:
                count = _pow10(slo.mag) + _pow10(shi.mag) + 1
        else:  # runs to n or m: not expanded; at sample points, small
            index = _Size(0.0, 0.0, True, True, max(reach, 3.0), max(reach, 1.0), False)
            count = _pow10(max(reach, 1.0))
        scope = (*env, (var, index))
        body = self._sum(function, inside, scope) if inside else self.size(function, scope)
        nodes = 1.0 + body.nodes + slo.nodes + shi.nodes
        coef = body.coef
        uses = function.has(var) or any(b.has(var) for _, *bounds in inside for b in bounds)
        if literal and uses:
            nodes = count * body.nodes
            if nodes > _budget.MAX_NODES:
                many = f"{count:.3g}" if count < math.inf else "too many"
                raise _TooLarge(
                    f"sum over {var} too large to expand ({many} terms; at most"
                    f" {_budget.MAX_NODES} nodes)"
                )
            if body.exact and body.const:  # its terms fold into one rational
                coef = max(coef, count * body.digits + math.log10(max(count, 1.0)))
        elif literal:  # the body times the number of terms
            coef += math.log10(max(count, 1.0)) if count < math.inf else math.inf
        log_count = math.log10(max(count, 1.0)) if count < math.inf else math.inf
        size = _Size(
            max(body.stored, coef),
            coef,
            rational=body.rational,
            exact=body.exact,
            digits=body.digits * max(count, 1.0) + log_count,
            mag=body.mag + log_count,
            const=body.const and literal,
            nodes=nodes,
        )
        return self.check(size)

    @staticmethod
    def check(size: _Size) -> _Size:
        # (log10 sizes: a value of 10^1000 or more has more than 1000 digits)
        if size.stored >= MAX_NUMBER_DIGITS:
            raise _TooLarge(
                f"number too large (about {size.stored:.3g} digits; at most {MAX_NUMBER_DIGITS})"
            )
        if size.exact and size.digits >= MAX_EXACT_DIGITS:
            raise _TooLarge(
                f"value too large to compute exactly (about {size.digits:.3g} digits at sample"
                f" points; at most {MAX_EXACT_DIGITS})"
            )
        return size


# -- the engine ---------------------------------------------------------------------------
class _EngineError(Exception):
    """A syntax error at *column* of the engine's input, or ``None``: out of time."""

    def __init__(self, column: int | None):
        super().__init__(column)
        self.column = column


class _Listener(ErrorListener):
    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e):  # noqa: N802, N803
        start = getattr(offendingSymbol, "start", -1)
        raise _EngineError(start if isinstance(start, int) and start >= 0 else column)


class _BudgetStream(CommonTokenStream):
    """A token stream that stops the parser once the wall-clock budget is spent."""

    def LA(self, i):  # noqa: N802
        if time.monotonic() > _DEADLINE.get():
            raise _EngineError(None)
        return super().LA(i)


class _Engine(_Latex2Sympy):
    """latex2sympy2_extended's converter, with our error listener and time budget."""

    def create_parser(self, latex_str):
        lexer = PSLexer(InputStream(latex_str))
        lexer.removeErrorListeners()
        lexer.addErrorListener(_Listener())
        parser = PSParser(_BudgetStream(lexer))
        parser.removeErrorListeners()
        parser.addErrorListener(_Listener())
        return parser


@functools.lru_cache(maxsize=2048)
def _run_engine(flat: str) -> sp.Basic:
    """Parse placeholder-only text (cached: with local numbering, texts repeat a lot)."""
    return _Engine(config=ConversionConfig(lowercase_symbols=False)).parse(flat)
