"""Plots of a loss and its gradient (matplotlib, optional), as reproducible SVG."""

from __future__ import annotations

import io
import math

import numpy as np
import sympy as sp

from symloss.core.loss import Loss
from symloss.docs.sheet import is_classification


def _classes(loss: Loss) -> list[float]:
    dom = loss.domains[str(loss.target.label)]
    if isinstance(dom.set, sp.FiniteSet):
        return [float(v) for v in dom.set]
    return [0.0, 1.0]


def _domain_set(loss: Loss, label: str) -> sp.Set:
    dom = loss.domains.get(label)
    return dom.set if dom is not None else sp.Interval(-sp.oo, sp.oo)


def _typical(loss: Loss, label: str, interior: bool = False) -> float:
    """A plain value for array *label*: 1, else 0 or 1/2, inside its domain.

    With *interior*, a value on the domain's boundary (0 for a non-negative target,
    where some losses have a special case) is passed over.
    """
    s = _domain_set(loss, label)
    for v in (1.0, 0.0, 0.5):
        if s.contains(v) is sp.true and not (interior and v in (s.inf, s.sup)):
            return v
    lo, hi = float(s.inf), float(s.sup)
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2
    return lo + 1.0 if math.isfinite(lo) else hi - 1.0


def _sweep(loss: Loss, centre: float, half_width: float, count: int = 201) -> np.ndarray:
    """Points of the prediction's domain within *half_width* of *centre*.

    Ends that are boundaries of the domain are kept 1 % inside, where the loss and its
    gradient are finite.
    """
    s = _domain_set(loss, str(loss.pred.label))
    inf, sup = float(s.inf), float(s.sup)
    lo, hi = max(centre - half_width, inf), min(centre + half_width, sup)
    if lo >= hi:  # the window misses the domain: start at its lower end instead
        lo, hi = inf, inf + 2 * half_width
    pad = 0.01 * (hi - lo)
    return np.linspace(lo + pad * (lo == inf), hi - pad * (hi == sup), count)


def plot_curves(loss: Loss) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    """The data of the plot: x-axis label and ``(label, x, value, gradient)`` curves.

    Each point is one sample (``n = 1``) evaluated with the loss's own kernels.  A
    classification loss is drawn against its input for each class (``t = 0`` and
    ``t = 1``, as in the article's table); a regression loss against the residual
    ``y - t``.  A loss over class rows (one-hot targets) uses ``m = 2`` classes and
    sweeps the input of class 2, the other class getting ``1 - y`` (or logit 0); any
    other loss coupled across a row uses rows of two entries, the first equal in
    prediction and target.  Extra inputs get a plain value of their domain (e.g. 1).
    Points where the loss refuses the input are NaN (gaps in the curve).
    """
    pred = str(loss.pred.label)
    ndim = len(loss.input_indices)
    one_hot_rows = ndim == 2 and any(c.name == "one_hot" for c in loss.constraints)
    paired_rows = ndim == 2 and not loss.separable and not one_hot_rows
    classification = is_classification(loss)
    other = _typical(loss, str(loss.target.label))
    probability = _domain_set(loss, pred).is_subset(sp.Interval(0, 1))

    def case(x: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        if one_hot_rows:
            return np.array([[1.0 - x if probability else 0.0, x]]), np.array([[1.0 - t, t]])
        if paired_rows:
            return np.array([[other, x]]), np.array([[other, t]])
        shape = (1,) * ndim
        return np.full(shape, x), np.full(shape, t)

    where = (0, 1) if ndim == 2 and (one_hot_rows or paired_rows) else (0,) * ndim
    curves = []
    if classification:
        half = 6.0 if loss.composition is not None else 3.0
        x = _sweep(loss, 0.0 if not probability else 0.5, half)
        for c in _classes(loss):
            value, grad = _evaluate(loss, x, lambda v, c=c: case(v, c), where)
            curves.append((f"t = {c:g}", x, value, grad))
        sub = "{i2}" if where == (0, 1) else ("{ij}" if ndim == 2 else "i")
        return f"${pred}_{sub}$", curves

    t0 = _typical(loss, str(loss.target.label), interior=True)
    x = _sweep(loss, t0, 3.0)
    value, grad = _evaluate(loss, x, lambda v: case(v, t0), where)
    curves.append((f"t = {t0:g}", x - t0, value, grad))
    return f"residual ${pred} - t$", curves


def _evaluate(loss, x, make, where):
    extra = {}
    value = np.full(x.shape, np.nan)
    grad = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        for pos, v in enumerate(x):
            p, t = make(float(v))
            if not extra:
                extra = {
                    str(b.label): np.full(p.shape, _typical(loss, str(b.label)))
                    for b in loss.extra_inputs
                }
            try:
                value[pos] = np.sum(loss(p, t, **extra))
                grad[pos] = loss.grad(p, t, **extra)[where]
            except ValueError:  # outside the domain: a gap in the curve
                continue
    value[~np.isfinite(value)] = np.nan
    grad[~np.isfinite(grad)] = np.nan
    return value, grad


def sweep_curves(loss: Loss, name: str):
    """The curves of :func:`plot_curves` for each value in the sweep of parameter *name*:
    ``(x-axis label, [(label, x, value, gradient)])``, one curve per value (for a
    classification loss, the curve of the positive class, t = 1)."""
    prm = next(p for p in loss.params if p.name == name)
    symbol = sp.latex(prm.symbol)
    xlabel, curves = "", []
    for v in prm.sweep:
        xlabel, each = plot_curves(loss.bind(**{name: float(v)}))
        label, x, value, grad = next((c for c in each if c[0] == "t = 1"), each[0])
        curves.append((f"${symbol} = {float(v):g}$", x, value, grad))
    return xlabel, curves


def sweep_file(loss_name: str, param: str) -> str:
    """The file of the plot of a loss over the sweep of one parameter."""
    return f"{loss_name}-{param}.svg"


def plot_svg(loss: Loss, sweep: str | None = None, points=()) -> bytes | None:
    """The plot of *loss* and its gradient as SVG, or None when matplotlib is missing.

    With *sweep* (a parameter's name), one curve per value of its sweep; *points*,
    ``(x, value, gradient, label)`` tuples, are marked on the curves (the article's
    table on the BCE plot).
    """
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return None
    xlabel, curves = plot_curves(loss) if sweep is None else sweep_curves(loss, sweep)
    pred = str(loss.pred.label)
    sub = "{ij}" if len(loss.input_indices) == 2 else "i"
    style = {
        "svg.hashsalt": "symloss",
        "svg.fonttype": "path",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(7.2, 2.8))
        # Fixed margins: constrained layout would double the time of each plot.
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.17, top=0.9, wspace=0.22)
        ax_value, ax_grad = fig.subplots(1, 2)
        for label, x, value, grad in curves:
            ax_value.plot(x, value, label=label, linewidth=1.6)
            ax_grad.plot(x, grad, label=label, linewidth=1.6)
        for x, value, grad, label in points:
            ax_value.plot([x], [value], "o", color="black", markersize=3.5)
            ax_grad.plot([x], [grad], "o", color="black", markersize=3.5)
            ax_value.annotate(label, (x, value), textcoords="offset points", xytext=(4, 4))
        ax_value.set_title("loss $E$ (one sample)")
        ax_grad.set_title(rf"gradient $\partial E / \partial {pred}_{{{sub}}}$")
        for ax in (ax_value, ax_grad):
            ax.set_xlabel(xlabel)
            ax.grid(True, linewidth=0.4, alpha=0.5)
            ax.axhline(0, color="0.6", linewidth=0.6)
            if len(curves) > 1:
                ax.legend(frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "symloss"})
    return buf.getvalue()
