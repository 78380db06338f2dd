"""Issue 15, canonicalisation: written-out sigmoid, softmax, softplus and log-sum-exp
become the named functions the catalog uses, so a pasted formula derives like the
catalog's loss.  References: NumPy/SciPy (``scipy.special.expit``, ``log_softmax``)
and the hand derivation d/dz[-t log sigma(z) - (1-t) log(1-sigma(z))] = sigma(z) - t."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from scipy.special import expit, log_softmax, softmax

import symloss
from symloss.latex_in.canonical import canonical_activations
from symloss.symbols import array, index, logsumexp, m, n, sigmoid
from symloss.symbols import softmax as softmax_fn

z, t, i, j = array("z"), array("t"), index("i"), index("j")

# Written-out binary cross-entropy on logits (Goodfellow et al. 2016, eq. 6.19 with
# sigma written out as in Bishop PRML eq. 4.59), in three spellings of the sigmoid.
BCE_WRITTEN = [
    r"-\frac{1}{N}\sum_{i=1}^{N}\left(t_i\log\frac{1}{1+e^{-z_i}}"
    r" + (1 - t_i)\log\left(1 - \frac{1}{1+e^{-z_i}}\right)\right)",
    r"-\frac{1}{N}\sum_{i=1}^{N}\left(t_i\log\left((1+\exp(-z_i))^{-1}\right)"
    r" + (1 - t_i)\log\left(1 - (1+\exp(-z_i))^{-1}\right)\right)",
    r"-\frac{1}{N}\sum_{i=1}^{N}\left(t_i\log\frac{e^{z_i}}{1+e^{z_i}}"
    r" + (1 - t_i)\log\frac{1}{1+e^{z_i}}\right)",
]
# Softmax cross-entropy written out (Bishop PRML eq. 4.104 inside eq. 4.108).
CCE_WRITTEN = [
    r"-\frac{1}{n}\sum_i\sum_j t_{ij}\log\frac{e^{z_{ij}}}{\sum_k e^{z_{ik}}}",
    r"-\frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{K} t_{ij}\left(z_{ij} - \log\sum_{k=1}^{K} e^{z_{ik}}\right)",
]


def _bce_ref(z_, t_):
    return -np.mean(t_ * np.log(expit(z_)) + (1 - t_) * np.log(expit(-z_)))


@pytest.mark.parametrize("tex", BCE_WRITTEN)
def test_written_out_sigmoid_bce_derives_like_the_catalog(tex):
    L = symloss.from_latex(tex)
    assert sp.simplify(L.gradient() - (sigmoid(z[i]) - t[i]) / n) == 0
    assert symloss.identify(L) == "sigmoid_binary_cross_entropy"
    logits, labels = np.array([1e4, -1e4, 0.0, 3.0, -2.5]), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    value, grad = L(logits, labels), L.grad(logits, labels)
    # at |z| = 1e4 the loss is |z|/n per sample (log(1 + e^{1e4}) = 1e4 to float64)
    want = (1e4 + 1e4 + np.log(2) + np.log1p(np.exp(3.0)) + np.log1p(np.exp(2.5))) / 5
    assert value == pytest.approx(want, rel=1e-13)
    np.testing.assert_allclose(grad, (expit(logits) - labels) / 5, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("tex", CCE_WRITTEN)
def test_written_out_softmax_cross_entropy_is_cce_logits(tex):
    L = symloss.from_latex(tex)
    assert [c.name for c in L.constraints] == ["one_hot"]  # sum_j t_ij = 1, named
    assert L.gradient() == (softmax_fn(z, i, j) - t[i, j]) / n
    assert L.gradient() == symloss.get("cce_logits").gradient()
    assert symloss.identify(L) == "softmax_cross_entropy"
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (5, 4))
    logits[0, 0], logits[1, 2] = 1e4, -1e4
    labels = np.eye(4)[rng.integers(0, 4, 5)]
    assert L(logits, labels) == pytest.approx(
        -np.mean(np.sum(labels * log_softmax(logits, -1), -1)), rel=1e-13
    )
    np.testing.assert_allclose(
        L.grad(logits, labels), (softmax(logits, -1) - labels) / 5, rtol=1e-12, atol=1e-300
    )


def test_softplus_and_logsumexp_written_out():
    assert canonical_activations(sp.log(1 + sp.exp(-t[i] * z[i]))) == -sp.log(sigmoid(t[i] * z[i]))
    assert canonical_activations(sp.log(1 + sp.exp(z[i]))) == -sp.log(1 - sigmoid(z[i]))
    k = index("k")
    assert canonical_activations(sp.log(sp.Sum(sp.exp(z[i, k]), (k, 1, m)))) == logsumexp(z, i)
    # soft margin as ESL writes it (Table 10.2), on logits: the catalog's soft_margin
    L = symloss.from_latex(r"\frac{1}{N}\sum_{i=1}^{N}\log\left(1 + e^{-t_i z_i}\right)")
    assert symloss.identify(L) == "soft_margin"


def test_not_a_sigmoid_is_left_alone():
    # 1 + 2 e^{-z} is not the sigmoid's denominator; a row sum over the samples' index
    # is not a softmax's normaliser
    e = 1 / (1 + 2 * sp.exp(-z[i]))
    assert canonical_activations(e) == e
    k = index("k")
    s = sp.exp(z[i, j]) / sp.Sum(sp.exp(z[k, j]), (k, 1, n))
    assert not canonical_activations(s).has(softmax_fn)
