"""``Loss.to_jax()``: every catalog loss against symloss's NumPy path, under jax.jit.

The NumPy path is the reference (tests/integration/test_edges_mpmath.py holds it to
mpmath at the same edges).  float64 needs JAX's x64 mode, switched on for this module's
tests by a fixture and restored after them (JAX's default is float32).  Without jax
these tests skip, except where ``SYMLOSS_REQUIRE_JAX=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LOSSES, Case, registry_params, require
from fw_cases import (
    close32,
    edge_cases,
    hessian_entries,
    one_hot,
    option_cases,
    random_case,
    same,
)

import symloss

jax = require("jax")
jnp = jax.numpy
from jax.test_util import check_grads  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def x64():
    """float64 in JAX for these tests; the setting as it was after them."""
    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", before)


def _a(x, dtype=jnp.float64):
    x = np.asarray(x)
    return jnp.asarray(x) if x.dtype.kind in "iu" else jnp.asarray(x, dtype=dtype)


def run(f, case, dtype=jnp.float64, weight=None, jit=True):
    t = _a(case.target, dtype)
    kw = {k: _a(v, dtype) for k, v in case.kw.items()}
    w = None if weight is None else _a(weight, dtype)

    def total(z):
        return jnp.sum(f(z, t, w, **kw))  # reduction="none": the gradient of the sum

    vg = jax.value_and_grad(total)
    if jit:
        vg = jax.jit(vg)
    value, grad = vg(_a(case.pred, dtype))
    return np.asarray(f(_a(case.pred, dtype), t, w, **kw)), np.asarray(grad), value


@registry_params()
def test_value_and_gradient_match_numpy_on_random_inputs(loss):
    case = random_case(loss)
    value, grad, _ = run(loss.to_jax(), case)
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    assert same(value, want_v) and same(grad, want_g), (value, want_v, grad, want_g)


@registry_params()
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_reductions_and_weights_match_numpy(loss, reduction):
    L = symloss.get(loss.name, reduction=reduction)
    case = random_case(loss, seed=1)
    shape = case.pred.shape if len(loss.input_indices) == 1 else case.pred.shape[:1]
    weight = np.random.default_rng(2).uniform(0.0, 2.0, size=shape)
    value, grad, _ = run(L.to_jax(), case, weight=weight)
    assert same(value, L(case.pred, case.target, weight=weight, **case.kw))
    assert same(grad, L.grad(case.pred, case.target, weight=weight, **case.kw))


@registry_params()
def test_exact_at_the_edges(loss):
    f = loss.to_jax()
    for case_id, case in edge_cases(loss):
        with np.errstate(all="ignore"):
            want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
        value, grad, _ = run(f, case)
        assert same(value, want_v), f"{case_id}: value {value} != {want_v}"
        assert same(grad, want_g), f"{case_id}: gradient {grad} != {want_g}"


@registry_params()
def test_float32_in_float32_out(loss):
    case = random_case(loss, seed=3)
    value, grad, traced = run(loss.to_jax(), case, dtype=jnp.float32)
    assert traced.dtype == jnp.float32 and grad.dtype == np.float32
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    assert close32(value, want_v) and close32(grad, want_g)


@registry_params()
def test_check_grads_to_second_order(loss):
    """jax.test_util.check_grads in reverse mode, orders 1 and 2 (the second goes
    through the gradient's own custom VJP, the closed-form Hessian)."""
    case = random_case(loss, seed=4, n=3, m=3)
    f = loss.to_jax()
    t, kw = _a(case.target), {k: _a(v) for k, v in case.kw.items()}
    check_grads(lambda z: f(z, t, **kw), (_a(case.pred),), order=2, modes=["rev"], eps=1e-6)


@registry_params()
def test_jacrev_of_grad_is_the_symbolic_hessian(loss):
    case = random_case(loss, seed=5)
    f = loss.to_jax()
    t, kw = _a(case.target), {k: _a(v) for k, v in case.kw.items()}
    full = np.asarray(jax.jit(jax.jacrev(jax.grad(lambda z: f(z, t, **kw))))(_a(case.pred)))
    got = hessian_entries(loss, case.pred, full)
    assert same(got, loss.hess(case.pred, case.target, **case.kw))


def test_vmap_over_a_batch_of_problems():
    f = symloss.get("cce_logits").to_jax()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 6, 3))
    labels = rng.integers(0, 3, size=(4, 6))
    got = jax.vmap(jax.grad(f))(_a(z), _a(labels))
    for k in range(4):
        assert same(np.asarray(got[k]), symloss.get("cce_logits").grad(z[k], labels[k]))


def test_the_vjp_is_the_closed_form_gradient_not_autodiff():
    """The planted-bug check: the VJP returns what the gradient kernel returns (here
    replaced by one returning 7 everywhere); autodiff of the forward code would not."""
    loss = symloss.get("mse", reduction="sum")
    f = loss.to_jax()
    f(_a([0.0]), _a([1.0]))  # the runtime made
    runtime = loss.__dict__["_framework_jax"]
    kernels = runtime.kernels
    saved = dict(kernels)
    runtime._cores.clear()
    kernels["grad"] = lambda y, t: jnp.full_like(y, 7.0)
    try:
        grad = jax.grad(f)(_a([0.0, 0.0, 0.0]), _a([1.0, 1.0, 1.0]))
    finally:
        kernels.clear()
        kernels.update(saved)
        runtime._cores.clear()
    assert np.asarray(grad).tolist() == [7.0, 7.0, 7.0]


def test_per_sample_weights_get_their_gradient():
    loss = symloss.get("huber")
    case = random_case(loss)
    f = loss.to_jax()
    z, t = _a(case.pred), _a(case.target)
    check_grads(lambda w: f(z, t, w), (_a(np.linspace(0.5, 1.5, len(z))),), order=1, modes=["rev"])


def test_differentiating_by_the_target_is_refused():
    f = symloss.get("mse").to_jax()
    with pytest.raises(symloss.InputError, match="differentiating by the target"):
        jax.grad(f, argnums=1)(_a([1.0, 2.0]), _a([0.0, 0.0]))


BAD = [
    ("bce_logits", [np.inf, 0.0], [1.0, 0.0], {}),
    ("bce", [1.0, 0.5], [2.0, 0.0], {}),
    ("hinge", [1.0, 0.5], [0.0, 1.0], {}),
    ("mse", [1.0, 0.5, 2.0], [1.0, 0.0], {}),
    ("cce_logits", [[1.0, 2.0], [0.0, 1.0]], [0, 2], {}),
    ("cce_logits", [[1.0, 2.0], [0.0, 1.0]], [[0.5, 0.4], [1.0, 0.0]], {}),
    ("cce_logits", [1.0, 2.0], [0.0, 1.0], {}),
    ("gaussian_nll", [1.0, 2.0], [0.0, 1.0], {}),
    ("gaussian_nll", [1.0, 2.0], [0.0, 1.0], {"var": [1.0, -1.0]}),
]


@pytest.mark.parametrize(
    "name, pred, target, kw", BAD, ids=[f"{b[0]}-{k}" for k, b in enumerate(BAD)]
)
def test_bad_input_raises_the_numpy_paths_error(name, pred, target, kw):
    L = symloss.get(name)
    with pytest.raises((symloss.InputError, symloss.ArgumentError)) as numpy_error:
        L(np.asarray(pred), np.asarray(target), **{k: np.asarray(v) for k, v in kw.items()})
    with pytest.raises(type(numpy_error.value)) as jax_error:
        L.to_jax()(_a(pred), _a(target), **{k: _a(v) for k, v in kw.items()})
    assert str(jax_error.value) == str(numpy_error.value)


def test_under_jit_only_static_facts_are_checked():
    """Shapes are static under jit (checked); values are tracers (not read)."""
    f = jax.jit(symloss.get("bce_logits").to_jax())
    with pytest.raises(symloss.InputError, match="do not match"):
        f(_a([1.0, 2.0]), _a([0.0, 1.0, 1.0]))
    assert np.isnan(float(f(_a([np.nan, 0.0]), _a([1.0, 0.0]))))  # unchecked under jit


def _optax_references():
    """optax's formulas (optax 0.2), written out with jax.nn as optax writes them (optax
    is not installed here), each averaged as symloss's mean: independent references,
    differentiated by JAX's autodiff."""
    log_sigmoid, nn = jax.nn.log_sigmoid, jax.nn

    def bce(z, t):  # optax.sigmoid_binary_cross_entropy
        return jnp.mean(-t * log_sigmoid(z) - (1 - t) * log_sigmoid(-z))

    def cce_labels(z, labels):  # optax.softmax_cross_entropy_with_integer_labels
        return jnp.mean(
            nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, labels[:, None], -1)[:, 0]
        )

    def cce(z, t):  # optax.softmax_cross_entropy
        return jnp.mean(-jnp.sum(t * nn.log_softmax(z, axis=-1), axis=-1))

    def huber(y, t, delta=1.0):  # optax.huber_loss
        a = jnp.abs(y - t)
        q = jnp.minimum(a, delta)
        return jnp.mean(0.5 * q**2 + delta * (a - q))

    def focal(z, t, alpha=0.25, gamma=2.0):  # optax.sigmoid_focal_loss
        p = nn.sigmoid(z)
        ce = -t * log_sigmoid(z) - (1 - t) * log_sigmoid(-z)
        p_t = p * t + (1 - p) * (1 - t)
        return jnp.mean((alpha * t + (1 - alpha) * (1 - t)) * ce * (1 - p_t) ** gamma)

    rng = np.random.default_rng(4)
    z, z2 = rng.normal(scale=3, size=40), rng.normal(scale=3, size=(8, 5))
    b, labels = (rng.random(40) < 0.5).astype(float), rng.integers(0, 5, 8)
    return [
        ("bce_logits", bce, z, b),
        ("cce_logits", cce_labels, z2, labels),
        ("cce_logits", cce, z2, np.eye(5)[labels]),
        ("huber", huber, z, rng.normal(size=40)),
        ("sigmoid_focal", focal, z, b),
    ]


@pytest.mark.parametrize(
    "name, reference, pred, target", _optax_references(), ids=lambda x: getattr(x, "__name__", None)
)
def test_losses_optax_has_match_optax(name, reference, pred, target):
    f = symloss.get(name).to_jax()
    ours = jax.jit(jax.value_and_grad(f))(_a(pred), _a(target))
    theirs = jax.jit(jax.value_and_grad(reference))(_a(pred), _a(target))
    assert float(ours[0]) == pytest.approx(float(theirs[0]), rel=1e-12)
    np.testing.assert_allclose(np.asarray(ours[1]), np.asarray(theirs[1]), rtol=1e-10, atol=1e-16)


OPTIONS = option_cases()


@pytest.mark.parametrize(
    "name, options, inputs", [c[1:] for c in OPTIONS], ids=[c[0] for c in OPTIONS]
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_options_match_the_numpy_path(name, options, inputs, reduction):
    """pos_weight, alpha and gamma, delta, var=, integer labels with ignore_index (PyTorch's
    weighted mean), class weights, label smoothing and per-sample weights, under jit."""
    L = symloss.get(name, reduction=reduction, **options)
    kw = dict(inputs)
    pred, target, weight = kw.pop("pred"), kw.pop("target"), kw.pop("weight")
    value, grad, _ = run(L.to_jax(), Case(pred, target, kw), weight=weight)
    assert same(value, L(pred, target, weight=weight, **kw))
    assert same(grad, L.grad(pred, target, weight=weight, **kw))


@pytest.mark.parametrize("name", ["bce_logits", "cce_logits", "huber", "sigmoid_focal"])
def test_float32_in_float32_out_in_jaxs_default_mode(name, x64):
    """Without x64 (JAX's default, as most users run it): float32 in, float32 out, for
    the value and the gradient, under jit and without."""
    loss = symloss.get(name)
    case = random_case(loss, seed=8)
    jax.config.update("jax_enable_x64", False)
    try:
        z, t = jnp.asarray(case.pred, jnp.float32), jnp.asarray(case.target)
        f = loss.to_jax()
        value, grad = jax.jit(jax.value_and_grad(f))(z, t)
        eager = f(z, t)
    finally:
        jax.config.update("jax_enable_x64", True)
    assert value.dtype == grad.dtype == eager.dtype == jnp.float32
    want_v, want_g = loss.value_and_grad(case.pred, case.target)
    assert close32(value, want_v) and close32(eager, want_v) and close32(grad, want_g)


@pytest.mark.parametrize("name", ["bce_logits", "cce_logits"])
def test_check_grads_is_reverse_mode_only(name):
    """custom_vjp defines reverse mode only: check_grads' forward mode (jax.jvp) raises
    JAX's own TypeError, the documented limitation."""
    loss = symloss.get(name)
    case = random_case(loss, seed=4, n=3, m=3)
    f, t = loss.to_jax(), _a(case.target)
    check_grads(lambda z: f(z, t), (_a(case.pred),), order=1, modes=["rev"], eps=1e-6)
    with pytest.raises(TypeError, match="custom_vjp"):
        check_grads(lambda z: f(z, t), (_a(case.pred),), order=1, modes=["fwd"])


@pytest.mark.parametrize("target", ["labels", "one-hot"])
def test_softmax_and_logsumexp_share_their_exponentials_under_jit(target):
    """Cross-entropy's value needs logsumexp and its gradient softmax: the generated
    helpers shift by the same row maximum, so XLA computes exp once per element, as
    optax's cross-entropy does (jax.nn.softmax and jax.nn.logsumexp shift differently:
    two exponentials, 1.7x optax's time in benchmarks/frameworks.py)."""
    rng = np.random.default_rng(4)
    z = jnp.asarray(rng.normal(size=(64, 5)))
    labels = rng.integers(0, 5, 64)
    t = jnp.asarray(labels if target == "labels" else np.eye(5)[labels])
    f = symloss.get("cce_logits").to_jax()
    hlo = jax.jit(jax.value_and_grad(f)).lower(z, t).compile().as_text()
    exps = [line for line in hlo.splitlines() if " exponential(" in line]
    assert len(exps) == 1, exps


LABEL_LOSSES = [
    pytest.param(L.name, options, id=f"{L.name}{'-' if options else ''}{'-'.join(options)}")
    for L in LOSSES
    if one_hot(L) and len(L.input_indices) == 2
    for options in (
        {},
        *([{"class_weight": (0.5, 2.0, 1.0, 3.0)}] if "class_weight" in L.options else []),
    )
]


@pytest.mark.parametrize("name, options", LABEL_LOSSES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_integer_labels_match_the_numpy_path(name, options, reduction):
    """Every loss that takes integer labels, with ignored rows, per-sample weights and
    logits at ±1e4: the value (gathered at the labels where the kernel allows it, else
    summed over one-hot rows) and the gradient are the NumPy path's."""
    L = symloss.get(name, reduction=reduction, **options)
    rng = np.random.default_rng(7)
    pred = random_case(L, seed=7, n=9).pred
    if L.composition is not None:  # logits: two rows at the edges
        pred[1] = [1e4, -1e4, 30.0, -30.0]
        pred[4] = [-1e4, 1e4, 0.5, -1e4]
    labels = rng.integers(0, 4, 9)
    labels[1], labels[4] = 1, 0  # the label at -1e4: a loss of about 2e4
    if L.ignore_index is not None:
        labels[[2, 6]] = L.ignore_index
    weight = rng.uniform(0.5, 2.0, 9)
    value, grad, _ = run(L.to_jax(), Case(pred, labels, {}), weight=weight)
    assert same(value, L(pred, labels, weight=weight))
    assert same(grad, L.grad(pred, labels, weight=weight))


def test_rows_are_held_to_the_precision_they_came_in_as_in_the_numpy_path():
    """float32 thirds (sum 1 + 3e-8) pass with float64 logits, within float32's
    tolerance; the same numbers given as float64 are refused, as the NumPy path does."""
    L = symloss.get("cce_logits")
    z = np.random.default_rng(6).normal(size=(4, 3))
    t = np.full((4, 3), 1 / 3, dtype=np.float32)
    f = L.to_jax()
    assert same(float(f(jnp.asarray(z), jnp.asarray(t))), L(z, t))  # concrete: checked
    grad = jax.grad(f)(jnp.asarray(z), jnp.asarray(t))
    assert same(np.asarray(grad), L.grad(z, t))
    with pytest.raises(symloss.InputError) as numpy_path:
        L(z, t.astype(np.float64))
    with pytest.raises(symloss.InputError) as jax_path:
        f(jnp.asarray(z), jnp.asarray(t.astype(np.float64)))
    assert str(jax_path.value) == str(numpy_path.value)
