"""The edges of every input check, exactly (issue 20).

The row-sum tolerance could be loosened from 1e-9 m to 1e-2 m without a test noticing:
only a row summing to 0.9 was tested.  Here each check is probed on both sides of its
boundary:

* target rows of the one-hot losses: off by 1e-6 is refused, a row that sums to 1 up to
  float64 rounding (0.1 ten times, normalised random rows, label-smoothed rows, up to
  1000 classes) is accepted, on the NumPy and the compiled backends and over blocks;
* every input domain of every loss, written out by hand below from the README and the
  loss's stated conventions: a closed end is accepted and the next float outside it is
  refused; an open end is refused and the next float inside it is accepted; infinite
  ends refuse +-inf and NaN and accept the largest finite float;
* hyperparameter domains, sample weights and integer labels, the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

import symloss

INF = np.inf
TINY = 5e-324  # the smallest positive float64 (subnormal)
BIG = np.finfo(float).max
ONE_HOT_LOSSES = [
    "categorical_cross_entropy",
    "softmax_cross_entropy",
    "categorical_hinge",
    "multi_margin",
    "poly1_cross_entropy",
    "softmax_focal",
]


@pytest.fixture(params=["fused", "c"])
def backend(request, monkeypatch):
    if request.param == "c":
        request.getfixturevalue("backend_c")
    symloss.configure(backend=request.param)
    return request.param


def _pred(name, shape):
    return np.full(shape, 0.3)  # inside every prediction domain (probabilities too)


# ------------------------------------------------------------------ row sums
@pytest.mark.parametrize("name", ONE_HOT_LOSSES)
@pytest.mark.parametrize("m", [2, 3, 10, 100])
@pytest.mark.parametrize("off", [-1e-6, 1e-6])
def test_rows_off_by_1e_6_are_refused(name, m, off, backend):
    L = symloss.get(name)
    t = np.full((4, m), 1.0 / m)
    t[2] = 0.0
    t[2, :2] = 0.5, 0.5 + off  # row 2 sums to 1 -+ 1e-6 (every element inside [0, 1])
    with pytest.raises(ValueError, match=r"target row 2 sums to .*each target row sums to 1"):
        L(_pred(name, t.shape), t)
    with pytest.raises(ValueError, match="target row 2 sums to"):
        L.grad(_pred(name, t.shape), t)


def _rounded_rows(m, rng):
    """Rows that sum to 1 up to float64 rounding only."""
    rows = [np.full(m, 1.0 / m)]  # 0.1 * 10 = 0.9999999999999999
    w = rng.uniform(1e-3, 1.0, size=(8, m))
    rows += list(w / w.sum(axis=1, keepdims=True))
    eps = 0.1  # label-smoothed one-hot rows, as PyTorch's (1 - eps) t + eps/m
    rows += list((1 - eps) * np.eye(m)[rng.integers(0, m, 4)] + eps / m)
    return np.array(rows)


@pytest.mark.parametrize("name", ONE_HOT_LOSSES)
@pytest.mark.parametrize("m", [3, 10, 1000])
def test_rows_summing_to_one_within_rounding_are_accepted(name, m, backend):
    t = _rounded_rows(m, np.random.default_rng(m))
    assert np.any(t.sum(axis=1) != 1.0)  # some really are off by rounding
    L = symloss.get(name)
    pred = _pred(name, t.shape)
    assert np.isfinite(L(pred, t))
    assert np.all(np.isfinite(L.grad(pred, t)))


def test_row_check_holds_over_blocks_and_names_the_row(backend, monkeypatch):
    """Blocks of 64 elements on worker threads: the offending row is named in the
    caller's numbering, and rounding-only rows elsewhere pass."""
    symloss.configure(block_elements=64)
    t = _rounded_rows(10, np.random.default_rng(0))
    t = np.concatenate([t] * 20)
    L = symloss.get("cce_logits")
    z = np.zeros_like(t)
    L.value_and_grad(z, t)
    t[201] = np.eye(10)[3] * (1 - 1e-6)
    with pytest.raises(ValueError, match="target row 201 sums to 0.999999,"):
        L.value_and_grad(z, t)


@pytest.mark.parametrize("name", ONE_HOT_LOSSES)
@pytest.mark.parametrize("pred_dtype", [np.float64, np.float32])
def test_rows_are_held_to_the_precision_they_were_given_in(name, pred_dtype, backend):
    """float32 rows hold elements rounded to float32: thirds sum to 1 + 3e-8, outside
    float64's 1e-9 per class but inside float32's 8 ulps of 1 (9.5e-7) per class.  With
    float64 or float32 predictions they are accepted, as the same numbers given in
    float64 are not; a float32 row off by 2e-6 per class is refused either way."""
    L = symloss.get(name)
    t32 = np.full((4, 3), 1 / 3, dtype=np.float32)
    assert t32.astype(np.float64).sum(axis=1)[0] == 1.0000000298023224  # by hand: 3 fl32(1/3)
    pred = _pred(name, t32.shape).astype(pred_dtype)
    assert np.isfinite(L(pred, t32)) and np.all(np.isfinite(L.grad(pred, t32)))
    if pred_dtype == np.float64:
        with pytest.raises(ValueError, match="target row 0 sums to 1.0000000298"):
            L(pred, t32.astype(np.float64))
    off = t32.copy()
    off[2, 0] += np.float32(6e-6)  # 2e-6 per class over the row's 3 classes
    with pytest.raises(ValueError, match="target row 2 sums to"):
        L(pred, off)


# ------------------------------------------------------------------ input domains
# Hand-written from the README ("Conventions of the article's losses": probabilities at
# exactly 0 and 1 are accepted, logits must be finite) and each loss's conventions
# (`symloss show NAME`): array -> (lower end, accepted?, upper end, accepted?).
# None for a finite set of labels (listed in LABELS below).
REAL = (-INF, False, INF, False)
PROB = (0.0, True, 1.0, True)
POSITIVE = (0.0, False, INF, False)
NONNEGATIVE = (0.0, True, INF, False)
SIGN = None
DOMAINS = {
    "binary_cross_entropy": {"y": PROB, "t": PROB},
    "categorical_cross_entropy": {"y": PROB, "t": PROB},
    "categorical_hinge": {"y": REAL, "t": PROB},
    "cosine_distance": {"y": REAL, "t": REAL},
    "dice": {"y": PROB, "t": PROB},
    "exponential": {"y": REAL, "t": SIGN},
    "gamma_deviance": {"y": POSITIVE, "t": POSITIVE},
    "gaussian_nll": {"y": REAL, "t": REAL, "var": NONNEGATIVE},
    "generalized_kl": {"y": NONNEGATIVE, "t": NONNEGATIVE},
    "hinge": {"y": REAL, "t": SIGN},
    "huber": {"y": REAL, "t": REAL},
    "kl_divergence": {"y": REAL, "t": PROB},
    "log_cosh": {"y": REAL, "t": REAL},
    "mean_absolute_error": {"y": REAL, "t": REAL},
    "mean_absolute_percentage_error": {"y": REAL, "t": REAL},
    "mean_squared_error": {"y": REAL, "t": REAL},
    "mean_squared_log_error": {"y": (-1.0, False, INF, False), "t": (-1.0, False, INF, False)},
    "multi_margin": {"y": REAL, "t": PROB},
    "multilabel_soft_margin": {"z": REAL, "t": PROB},
    "pinball": {"y": REAL, "t": REAL},
    "poisson_nll": {"y": REAL, "t": NONNEGATIVE},
    "poly1_cross_entropy": {"z": REAL, "t": PROB},
    "sigmoid_binary_cross_entropy": {"z": REAL, "t": PROB},
    "sigmoid_focal": {"z": REAL, "t": PROB},
    "smooth_l1": {"y": REAL, "t": REAL},
    "soft_margin": {"z": REAL, "t": SIGN},
    "softmax_cross_entropy": {"z": REAL, "t": PROB},
    "softmax_focal": {"z": REAL, "t": PROB},
    "squared_hinge": {"y": REAL, "t": SIGN},
    "sum_squared_error": {"y": REAL, "t": REAL},
    "tversky": {"y": PROB, "t": PROB},
    "tweedie": {"y": POSITIVE, "t": NONNEGATIVE},
}
LABELS = (-1.0, 1.0)  # the finite set of the sign-label losses


def test_the_table_covers_the_registry():
    assert sorted(DOMAINS) == symloss.names()


def _interior(domain):
    if domain is SIGN:
        return 1.0
    lo, _, hi, _ = domain
    if np.isfinite(lo) and np.isfinite(hi):
        return (lo + hi) / 2 if domain is not PROB else 0.3
    if np.isfinite(lo):
        return lo + 0.5
    return 0.5


def _batch(L, name):
    """Interior inputs: (arrays by name, shape); one-hot rows for the row-constrained."""
    two_d = len(L.input_indices) == 2
    shape = (2, 3) if two_d else (3,)
    arrays = {k: np.full(shape, _interior(d)) for k, d in DOMAINS[name].items()}
    if name in ONE_HOT_LOSSES:
        arrays["t"] = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return arrays


def _call(L, arrays):
    pred, target = arrays[str(L.pred.label)], arrays["t"]
    extra = {k: v for k, v in arrays.items() if k not in (str(L.pred.label), "t")}
    L(pred, target, **extra)
    L.grad(pred, target, **extra)


def _probes(domain):
    """(value, accepted?) on both sides of each end."""
    if domain is SIGN:
        return [(-1.0, True), (1.0, True), (0.0, False), (np.nextafter(1.0, 2.0), False),
                (np.nextafter(-1.0, 0.0), False), (np.nan, False)]  # fmt: skip
    lo, lo_in, hi, hi_in = domain
    out = [(np.nan, False)]
    for end, accepted, inward, outward in ((lo, lo_in, INF, -INF), (hi, hi_in, -INF, INF)):
        if np.isinf(end):
            out += [(end, False), (np.copysign(BIG, end), True)]
            continue
        out.append((end, accepted))
        if accepted:
            out.append((np.nextafter(end, outward), False))
        else:
            out.append((np.nextafter(end, inward), True))
    return out


CASES = [
    pytest.param(name, array, value, ok, id=f"{name}-{array}={value!r}-{'ok' if ok else 'refused'}")
    for name, arrays in DOMAINS.items()
    for array, domain in arrays.items()
    for value, ok in _probes(domain)
]


@pytest.mark.parametrize("name, array, value, accepted", CASES)
def test_domain_edges(name, array, value, accepted):
    L = symloss.get(name)
    arrays = _batch(L, name)
    where = (0, 1) if arrays[array].ndim == 2 else (1,)
    if name in ONE_HOT_LOSSES and array == "t":
        where = (0, 0) if value >= 0.5 else (0, 1)  # keep the row a one-hot row
    arrays[array][where] = value
    if accepted:
        with np.errstate(all="ignore"):
            _call(L, arrays)  # no ValueError (the value may be inf at an edge)
    else:
        with pytest.raises(ValueError, match="outside the domain"):
            _call(L, arrays)


# ------------------------------------------------------------------ hyperparameters
# name, option, values accepted, values refused (each loss's documented domain).
PARAMS = [
    ("huber", "delta", [TINY, 1e300], [0.0, -TINY, INF, np.nan]),
    ("smooth_l1", "beta", [TINY], [0.0, -1.0]),
    ("pinball", "quantile", [0.0, 1.0], [-TINY, np.nextafter(1.0, 2.0)]),
    ("sigmoid_focal", "alpha", [0.0, 1.0], [-TINY, np.nextafter(1.0, 2.0)]),
    ("sigmoid_focal", "gamma", [0.0, 1e3], [-TINY]),
    ("softmax_focal", "alpha", [0.0, 10.0], [-TINY]),
    ("poly1_cross_entropy", "epsilon", [-1.0, 1e6], [np.nextafter(-1.0, -2.0)]),
    ("multi_margin", "margin", [0.0], [-TINY]),
    ("dice", "smooth", [0.0], [-TINY]),
    ("tversky", "beta", [0.0], [-TINY]),
    ("tweedie", "power",
     [np.nextafter(1.0, 2.0), np.nextafter(2.0, 1.0), np.nextafter(2.0, 3.0), 50.0],
     [1.0, 2.0, np.nextafter(1.0, 0.0), 0.0]),
    ("gaussian_nll", "eps", [TINY], [0.0]),
    ("mean_absolute_percentage_error", "eps", [TINY], [0.0]),
    ("poisson_nll", "eps", [TINY], [0.0]),
    ("cosine_distance", "eps", [0.0], [-TINY]),
    ("bce_logits", "label_smoothing", [0.0, 1.0], [-TINY, np.nextafter(1.0, 2.0)]),
    ("bce_logits", "pos_weight", [0.0, 1e6], [-TINY, INF]),
    ("cce_logits", "label_smoothing", [0.0, 1.0], [-TINY, np.nextafter(1.0, 2.0)]),
]  # fmt: skip


@pytest.mark.parametrize("name, option, good, bad", PARAMS, ids=[f"{p[0]}-{p[1]}" for p in PARAMS])
def test_hyperparameter_edges(name, option, good, bad):
    for value in good:
        assert symloss.get(name, **{option: value}).param_values[option] == value
    for value in bad:
        with pytest.raises(ValueError, match=f"{option} = .* is outside"):
            symloss.get(name, **{option: value})


def test_class_weight_edges():
    for name in ("cce_logits", "multilabel_soft_margin", "multi_margin"):
        assert symloss.get(name, class_weight=[0.0, 1.0]).param_values["class_weight"] == (0.0, 1.0)
        for bad in ([-TINY, 1.0], [INF, 1.0], [np.nan, 1.0]):
            with pytest.raises(ValueError, match="class_weight must"):
                symloss.get(name, class_weight=bad)


# ------------------------------------------------------------------ weights and labels
def test_sample_weight_edges():
    L = symloss.get("bce_logits")
    z, t = np.zeros(3), np.array([0.0, 1.0, 1.0])
    for ok in (0.0, TINY, BIG):
        L.grad(z, t, weight=np.array([1.0, ok, 1.0]))
    for bad in (-TINY, INF, -INF, np.nan):
        with pytest.raises(ValueError, match="weights must be finite and non-negative"):
            L.grad(z, t, weight=np.array([1.0, bad, 1.0]))


@pytest.mark.parametrize("name", ONE_HOT_LOSSES)
def test_label_edges(name):
    L = symloss.get(name)
    pred = _pred(name, (3, 4))
    L(pred, np.array([0, 3, 1]))  # 0 and m - 1 are classes
    for bad in (4, -1):
        with pytest.raises(
            ValueError, match=rf"label {bad} at row 1 is not a class index in \[0, 4\)"
        ):
            L(pred, np.array([0, bad, 1]))
    ignored = np.array([0, -100, 1])
    if L.ignore_index == -100:  # PyTorch's default, for the cross-entropy
        L(pred, ignored)
    else:
        with pytest.raises(ValueError, match="label -100 at row 1"):
            L(pred, ignored)
