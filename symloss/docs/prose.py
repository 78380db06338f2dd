r"""Prose with formulas: the plain-text math of a loss's ``conventions`` as LaTeX.

A loss states its conventions in plain text, as a docstring or a terminal can show
them: ``1/2 e^2 for |e| < delta``, ``sum_k y_k t_k``.  :func:`segments` cuts such a
sentence into text and formulas, and writes each formula in LaTeX
(:math:`\tfrac{1}{2} e^{2}` for :math:`|e| < \delta`), so that a page, the Markdown
and the handout typeset it instead of printing ``e^2``.

The text is not evaluated or parsed as an expression: it is cut into tokens (words,
numbers, operators), and a formula is a run of tokens that are each math (a Greek
letter's name, a subscripted letter such as ``y_i``, a single letter, a number, a
function name such as ``log``, an operator or a parenthesis) holding at least one
operator or one subscripted or Greek token.  English words end a run; a snake_case
name (``log_target``) is code, not math.  Each token then maps to its LaTeX.
"""

from __future__ import annotations

import re

GREEK = {
    "alpha": r"\alpha",
    "beta": r"\beta",
    "gamma": r"\gamma",
    "delta": r"\delta",
    "epsilon": r"\epsilon",
    "eps": r"\epsilon",
    "sigma": r"\sigma",
    "lambda": r"\lambda",
    "mu": r"\mu",
    "tau": r"\tau",
    "theta": r"\theta",
    "Delta": r"\Delta",
}
#: Functions with a LaTeX command; any other function name is an operatorname.
_COMMANDS = {"log", "exp", "cosh", "tanh", "sinh", "max", "min", "sqrt"}
FUNCTIONS = _COMMANDS | {"log1p", "sign", "softplus", "sigmoid", "softmax", "logsumexp"}
_BIG = {"sum": r"\sum", "prod": r"\prod"}
#: Single letters that are English words, never math on their own.
_WORDS = {"a", "A", "I"}
_ACRONYM = re.compile(r"[A-Z]{2}")

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<possessive>'[A-Za-z]+)"
    r"|(?P<number>\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![A-Za-z_]))"
    r"|(?P<word>[A-Za-z][A-Za-z0-9]*(?:_(?:\{[^{}]*\}|[A-Za-z0-9]+))*)"
    r"|(?P<op><=|>=|!=|==|[-+*/^=<>|])"
    r"|(?P<open>[(\[])|(?P<close>[)\]])"
    r"|(?P<comma>,)"
    r"|(?P<other>.)",
    re.S,
)


def _subscripted(word: str) -> tuple[str, str] | None:
    """``("y", "ij")`` for ``y_ij`` or ``y_{ij}``; None for code such as ``log_target``."""
    base, _, sub = word.partition("_")
    if not sub or "_" in sub:
        return None
    sub = sub[1:-1] if sub.startswith("{") else sub
    if len(sub) > 3 or not (len(base) == 1 or base in GREEK or base in _BIG):
        return None
    return base, sub


def _kind(kind: str, text: str) -> str:
    """``strong`` (math by itself), ``weak`` (math inside a formula), or ``text``."""
    if kind == "word":
        if "_" in text:
            return "strong" if _subscripted(text) else "text"
        if text in GREEK:
            return "strong"
        if len(text) == 1 and text not in _WORDS or text in FUNCTIONS or text == "inf":
            return "weak"
        if _ACRONYM.fullmatch(text):  # TP, FP, FN: counts named in a formula
            return "weak"
        return "text"
    if kind == "op":
        return "strong" if text in "^=<>|*" or len(text) == 2 else "weak"
    if kind in ("number", "open", "close", "space", "comma"):
        return "weak"
    return "text"


def _latex_word(word: str, bare: bool = False) -> str:
    sub = _subscripted(word)
    if sub:
        base, index = sub
        head = _BIG.get(base) or GREEK.get(base) or base
        return f"{head}_{{{index}}}"
    if word in GREEK:
        return GREEK[word]
    if _ACRONYM.fullmatch(word):
        return rf"\mathrm{{{word}}}"
    if word == "inf":
        return r"\infty"
    if word in _COMMANDS:
        return word if bare and word == "log" else "\\" + word
    if word in FUNCTIONS:
        return rf"\operatorname{{{word}}}"
    return word


def _latex_number(text: str) -> str:
    mant, _, exp = text.partition("e")
    if not exp:
        return text
    power = f"10^{{{int(exp)}}}"
    return power if mant == "1" else rf"{mant} \times {power}"


def _to_latex(tokens: list[tuple[str, str]], bare: bool = False) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(tokens):
        kind, text = tokens[pos]
        if kind == "op" and text == "^":
            # The exponent: one token, or a parenthesised group without its parentheses.
            nxt = pos + 1
            while nxt < len(tokens) and tokens[nxt][0] == "space":
                nxt += 1
            if nxt < len(tokens) and tokens[nxt][0] == "open":
                end = _closing(tokens, nxt)
                out.append("^{" + _to_latex(tokens[nxt + 1 : end], bare) + "}")
                pos = end + 1
            elif nxt < len(tokens):
                out.append("^{" + _to_latex([tokens[nxt]], bare) + "}")
                pos = nxt + 1
            else:
                out.append("^")
                pos += 1
            continue
        if kind == "word" and text == "sqrt" and pos + 1 < len(tokens):
            if tokens[pos + 1][0] == "open":
                end = _closing(tokens, pos + 1)
                out.append(r"\sqrt{" + _to_latex(tokens[pos + 2 : end], bare) + "}")
                pos = end + 1
                continue
        if kind == "word":
            out.append(_latex_word(text, bare))
            if pos + 1 < len(tokens) and tokens[pos + 1][0] in ("word", "number"):
                out.append(" ")
        elif kind == "number":
            out.append(_latex_number(text))
        elif kind == "op":
            out.append(
                {"*": r" \, ", "<=": r" \le ", ">=": r" \ge ", "!=": r" \ne ", "==": " = "}.get(
                    text, text
                )
            )
        elif kind == "space":
            out.append(" ")
        else:
            out.append(text)
        pos += 1
    return re.sub(r" {2,}", " ", "".join(out)).strip()


def _closing(tokens: list[tuple[str, str]], start: int) -> int:
    depth = 0
    for pos in range(start, len(tokens)):
        if tokens[pos][0] == "open":
            depth += 1
        elif tokens[pos][0] == "close":
            depth -= 1
            if depth == 0:
                return pos
    return len(tokens) - 1


def _balanced(tokens: list[tuple[str, str]]) -> bool:
    depth = 0
    for kind, _ in tokens:
        depth += kind == "open"
        depth -= kind == "close"
        if depth < 0:
            return False
    return depth == 0


def _trim(run: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The run without unbalanced parentheses, commas and spaces at its ends."""
    while run:
        if run[0][0] in ("space", "comma") or (run[0][0] == "close"):
            run = run[1:]
        elif run[-1][0] in ("space", "comma") or (run[-1][0] == "open"):
            run = run[:-1]
        elif run[0][0] == "open" and not _balanced(run):
            run = run[1:]
        elif run[-1][0] == "close" and not _balanced(run):
            run = run[:-1]
        elif run[-1][0] == "op" and run[-1][1] != "|":
            run = run[:-1]
        elif run[0][0] == "op" and run[0][1] not in "-+|":  # no left operand
            run = run[1:]
        else:
            break
    return run


def _is_formula(run: list[tuple[str, str]]) -> bool:
    if not run or not _balanced(run):
        return False
    strong = [t for t in run if _kind(*t) == "strong"]
    if not strong:
        return False
    # A lone operator word, such as "|" between words, is not a formula.
    return any(k in ("word", "number") for k, _ in run)


def segments(text: str, style: str = "standard") -> list[tuple[str, bool]]:
    """*text* cut into ``(piece, is_math)``: plain text, and formulas in LaTeX.

    ``style="article"`` writes the source article's bare ``log``, as its printer does.
    """
    bare = style == "article"
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    out: list[tuple[str, bool]] = []
    pos = 0

    def add(piece: str, math: bool):
        if out and out[-1][1] == math and not math:
            out[-1] = (out[-1][0] + piece, False)
        elif piece:
            out.append((piece, math))

    while pos < len(tokens):
        if _kind(*tokens[pos]) == "text" or tokens[pos][0] == "space":
            add(tokens[pos][1], False)
            pos += 1
            continue
        end = pos
        while end < len(tokens) and _kind(*tokens[end]) != "text":
            end += 1
        for run in _pieces(tokens[pos:end]):
            trimmed = _trim(run)
            if trimmed and _is_formula(trimmed):
                # Keep what the trim dropped, as text, around the formula.
                lead = _find(run, trimmed)
                add("".join(t for _, t in run[:lead]), False)
                out.append((_to_latex(trimmed, bare), True))
                add("".join(t for _, t in run[lead + len(trimmed) :]), False)
            else:
                add("".join(t for _, t in run), False)
        pos = end
    return out


def _pieces(run: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """*run* cut at its unmatched parentheses, each of which is a piece of its own."""
    unmatched, stack = set(), []
    for pos, (kind, _) in enumerate(run):
        if kind == "open":
            stack.append(pos)
        elif kind == "close":
            if stack:
                stack.pop()
            else:
                unmatched.add(pos)
    unmatched |= set(stack)
    out, current = [], []
    for pos, tok in enumerate(run):
        if pos in unmatched:
            out += [current, [tok]] if current else [[tok]]
            current = []
        else:
            current.append(tok)
    return [*out, current] if current else out


def _find(run: list, part: list) -> int:
    for k in range(len(run) - len(part) + 1):
        if run[k : k + len(part)] == part:
            return k
    return 0
