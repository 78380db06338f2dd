"""Cosine distance, Dice and Tversky: per-sample losses over vectors (row sums in the term)."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from shared import reference

import symloss

COUPLED = ("cosine_distance", "dice", "tversky")

# Rows for the cosine: a generic pair, an antiparallel pair and a zero prediction.
A = np.array([[1.0, 2.0, -0.5], [0.3, -0.2, 0.9], [0.0, 0.0, 0.0]])
B = np.array([[0.5, 1.5, 1.0], [-0.3, 0.2, -0.9], [1.0, -1.0, 2.0]])


def _opaque_sums(expr: sp.Expr) -> sp.Expr:
    """*expr* with its row sums split into sums of single products, as plain symbols.

    ``sum_k y (1 - t)`` becomes ``S[y] - S[t y]``: sums of the same products match,
    so ``cancel`` decides identities between ratios of row sums.
    """
    expr = sp.expand(expr)  # splits each sum of a sum into sums of its terms

    def symbol(s: sp.Sum) -> sp.Expr:
        coeff, body = s.function.as_coeff_Mul()
        return coeff * sp.Symbol(f"S[{body}, {s.limits}]")

    return sp.cancel(expr.replace(lambda e: isinstance(e, sp.Sum), symbol))


def _bind(loss: symloss.Loss, **values) -> sp.Expr:
    """The loss's term with hyperparameters replaced by values (symbols or numbers)."""
    symbols = {p.name: p.symbol for p in loss.params}
    return loss.term.doit().xreplace({symbols[k]: v for k, v in values.items()})


# ---------------------------------------------------------------------- cosine
def test_cosine_distance_matches_pytorch_cosine_embedding_loss():
    L = symloss.get("cosine_distance")
    assert L is symloss.get("cosine") and L.reduction == "mean"
    # PyTorch 2.13.0 (CPU, float64): F.cosine_embedding_loss(A, B, ones(3), reduction="none").
    expected = [0.30014578777640144, 1.9999999999989362, 1.0]
    np.testing.assert_allclose(symloss.get("cosine", reduction="none")(A, B), expected, rtol=1e-15)
    # ... and the autograd gradient of its mean (rows 0 and 2; row 1 is pure rounding).
    grad = L.grad(A, B)
    np.testing.assert_allclose(
        grad[0], [0.005554398509702636, -0.02777199254857242, -0.09997917317479554], rtol=1e-13
    )
    assert abs(grad[1]).max() < 1e-12
    # At the zero row the gradient is -t/(n sqrt(eps) |t|): PyTorch's C++ EPSILON is the
    # float 1e-12, i.e. 9.999999960041972e-13 as a double, visible at 2e-9 here.
    np.testing.assert_allclose(grad[2], -B[2] / (3 * 1e-6 * np.sqrt(6 + 1e-12)), rtol=1e-13)
    torch_eps = symloss.get("cosine_distance", eps=float(np.float32(1e-12)))
    np.testing.assert_allclose(
        torch_eps.grad(A, B)[2],
        [-136082.76375982293, 136082.76375982293, -272165.52751964587],
        rtol=1e-14,
    )


def test_cosine_hessian_block_matches_pytorch():
    H = symloss.get("cosine_distance").hess(A, B)
    assert H.shape == (3, 3, 3)
    np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), rtol=1e-13, atol=1e-18)
    # PyTorch 2.13.0: torch.autograd.functional.hessian of the mean loss, block of row 0.
    expected = [
        [0.03385538139252318, -0.01375374869070091, 0.02380456504161204],
        [-0.013753748690700904, 0.03173942005550529, 0.04390619774341739],
        [0.02380456504161204, 0.043906197743417384, 0.023275574707357576],
    ]
    np.testing.assert_allclose(H[0], expected, rtol=1e-12)


def test_cosine_with_eps_zero_is_optax_cosine_distance():
    L = symloss.get("cosine_distance", eps=0, reduction="none")
    y, t = A[:2], B[:2]
    # optax.losses.cosine_distance with epsilon=0: 1 - <y, t> / (|y| |t|).
    expected = 1 - (y * t).sum(1) / (np.linalg.norm(y, axis=1) * np.linalg.norm(t, axis=1))
    np.testing.assert_allclose(L(y, t), expected, rtol=1e-14)
    assert np.isnan(L(np.zeros((1, 2)), np.ones((1, 2)))[0])  # 0/0, as optax


def test_cosine_is_scale_invariant_and_bounded():
    # eps = 0: with eps > 0 rescaling moves the value by O(eps / |t|^2).
    L = symloss.get("cosine_distance", eps=0.0, reduction="none")
    rng = np.random.default_rng(0)
    y, t = rng.normal(size=(50, 6)), rng.normal(size=(50, 6))
    v = L(y, t)
    assert np.all((v >= 0) & (v <= 2))
    np.testing.assert_allclose(L(1e3 * y, 1e-2 * t), v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("scale", [1e-150, 1e-3, 1.0, 1e50, 1e100])
def test_cosine_at_extremes_matches_mpmath(scale):
    # Entries up to about 1e100: beyond, the gradient's (sum_k y_k^2)^(3/2) overflows
    # (the value itself holds up to about 1e150, as PyTorch's).
    L = symloss.get("cosine_distance", reduction="sum")
    y = np.array([[0.3, -1.2, 2.0]]) * scale
    t = np.array([[1.0, 0.5, -0.25]])
    eps = 1e-12

    def value(*a):
        ys, ts = a[:3], a[3:]
        dot = mpmath.fsum(p * q for p, q in zip(ys, ts))
        aa = mpmath.fsum(p * p for p in ys) + eps
        bb = mpmath.fsum(q * q for q in ts) + eps
        return 1 - dot / mpmath.sqrt(aa * bb)

    def grad(c, *a):
        ys, ts = a[:3], a[3:]
        dot = mpmath.fsum(p * q for p, q in zip(ys, ts))
        aa = mpmath.fsum(p * p for p in ys) + eps
        bb = mpmath.fsum(q * q for q in ts) + eps
        return (ys[c] * dot - aa * ts[c]) / (mpmath.sqrt(bb) * aa**1.5)

    args = (*y[0], *t[0])
    assert L(y, t) == pytest.approx(reference(value, *args), rel=1e-13)
    expected = [reference(lambda *a, c=c: grad(c, *a), *args) for c in range(3)]
    np.testing.assert_allclose(L.grad(y, t)[0], expected, rtol=1e-12)


# ---------------------------------------------------------------------- dice, tversky
Y = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
T = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


def test_dice_values_by_hand():
    # Row by row, with smooth s = 1: (2*1 + 1)/(1 + 1 + 1) = 1 -> 0;
    # (2*0.5 + 1)/(1 + 2 + 1) = 1/2 -> 1/2; empty row: (0 + 1)/(0 + 0 + 1) = 1 -> 0.
    L = symloss.get("dice", reduction="none")
    np.testing.assert_allclose(L(Y, T), [0.0, 0.5, 0.0], atol=1e-15)
    assert symloss.get("dice")(Y, T) == pytest.approx(1 / 6)
    # smooth = 0: the empty row is 0/0.
    with np.errstate(invalid="ignore"):
        assert np.isnan(symloss.get("dice", smooth=0, reduction="none")(Y, T)[2])


def test_dice_over_the_whole_batch_is_the_loss_of_one_flattened_row():
    L = symloss.get("dice", smooth=0)
    # Whole-batch Dice (keras.losses.Dice without its 1e-7): 1 - 2*1.5/(2 + 3).
    assert L(Y.reshape(1, -1), T.reshape(1, -1)) == pytest.approx(1 - 3 / 5)


def test_tversky_values_by_hand():
    L = symloss.get("tversky", alpha=0.3, beta=0.7, smooth=0, reduction="none")
    # Row 1: TP = 0.5, FP = 0.5, FN = 1.5 -> 1 - 0.5/(0.5 + 0.15 + 1.05).
    assert L(Y[1:2], T[1:2])[0] == pytest.approx(1 - 0.5 / 1.7)
    assert L.param_values == {"alpha": 0.3, "beta": 0.7, "smooth": 0.0}


def test_tversky_at_one_half_is_dice_with_twice_the_smoothing():
    dice, tversky = symloss.get("dice"), symloss.get("tversky")
    s = sp.Symbol("s", positive=True)
    half = sp.Rational(1, 2)
    # The brief's "same smoothing" holds only at s = 0: (TP + s)/((Σy + Σt)/2 + s) is
    # (2 TP + 2s)/(Σy + Σt + 2s).  Proof, with the row sums as symbols:
    tv = _opaque_sums(_bind(tversky, alpha=half, beta=half, smooth=s))
    assert sp.simplify(tv - _opaque_sums(_bind(dice, smooth=2 * s))) == 0
    assert sp.simplify(tv - _opaque_sums(_bind(dice, smooth=s))) != 0
    tv0 = _opaque_sums(_bind(tversky, alpha=half, beta=half, smooth=0))
    assert sp.simplify(tv0 - _opaque_sums(_bind(dice, smooth=0))) == 0
    # ... and numerically, through the kernels.
    rng = np.random.default_rng(3)
    y, t = rng.random((6, 5)), (rng.random((6, 5)) < 0.4).astype(float)
    assert symloss.get("tversky", smooth=0.5)(y, t) == pytest.approx(
        symloss.get("dice", smooth=1.0)(y, t), rel=1e-14
    )


def test_tversky_at_one_is_the_jaccard_loss():
    tversky = symloss.get("tversky")
    i, k, m = symloss.index("i"), symloss.index("k"), symloss.m
    row = {
        "tp": sp.Sum(tversky.pred[i, k] * tversky.target[i, k], (k, 1, m)),
        "y": sp.Sum(tversky.pred[i, k], (k, 1, m)),
        "t": sp.Sum(tversky.target[i, k], (k, 1, m)),
    }
    eps = next(p.symbol for p in tversky.params if p.name == "smooth")
    jaccard = 1 - (row["tp"] + eps) / (row["y"] + row["t"] - row["tp"] + eps)
    assert sp.simplify(_opaque_sums(_bind(tversky, alpha=1, beta=1)) - _opaque_sums(jaccard)) == 0


def test_perfect_overlap_gives_zero_and_hyperparameters_are_validated():
    t = np.array([[1.0, 0.0, 1.0, 1.0]])
    for name in ("dice", "tversky"):
        assert symloss.get(name, smooth=0)(t, t) == 0.0
    with pytest.raises(ValueError, match="smooth"):
        symloss.get("dice", smooth=-1)
    with pytest.raises(TypeError, match="alpha, beta"):
        symloss.get("tversky", gamma=1)


# ---------------------------------------------------------------------- all three
@pytest.mark.parametrize("name", COUPLED)
def test_hessian_is_a_symmetric_block_per_sample(name):
    L = symloss.get(name)
    rng = np.random.default_rng(1)
    y, t = rng.uniform(0.05, 0.95, (4, 5)), (rng.random((4, 5)) < 0.5).astype(float)
    H = L.hess(y, t)
    assert not L.separable and H.shape == (4, 5, 5)
    np.testing.assert_allclose(H, np.swapaxes(H, 1, 2), rtol=1e-12, atol=1e-15)


def _reducible_sums(expr: sp.Expr) -> list[sp.Sum]:
    """Sums a derivation should have evaluated: over a delta, or constant in the index."""
    return [
        s
        for s in expr.atoms(sp.Sum)
        if s.has(sp.KroneckerDelta) or any(v not in s.function.free_symbols for v, *_ in s.limits)
    ]


@pytest.mark.parametrize("name", COUPLED)
def test_derivatives_are_closed_forms_over_row_sums(name):
    L = symloss.get(name)
    row = L.indices[0][0]
    for expr in (L.gradient(), L.hessian()):
        assert not _reducible_sums(expr), expr
        assert not expr.has(sp.Piecewise)
        for s in expr.atoms(sp.Sum):  # only sums over the row of the same sample
            ((k, lo, hi),) = s.limits
            assert (lo, hi) == (1, symloss.m) and k not in (row, L.hessian_index)
    assert not L.gradient().has(sp.KroneckerDelta)


def test_gradients_read_as_expected():
    cos = symloss.get("cosine_distance").latex(part="gradient")
    assert cos.startswith(r"\frac{\partial E}{\partial y_{ij}} = \frac{y_{ij} \sum_{k=1}^{m}")
    dice = symloss.get("dice").latex()
    assert r"1 - \frac{2 \sum_{k=1}^{m} y_{ik} t_{ik} + \epsilon}" in dice
    tversky = symloss.get("tversky").latex(part="gradient")
    # The row sums keep their authored form: sum_k y (1 - t) is never split into sum_k -y.
    assert r"\sum_{k=1}^{m} \left(1 - t_{ik}\right) y_{ik}" in tversky
    assert r"\sum_{k=1}^{m} - " not in tversky
    hess = symloss.get("cosine_distance").latex(part="hessian")
    assert r"\partial y_{ij} \partial y_{il}" in hess and r"\delta_{j l}" in hess
