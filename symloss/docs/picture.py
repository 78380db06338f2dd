"""The plot of a loss for the LaTeX handout, drawn with the kernel's picture environment.

pdflatex cannot include SVG and CI has no pgf/TikZ, so the curves of
:func:`symloss.docs.plots.plot_curves` (the same samples as the site's plots) become
``\\qbezier`` segments (straight: the control point is the midpoint), axes ``\\line``
and ``\\put`` labels.  Each panel carries a ``% map`` comment: the linear map from
data to picture units, so a reader (or a test) can read values back.
"""

from __future__ import annotations

import numpy as np

from symloss.core.loss import Loss
from symloss.docs.plots import plot_curves

_W, _H = 62.0, 34.0  # one panel, in mm


def _y_range(values: list[np.ndarray]) -> tuple[float, float]:
    """Clipped to the 2nd-98th percentiles, so an infinite edge does not flatten the rest."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(1)])
    if finite.size == 0:
        finite = np.zeros(1)
    lo, hi = np.percentile(finite, [2, 98])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    pad = 0.05 * (hi - lo)
    return float(lo - pad), float(hi + pad)


def _panel(title: str, xlabel: str, curves, points, dx: float) -> list[str]:
    x0 = min(float(np.nanmin(x)) for _, x, _, _ in curves)
    x1 = max(float(np.nanmax(x)) for _, x, _, _ in curves)
    y0, y1 = _y_range([y for _, _, y, _ in curves])
    sx, sy = _W / (x1 - x0), _H / (y1 - y0)
    out = [f"% map x {x0:.6g} {x1:.6g} y {y0:.6g} {y1:.6g} at {dx:g}"]
    out.append(rf"\put({dx:g},0){{\line(1,0){{{_W:g}}}}}\put({dx:g},0){{\line(0,1){{{_H:g}}}}}")
    if y0 < 0 < y1:  # the zero line, dotted
        out.append(rf"\multiput({dx:g},{-y0 * sy:.2f})(2,0){{{int(_W / 2)}}}{{\line(1,0){{0.5}}}}")
    for v, pos in ((x0, 0), (x1, _W)):
        out.append(rf"\put({dx + pos:.2f},-1){{\makebox(0,0)[t]{{\tiny ${v:.3g}$}}}}")
    for v, pos in ((y0, 0), (y1, _H)):
        out.append(rf"\put({dx - 1:g},{pos:.2f}){{\makebox(0,0)[r]{{\tiny ${v:.3g}$}}}}")
    out.append(rf"\put({dx + _W / 2:g},-5){{\makebox(0,0)[t]{{\scriptsize {xlabel}}}}}")
    out.append(rf"\put({dx + _W / 2:g},{_H + 3:g}){{\makebox(0,0)[b]{{\scriptsize {title}}}}}")
    for label, x, y, _ in curves:
        px, py = dx + (x - x0) * sx, (y - y0) * sy
        keep = np.isfinite(py) & (py >= 0) & (py <= _H)
        for i in range(len(x) - 1):
            if keep[i] and keep[i + 1]:
                a, b = (px[i], py[i]), (px[i + 1], py[i + 1])
                m = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
                out.append(
                    rf"\qbezier({a[0]:.2f},{a[1]:.2f})({m[0]:.2f},{m[1]:.2f})({b[0]:.2f},{b[1]:.2f})"
                )
        if len(curves) > 1:
            i = int(np.flatnonzero(keep)[-1]) if keep.any() else len(x) - 1
            out.append(rf"\put({px[i]:.2f},{min(py[i], _H):.2f}){{\tiny\ ${label}$}}")
    for x, y in points:
        if x0 <= x <= x1 and y0 <= y <= y1:
            out.append(rf"\put({dx + (x - x0) * sx:.2f},{(y - y0) * sy:.2f}){{\circle*{{1}}}}")
    return out


def tex_picture(loss: Loss, points=()) -> str:
    """A ``figure`` with the loss and its gradient against the prediction (or residual).

    *points*, ``(x, value, gradient, label)`` tuples, are marked (the article's table)."""
    xlabel, curves = plot_curves(loss)
    pred = str(loss.pred.label)
    sub = "{ij}" if len(loss.input_indices) == 2 else "i"
    value = [(lab, x, v, g) for lab, x, v, g in curves]
    grad = [(lab, x, g, v) for lab, x, v, g in curves]
    lines = [r"\begin{figure}[htbp]\centering", r"\setlength{\unitlength}{1mm}"]
    lines.append(rf"\begin{{picture}}({2 * _W + 14:g},{_H + 12:g})(-8,-8)")
    lines += _panel("loss $E$ (one sample)", xlabel, value, [(p[0], p[1]) for p in points], 0)
    title = rf"gradient $\partial E/\partial {pred}_{sub}$"
    lines += _panel(title, xlabel, grad, [(p[0], p[2]) for p in points], _W + 14)
    lines.append(r"\end{picture}")
    classes = ", ".join(f"${lab}$" for lab, *_ in curves)
    lines.append(
        rf"\caption{{Loss and gradient of one sample against {xlabel} ({classes}),"
        r" y clipped to the 2nd--98th percentile.}"
    )
    lines.append(r"\end{figure}")
    return "\n".join(lines)
