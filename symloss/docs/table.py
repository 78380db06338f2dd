"""The article's example table, for any separable loss: each addend of the summand per sample."""

from __future__ import annotations

import numpy as np
import sympy as sp

from symloss.core.loss import Loss
from symloss.numeric import evaluate
from symloss.numeric.kernel import Kernel
from symloss.numeric.stabilize import stabilize
from symloss.printing.printers import pretty


def per_sample_terms(loss: Loss, pred: np.ndarray, target: np.ndarray):
    """Headers and values of each authored addend of the summand, sample by sample.

    For binary cross-entropy these are the article's columns ``t_i log(y_i)`` and
    ``(1 - t_i) log(1 - y_i)``; the value of a zero-weighted log term is 0 (its limit).
    """
    if not loss.separable or len(loss.indices) != 1:
        raise ValueError(f"{loss.name}: the table needs a loss that is a single sum over samples")
    batch = evaluate.prepare(loss, pred, target, None, {})
    arrays, sizes = batch.arrays, batch.sizes
    addends = sp.Add.make_args(loss.term)
    headers, columns = [], []
    for a in addends:
        kernel = Kernel(stabilize(a.doit(), frozenset({loss.target})), loss.indices)
        values = np.broadcast_to(kernel(arrays, sizes), batch.shape).astype(np.float64)
        headers.append(pretty(a).replace("⋅", " "))
        columns.append(values + 0.0)
    return headers, columns
