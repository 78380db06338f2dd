"""The source article's three losses, and the two compositions with their activations.

Source: 9cubed, "Python - Deep learning - Loss functions" (2019-09-15), formulas copied
exactly in ``shared/ARTICLE.md``.  Sums are written with ``Add(..., evaluate=False)`` so
that the printed term order is the article's own.
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Interval, Rational, log

from .._calculus import Constraint
from .._core import Composition, Domain, Loss, register
from .._symbols import array, i, j, k, m, n, sigmoid, softmax

y, t, z = array("y"), array("t"), array("z")

ARTICLE = '9cubed, "Python - Deep learning - Loss functions", 2019-09-15.'

PROBABILITY = Domain(
    Interval.open(0, 1),
    Interval(0, 1),
    "probability in (0, 1); 0 and 1 give the limit, +inf where the loss is infinite",
)
LOGIT = Domain(Interval.open(-sp.oo, sp.oo), None, "finite real logit")
BINARY_TARGET = Domain(Interval(0, 1), None, "class 0 or 1 (soft labels in [0, 1] allowed)")
ONE_HOT_TARGET = Domain(Interval(0, 1), None, "one-hot row (probability rows allowed)")
ONE_HOT = Constraint(
    "one_hot",
    sp.Sum(t[i, j], (j, 1, m)),
    sp.S.One,
    "each target row sums to 1 (one-hot, or a probability distribution)",
)

sse = register(
    Loss(
        name="sum_squared_error",
        title="Sum of squared errors",
        term=Add(y[k], -t[k], evaluate=False) ** 2,
        scale=Rational(1, 2),
        reduction="sum",
        indices=((k, n),),
        pred=y,
        target=t,
        domains={"y": Domain(Interval(-sp.oo, sp.oo), None, "real")},
        aliases=("sse",),
        references=(ARTICLE,),
        conventions=(
            "Half the sum (not the mean) of squared residuals; the 1/2 cancels the 2 of "
            "the derivative, so the gradient is the residual y_k - t_k."
        ),
    )
)

bce = register(
    Loss(
        name="binary_cross_entropy",
        title="Binary cross-entropy",
        term=Add(t[i] * log(y[i]), (1 - t[i]) * log(1 - y[i]), evaluate=False),
        scale=sp.S.NegativeOne,
        indices=((i, n),),
        pred=y,
        target=t,
        domains={"y": PROBABILITY, "t": BINARY_TARGET},
        aliases=("bce",),
        references=(ARTICLE,),
        conventions=(
            "Mean over the n samples; natural log; t is the class (0 or 1), not one-hot. "
            "At y = 0 or 1 the convention 0 log 0 = 0 gives the finite limit; with the "
            "opposite target the loss is +inf (PyTorch clamps log at -100 instead)."
        ),
    )
)

cce = register(
    Loss(
        name="categorical_cross_entropy",
        title="Categorical cross-entropy",
        term=t[i, j] * log(y[i, j]),
        scale=sp.S.NegativeOne,
        indices=((i, n), (j, m)),
        pred=y,
        target=t,
        domains={"y": PROBABILITY, "t": ONE_HOT_TARGET},
        constraints=(ONE_HOT,),
        aliases=("cce",),
        references=(ARTICLE,),
        conventions=(
            "Mean over the n samples of the sum over the m classes; natural log; t one-hot "
            "(probability rows, e.g. label-smoothed, are accepted: each row must sum to 1)."
        ),
    )
)


def _substitute(expr, old, new):
    """``expr.xreplace({old: new})`` that keeps an authored (unevaluated) term order."""
    if expr == old:
        return new
    if not expr.args:
        return expr
    args = [_substitute(a, old, new) for a in expr.args]
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


def _compose(base: Loss, name: str, title: str, element, value, act: str, aliases, extra):
    return register(
        Loss(
            name=name,
            title=title,
            term=_substitute(base.term, element, value),
            scale=base.scale,
            reduction=base.reduction,
            indices=base.indices,
            pred=z,
            target=t,
            domains={"z": LOGIT, "t": base.domains["t"]},
            constraints=base.constraints,
            aliases=aliases,
            references=base.references + extra,
            conventions=base.conventions.split(";")[0]
            + f"; the prediction is {act} of the logits, evaluated stably "
            "(softplus / log-sum-exp).",
            composition=Composition(base.name, element, value, act),
        )
    )


bce_logits = _compose(
    bce,
    "sigmoid_binary_cross_entropy",
    "Binary cross-entropy on logits (sigmoid)",
    y[i],
    sigmoid(z[i]),
    "sigmoid",
    ("bce_logits",),
    ("PyTorch: torch.nn.functional.binary_cross_entropy_with_logits.",),
)

cce_logits = _compose(
    cce,
    "softmax_cross_entropy",
    "Categorical cross-entropy on logits (softmax)",
    y[i, j],
    softmax(z, i, j),
    "softmax",
    ("cce_logits",),
    ("PyTorch: torch.nn.functional.cross_entropy (probability targets).",),
)
