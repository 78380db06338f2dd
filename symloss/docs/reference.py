"""Look-up content of a page, made from a loss's declarations: a runnable snippet with
a worked example, the equivalent calls in other libraries, and linked references.

* :func:`worked_example` picks small, readable inputs inside the loss's domains (two or
  three samples; rows of three classes), evaluates the value and the gradient with
  the library, and writes the ``symloss.get(...)`` snippet that reproduces them,
  shapes and dtypes included.  ``tests/docs/test_reference.py`` runs every page's
  snippet and checks the numbers against the definition evaluated with mpmath.
* :func:`equivalents` reads the library calls a loss cites (references of the form
  ``"PyTorch: torch.nn.functional.mse_loss (https://...)"``) and, for each library,
  the sentences of its ``conventions`` that name that library: where its numbers or
  conventions differ.  The four libraries an engineer looks for come first, with a
  row even when the loss cites none of their calls.
* :func:`links` splits each reference into text and a link (a URL it holds, an arXiv
  identifier, or a DOI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symloss.core.loss import Loss
from symloss.registry import get

# ============================================================================ inputs
#: Readable values in (0, 1), mapped into each domain; distinct, so no two samples agree.
_UNIT = (0.2, 0.7, 0.9, 0.4, 0.6)
#: The same for targets: no target equals its prediction, and residuals straddle 1.
_TARGET_UNIT = (0.4, 0.6, 0.2, 0.7, 0.9)
#: One-hot rows (three classes) of the samples of a loss over class rows.
_CLASSES = (0, 2, 1)
ROWS, COLUMNS = 2, 3  # samples and classes of a loss over rows
SAMPLES = 3  # samples of a loss with one term per element


def _into(s: sp.Set, unit: np.ndarray, logits: bool) -> np.ndarray:
    """*unit* (values in (0, 1)) mapped into the set *s*, rounded to two decimals."""
    if isinstance(s, sp.FiniteSet):
        values = sorted(float(v) for v in s)
        return np.array([values[k % len(values)] for k in range(unit.size)]).reshape(unit.shape)
    lo, hi = s.inf, s.sup
    if lo.is_finite and hi.is_finite:
        lo, hi = float(lo), float(hi)
        out = lo + unit * (hi - lo)
    elif lo.is_finite:
        out = float(lo) + 0.5 + 3 * unit
    elif hi.is_finite:
        out = float(hi) - 0.5 - 3 * unit
    else:
        out = (6 if logits else 4) * unit - (3 if logits else 2)
    return np.round(out, 2)


@dataclass(frozen=True)
class Example:
    """A worked example: inputs, and the value and gradient the library gives."""

    loss: Loss
    role: str  # what the input is: "prediction", "logits" or "scores"
    pred: np.ndarray
    target: np.ndarray
    extra: dict
    value: float | np.ndarray
    grad: np.ndarray

    @property
    def value_is_scalar(self) -> bool:
        return np.ndim(self.value) == 0

    @property
    def arrays(self) -> list[tuple[str, str, np.ndarray]]:
        """``(variable, role, array)`` of each input, in call order."""
        rows = [("pred", self.role, self.pred), ("target", "target", self.target)]
        rows += [(k, "input, by keyword", v) for k, v in self.extra.items()]
        return rows

    def snippet(self) -> str:
        """Python that reproduces this example, with the shapes and dtypes as comments."""
        loss = self.loss
        options = dict(loss.bound)
        if loss.reduction != _registered_reduction(loss):
            options["reduction"] = loss.reduction
        args = "".join(f", {k}={v!r}" for k, v in options.items())
        lines = ["import numpy as np", "import symloss", ""]
        lines.append(f'L = symloss.get("{loss.name}"{args})')
        for var, role, arr in self.arrays:
            lines.append(f"{var} = np.array({_literal(arr)})  # {_shape(arr)}, float64: {role}")
        call = ", ".join(["pred", "target"] + [f"{k}={k}" for k in self.extra])
        kind = "float" if np.ndim(self.value) == 0 else f"{_shape(self.value)}, float64"
        lines.append(f"value = L({call})  # {kind}")
        lines.append(f"grad = L.grad({call})  # {_shape(self.grad)}, float64, as pred")
        lines.append("print(value)")
        lines.append("print(grad)")
        return "\n".join(lines) + "\n"

    def printed(self) -> str:
        """What the snippet prints (NumPy's own formatting of the two results)."""
        return (
            f"{self.value!s}\n{self.grad!s}\n"
            if np.ndim(self.value)
            else (f"{float(self.value)!r}\n{self.grad!s}\n")
        )


def number(v: float) -> str:
    """A value as a page shows it: six significant digits, and no negative zero."""
    v = float(v)
    return f"{v + 0.0:.6g}"


def cells(arr: np.ndarray) -> list[str]:
    """One cell per sample: its value, or its row as ``[a, b, c]``."""
    arr = np.asarray(arr)
    if arr.ndim == 1:
        return [number(v) for v in arr]
    return ["[" + ", ".join(number(v) for v in row) + "]" for row in arr]


def _registered_reduction(loss: Loss) -> str:
    return get(loss.name).reduction


def _literal(arr: np.ndarray) -> str:
    return repr(np.asarray(arr).tolist())


def _shape(arr) -> str:
    return f"shape {tuple(np.shape(arr))}"


def _rows(arr: np.ndarray) -> np.ndarray:
    """Rows of *arr* (positive) scaled to sum to 1, to two decimals, still summing to 1."""
    out = np.round(arr / arr.sum(axis=-1, keepdims=True), 2)
    out[..., -1] = np.round(1 - out[..., :-1].sum(axis=-1), 2)
    return out


def example_inputs(loss: Loss) -> tuple[np.ndarray, np.ndarray, dict]:
    """Small inputs inside the loss's domains: prediction, target and extra inputs.

    Read from the domains: values spread over each array's set (classes alternate,
    one-hot rows for a loss with the one-hot constraint), rows that sum to 1 where a
    row of probabilities is meant, and the log of such a row for a log-probability.
    """
    two_d = len(loss.input_indices) == 2
    shape = (ROWS, COLUMNS) if two_d else (SAMPLES,)
    size = int(np.prod(shape))
    unit = np.resize(np.array(_UNIT), size).reshape(shape)
    pdom, tdom = loss.domains[_label(loss.pred)], loss.domains[_label(loss.target)]
    logits = loss.composition is not None or "logit" in pdom.description
    pred = _into(pdom.set, unit, logits)
    if two_d and "log-probability" in pdom.description:
        pred = np.round(np.log(_rows(unit)), 2)
    elif two_d and pdom.set == sp.Interval.open(0, 1):  # probability rows sum to 1
        pred = _rows(pred)
    one_hot = any(c.name == "one_hot" for c in loss.constraints)
    if one_hot:
        target = np.eye(COLUMNS)[list(_CLASSES[:ROWS])]
    elif two_d and tdom.description.startswith("probability"):
        target = _rows(np.resize(np.array(_TARGET_UNIT), size).reshape(shape))
    elif isinstance(tdom.set, sp.FiniteSet) or tdom.set.is_subset(sp.Interval(0, 1)):
        # Classes, alternating from the last, so that a row of three holds both.
        if isinstance(tdom.set, sp.FiniteSet):
            classes = sorted(float(v) for v in tdom.set)
        else:
            classes = [0.0, 1.0]
        flat = np.array([classes[(k + 1) % len(classes)] for k in range(size)])
        target = flat.reshape(shape)
    else:
        target = _into(tdom.set, np.resize(np.array(_TARGET_UNIT), size).reshape(shape), False)
    extra = {
        _label(b): _into(loss.domains[_label(b)].set, np.full(shape, 0.5), False)
        for b in loss.extra_inputs
    }
    return pred.astype(np.float64), target.astype(np.float64), extra


def _label(base) -> str:
    return str(base.label)


def worked_example(loss: Loss, role: str = "prediction") -> Example:
    """The worked example of *loss*: inputs from :func:`example_inputs`, and the value
    and gradient computed by the loss itself (float64).  *role* names the input."""
    pred, target, extra = example_inputs(loss)
    value = loss(pred, target, **extra)
    grad = loss.grad(pred, target, **extra)
    return Example(loss, role, pred, target, extra, value, grad)


# ============================================================================ equivalents
#: The libraries an engineer looks for, in table order, each with the words that name
#: it in a loss's references and conventions.
MAIN_LIBRARIES = {
    "PyTorch": ("PyTorch", "torch."),
    "Keras": ("Keras",),
    "optax": ("optax",),
    "scikit-learn": ("scikit-learn", "sklearn"),
}
_LIBRARY = re.compile(r"^([A-Z][\w./ -]{0,30}?|[a-z][\w.-]{1,20}):\s+(.*)$", re.S)
_URL = re.compile(r"https?://[^\s),]+[^\s),.]")


@dataclass(frozen=True)
class Equivalent:
    """One library's equivalent of a loss: its call, a link, and where it differs."""

    library: str
    call: str  # "" when the loss cites no call of this library
    url: str
    differences: tuple[str, ...]


def _citations(loss: Loss) -> list[tuple[str, str]]:
    """``(library, text)`` of each library call the references cite."""
    out = []
    for ref in loss.references:
        # "Keras: a; optax: b" cites two libraries in one reference.
        for part in re.split(r";\s+(?=[\w/ .-]{2,30}:\s)", ref):
            m = _LIBRARY.match(part.strip())
            if m and not m.group(1)[0].isdigit() and " " not in m.group(1).strip("/"):
                out.append((m.group(1), m.group(2).strip()))
    return out


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.;])\s+(?=[A-Z(a-z])", text) if s.strip()]


def _names(library: str) -> tuple[str, ...]:
    return MAIN_LIBRARIES.get(library, (library,))


def _library_of(name: str) -> str:
    for library, words in MAIN_LIBRARIES.items():
        if any(name.lower() == w.lower().rstrip(".") for w in words):
            return library
    return name


def equivalents(loss: Loss) -> list[Equivalent]:
    """The equivalent calls in other libraries, main libraries first."""
    calls: dict[str, list[tuple[str, str]]] = {}
    for name, text in _citations(loss):
        url = next(iter(_URL.findall(text)), "")
        call = _URL.sub("", text)
        call = re.sub(r"\s*\(\s*\)", "", call).strip().rstrip(".,;").strip()
        calls.setdefault(_library_of(name), []).append((call, url))
    sentences = _sentences(loss.conventions)
    out = []
    for library in [*MAIN_LIBRARIES, *(k for k in calls if k not in MAIN_LIBRARIES)]:
        words = _names(library)
        differ = tuple(
            s for s in sentences if any(re.search(rf"\b{re.escape(w)}", s) for w in words)
        )
        cited = calls.get(library, [])
        call = "; ".join(c for c, _ in cited)
        url = next((u for _, u in cited if u), "")
        out.append(Equivalent(library, call, url, differ))
    return out


# ============================================================================ links
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")
_DOI = re.compile(r"\b(?:doi:\s*|https?://doi\.org/)(10\.\d{4,9}/[^\s,;)]+)", re.I)


def link_of(reference: str) -> str:
    """The link a reference holds: a URL, else an arXiv identifier's or a DOI's page."""
    doi = _DOI.search(reference)
    if doi:
        return f"https://doi.org/{doi.group(1).rstrip('.')}"
    url = _URL.search(reference)
    if url:
        return url.group(0)
    arxiv = _ARXIV.search(reference)
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv.group(1)}"
    return ""


def links(loss: Loss) -> list[tuple[str, str]]:
    """``(text, link)`` of each reference; ``link`` is ``""`` for one with none."""
    return [(ref, link_of(ref)) for ref in loss.references]


def shown_reference(text: str, link: str) -> str:
    """A reference as a page shows it: without the URL that its link carries."""
    if not link:
        return text
    return text.replace(f" ({link})", "").replace(f", {link}", "")
