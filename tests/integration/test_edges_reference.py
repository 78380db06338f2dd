"""The article's and the classic losses at their edges, against hand-written mpmath.

``tests/test_edges_mpmath.py`` builds its reference from each loss's own SymPy
definition, so it cannot see a wrong definition.  Here the reference is written out by
hand from the textbook formulas (the article's, 9cubed 2019, for SSE, BCE and CCE;
PyTorch's documentation for the logits forms, MSE and Huber), with their derivatives
derived by hand, and evaluated by mpmath at 50 digits and checked against 100 digits
(the inputs at their exact binary values).  Written so that mpmath does not cancel
either: ``1 - sigmoid(z)`` is ``sigmoid(-z)``, ``softmax_k - 1`` is minus the other
classes' sum.  Conventions (README, "Conventions of the article's losses"):
``0 log 0 = 0`` and ``0/0 = 0`` for a zero target's term; a probability of 0 or 1
against the opposite target gives ``+inf`` (and an infinite gradient).

Batches of several rows, with sample weights, every reduction, value, gradient and
Hessian, on the NumPy and the compiled backends.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import symloss

mp = mpmath.mpf


def _xlogy(t, y):
    return mp(0) if t == 0 else t * mpmath.log(y)


def _xdivy(t, y):
    return mp(0) if t == 0 else (t / y if y != 0 else mpmath.inf * mpmath.sign(t))


def _sigmoid(z):
    return 1 / (1 + mpmath.exp(-z))


# Each hand formula maps one sample (an element or a row, as mpf) to
# (value, gradient list, Hessian: list (diagonal) or list of lists (row block)).
def bce(y, t, **_):
    value = -(_xlogy(t, y) + _xlogy(1 - t, 1 - y))
    grad = -_xdivy(t, y) + _xdivy(1 - t, 1 - y)
    hess = _xdivy(t, y * y) + _xdivy(1 - t, (1 - y) ** 2)
    return value, grad, hess


def sse(y, t, **_):
    return (y - t) ** 2 / 2, y - t, mp(1)


def mse(y, t, **_):
    return (y - t) ** 2, 2 * (y - t), mp(2)


def huber(y, t, delta):
    r = y - t
    if abs(r) <= delta:
        return r * r / 2, r, mp(1)
    return delta * (abs(r) - delta / 2), delta * mpmath.sign(r), mp(0)


def bce_logits(z, t, pos_weight=1, smoothing=0):
    t = t * (1 - mp(smoothing)) + mp(smoothing) / 2
    p, q = _sigmoid(z), _sigmoid(-z)  # q = 1 - p without cancellation
    # -[w t log p + (1 - t) log q], log p = -log1p(e^-z)
    value = pos_weight * t * mpmath.log1p(mpmath.exp(-z)) + (1 - t) * mpmath.log1p(mpmath.exp(z))
    grad = (1 - t) * p - pos_weight * t * q
    return value, grad, (pos_weight * t + 1 - t) * p * q


def cce(row_y, row_t, **_):
    value = -sum(_xlogy(t, y) for y, t in zip(row_y, row_t))
    grad = [-_xdivy(t, y) for y, t in zip(row_y, row_t)]
    hess = [_xdivy(t, y * y) for y, t in zip(row_y, row_t)]  # diagonal: y_ij alone
    return value, grad, hess


def cce_logits(row_z, row_t, smoothing=0):
    m = len(row_z)
    row_t = [(1 - mp(smoothing)) * t + mp(smoothing) / m for t in row_t]
    top = max(row_z)
    e = [mpmath.exp(z - top) for z in row_z]
    total = sum(e)
    p = [x / total for x in e]
    rest = [sum(e[j] for j in range(m) if j != k) / total for k in range(m)]  # 1 - p_k
    lse = top + mpmath.log(total)
    value = -sum(t * (z - lse) for z, t in zip(row_z, row_t))
    s = sum(row_t)
    # d/dz_k = sum_j t_j (p_k - delta_jk), with p_k - 1 written as -rest_k
    grad = [sum(t * (p[k] if j != k else -rest[k]) for j, t in enumerate(row_t)) for k in range(m)]
    hess = [[s * (p[k] * rest[k] if k == l else -p[k] * p[l]) for l in range(m)] for k in range(m)]
    return value, grad, hess


ROW_WISE = {"cce", "cce_logits"}

# (loss name, options, hand formula, hand options, pred, target)
BCE_Y = [0.0, 0.0, 1e-12, 1e-12, 0.3, 1 - 1e-12, 1 - 1e-12, 1.0, 1.0]
BCE_T = [0.0, 0.0, 1.0, 0.0, 0.3, 1.0, 0.0, 1.0, 1.0]
LOGITS_1D = [1e4, -1e4, 30.0, -30.0, 0.0, 745.5, -745.5]
T_1D = [1.0, 1.0, 0.0, 0.3, 1.0, 0.0, 0.0]
P_ROWS = [[0.0, 1e-12, 1 - 1e-12], [1e-6, 1 - 1e-6, 0.0], [0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]
P_TARGETS = [[0.0, 0.0, 1.0], [0.3, 0.7, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]
Z_ROWS = [[1e4, -1e4, 0.0], [30.0, -30.0, 1e4], [-1e4, -1e4, -1e4 + 1.0], [0.5, -0.5, 2.0]]
Z_TARGETS = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]]

CASES = {
    "sse": ("sse", {}, sse, {}, [1e8, -1e8, 0.5, 3.0], [-1e8, 1e8, 0.5, -2.0]),
    "mse": ("mse", {}, mse, {}, [1e8, -1e8, 0.5, 3.0], [-1e8, 1e8, 0.5, -2.0]),
    "huber": ("huber", {"delta": 1e-6}, huber, {"delta": mp(1e-6)},
              [1e8, 0.5 + 1e-7, 0.5 - 3e-6, 3.0], [-1e8, 0.5, 0.5, -2.0]),
    "bce": ("bce", {}, bce, {}, BCE_Y, BCE_T),
    "bce_logits": ("bce_logits", {}, bce_logits, {}, LOGITS_1D, T_1D),
    "bce_logits-options": ("bce_logits", {"pos_weight": 3.0, "label_smoothing": 0.1},
                           bce_logits, {"pos_weight": 3, "smoothing": mp(0.1)},
                           LOGITS_1D, T_1D),
    "cce": ("cce", {}, cce, {}, P_ROWS, P_TARGETS),
    "cce_logits": ("cce_logits", {}, cce_logits, {}, Z_ROWS, Z_TARGETS),
    "cce_logits-smoothing": ("cce_logits", {"label_smoothing": 0.2}, cce_logits,
                             {"smoothing": mp(0.2)}, Z_ROWS, Z_TARGETS),
}  # fmt: skip


def _hand(case, weight, reduction):
    """(value, gradient, Hessian) as mpf arrays (object dtype), by the hand formulas."""
    _, _, hand, hand_kw, pred, target = CASES[case]
    n = len(pred)
    w = [mp(1)] * n if weight is None else [mp(float(x)) for x in weight]
    per, grads, hesses = [], [], []
    for k in range(n):
        if case in ("cce", "cce_logits", "cce_logits-smoothing"):
            v, g, h = hand([mp(x) for x in pred[k]], [mp(x) for x in target[k]], **hand_kw)
        else:
            v, g, h = hand(mp(pred[k]), mp(target[k]), **hand_kw)
        scale = w[k]
        per.append(scale * v if scale else mp(0))  # a weight of 0 zeroes even +inf
        grads.append(scale * np.array(g, dtype=object))
        hesses.append(scale * np.array(h, dtype=object))
    count = {"mean": n, "sum": 1, "none": 1}[reduction]
    value = np.array(per, dtype=object) if reduction == "none" else sum(per) / count
    return value, np.array(list(grads)) / count, np.array(list(hesses)) / count


def _reference(case, weight, reduction):
    """At 50 digits, and the same at 100 digits to within 1e-30 relative."""
    with mpmath.workdps(50):
        low = _hand(case, weight, reduction)
    with mpmath.workdps(100):
        high = _hand(case, weight, reduction)
    for a, b in zip(low, high):
        for x, y in zip(np.ravel(a), np.ravel(b)):
            if mpmath.isinf(y):
                assert x == y
            else:
                assert abs(x - y) <= mp(10) ** -30 * max(abs(y), mp(10) ** -300), "unstable"
    return high


def _check(got, ref, what):
    got = np.atleast_1d(np.asarray(got, dtype=float))
    ref = np.atleast_1d(np.asarray(ref, dtype=object))
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    big = mp(np.finfo(float).max)
    finite = [abs(r) for r in ref.ravel() if mpmath.isfinite(r) and abs(r) <= big]
    atol = 1e-15 * float(max(finite, default=0)) or 1e-300
    for idx in np.ndindex(ref.shape):
        r, g = ref[idx], got[idx]
        if mpmath.isinf(r) or abs(r) > big:
            assert np.isinf(g) and (g > 0) == (r > 0), f"{what}{idx}: {g!r}, expected {r}"
        else:
            assert np.isfinite(g), f"{what}{idx}: {g!r}, expected {mpmath.nstr(r, 17)}"
            err = abs(mp(float(g)) - r)
            assert err <= 1e-12 * abs(r) + atol, (
                f"{what}{idx}: {g!r}, expected {mpmath.nstr(r, 17)}"
            )


@pytest.fixture(params=["fused", "c"])
def backend(request, monkeypatch):
    if request.param == "c":
        request.getfixturevalue("backend_c")
    symloss.configure(backend=request.param)
    return request.param


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weight="])
@pytest.mark.parametrize("case", sorted(CASES))
def test_edges_match_the_hand_written_reference(case, weighted, reduction, backend):
    name, options, _, _, pred, target = CASES[case]
    pred, target = np.array(pred), np.array(target)
    n = len(pred)
    weight = np.linspace(0.5, 2.0, n) if weighted else None
    kw = {} if weight is None else {"weight": weight}
    L = symloss.get(name, reduction=reduction, **options)
    value, grad, hess = _reference(case, weight, reduction)
    with np.errstate(all="raise"):  # no floating-point trouble inside the kernels
        _check(L(pred, target, **kw), value, "value")
        _check(L.grad(pred, target, **kw), grad, "grad")
        _check(L.hess(pred, target, **kw), hess, "hess")
        v, g = L.value_and_grad(pred, target, **kw)
    _check(v, value, "value_and_grad's value")
    _check(g, grad, "value_and_grad's gradient")


@pytest.mark.parametrize("name, pred, target", [
    ("bce", [0.5, 0.0], [0.5, 1.0]),
    ("bce", [1.0, 0.5], [0.0, 0.5]),
    ("bce", [0.5, 1.0], [0.5, 0.3]),
    ("cce", [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], [[0.0, 0.0, 1.0], [0.2, 0.3, 0.5]]),
])  # fmt: skip
def test_probability_against_the_opposite_target_is_infinite(name, pred, target, backend):
    """The README's convention: +inf (PyTorch clamps the log at -100 instead); the
    gradient there is infinite too, by the hand formulas above."""
    pred, target = np.array(pred), np.array(target)
    case = {"bce": bce, "cce": cce}[name]
    L = symloss.get(name, reduction="sum")
    assert L(pred, target) == np.inf
    g = L.grad(pred, target)
    with mpmath.workdps(50):
        for idx in np.ndindex(pred.shape[:1]):
            args = (
                [mp(x) for x in np.atleast_1d(pred[idx])],
                [mp(x) for x in np.atleast_1d(target[idx])],
            )
            want = case(*args) if name == "cce" else case(args[0][0], args[1][0])
            want_g = np.atleast_1d(np.array(want[1], dtype=object))
            _check(np.atleast_1d(g[idx]), want_g, f"grad[{idx}]")
