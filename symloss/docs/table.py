"""The article's example table, for any loss that is a sum of per-element terms: each
addend of the summand, element by element (sample, or sample x class)."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symloss.core.loss import Loss
from symloss.losses.article import ARTICLE_TABLES
from symloss.numeric import evaluate
from symloss.numeric.kernel import Kernel
from symloss.numeric.stabilize import stabilize
from symloss.printing.printers import latex_expr, linear, pretty
from symloss.registry import get


def tabulable(loss: Loss) -> bool:
    """Whether each element has a term of its own: the summand holds no inner sum or
    row maximum, and the loss takes no further input such as a variance.  A softmax's
    normalising sum is inside the function, so one-hot cross-entropy on logits is
    tabulable; Dice, Tversky and the cosine are not."""
    if len(loss.indices) not in (1, 2) or loss.element_indices or loss.extra_inputs:
        return False
    return not loss.term.has(sp.Sum) and not any(
        type(f).__name__ == "rowmax" for f in loss.term.atoms(sp.Function)
    )


def per_sample_terms(loss: Loss, pred: np.ndarray, target: np.ndarray, use_unicode: bool = True):
    """Headers and values of each authored addend of the summand, element by element.

    For binary cross-entropy these are the article's columns ``t_i log(y_i)`` and
    ``(1 - t_i) log(1 - y_i)``; the value of a zero-weighted log term is 0 (its limit).
    For a loss over class rows (categorical cross-entropy) each value array has the
    inputs' shape ``(n, m)``: one entry per sample and class.  Headers are one line:
    the Unicode text form where that fits on one line, else (or with
    ``use_unicode=False``) the linear ASCII form, ``(y_k - t_k)^2``.
    """
    if not tabulable(loss):
        raise ValueError(
            f"{loss.name}: the table needs a loss that is a sum of one term per element "
            "(this one couples the elements of a row through a sum)"
        )
    batch = evaluate.prepare(loss, pred, target, None, {})
    arrays, sizes = batch.arrays, batch.sizes
    addends = sp.Add.make_args(loss.term)
    headers, columns = [], []
    for a in addends:
        kernel = Kernel(stabilize(a.doit(), frozenset({loss.target})), loss.indices)
        values = np.broadcast_to(kernel(arrays, sizes), batch.shape).astype(np.float64)
        headers.append(_header(a, use_unicode))
        columns.append(values + 0.0)
    return headers, columns


def _header(addend: sp.Expr, use_unicode: bool) -> str:
    if use_unicode:
        text = pretty(addend).replace("\u22c5", " ")
        if "\n" not in text:
            return text
    return linear(addend)


def article_table(loss: Loss, style: str = "standard"):
    """The article's example table of *loss*, or None for a loss it has none of.

    Returns ``(headers, rows)``: LaTeX headers (in *style*) (the prediction, the target, each addend
    of the summand, and the sample's loss) and, per row, their values computed by the
    loss's kernels, as :func:`per_sample_terms` does for ``symloss table``.  Also used
    to mark the rows on the plot (:func:`table_points`).
    """
    pairs = ARTICLE_TABLES.get(loss.name)
    if pairs is None or loss.composition is not None:
        return None
    y = np.array([p for p, _ in pairs])
    t = np.array([q for _, q in pairs])
    _, columns = per_sample_terms(loss, y, t)
    sample = get(loss.name, reduction="none")(y, t)
    pred, target = loss.element, loss.target[loss.indices[0][0]]
    headers = [latex_expr(pred, style), latex_expr(target, style)]
    headers += [latex_expr(a, style) for a in sp.Add.make_args(loss.term)]
    headers.append(r"E_i")
    rows = [(y[k], t[k], *(c[k] for c in columns), sample[k]) for k in range(len(y))]
    return headers, rows


def table_points(loss: Loss):
    """``(x, value, gradient, label)`` of each row of the article's table: one sample's
    loss and gradient (n = 1), to mark on the plot; empty without a table."""
    found = article_table(loss)
    if found is None:
        return []
    points = []
    for k, (y, t, *_rest) in enumerate(found[1], 1):
        value = float(loss(np.array([y]), np.array([t])))
        grad = float(loss.grad(np.array([y]), np.array([t]))[0])
        points.append((y, value, grad, str(k)))
    return points
