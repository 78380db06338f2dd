"""``Loss.to_torch()``: every catalog loss against symloss's NumPy path, and the losses
PyTorch has against PyTorch's own.

Two backends run each check: ``"torch"`` (the generated torch code, what ``symloss
export --format torch`` writes and CUDA and ``torch.compile`` run) and ``"auto"`` (on
these CPU tensors, symloss's own kernels inside the module's autograd Function).  The
NumPy path is the reference: tests/integration/test_edges_mpmath.py holds it to mpmath
at the same edges.  Without torch these tests skip, except where
``SYMLOSS_REQUIRE_TORCH=1`` (as in CI), where they fail.
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

torch = require("torch")
F = torch.nn.functional

BACKENDS = ["torch", "auto"]


def _t(a, dtype=torch.float64):
    a = np.asarray(a)
    return torch.tensor(a) if a.dtype.kind in "iu" else torch.tensor(a, dtype=dtype)


def run(crit, case, dtype=torch.float64, weight=None):
    """(value, gradient by the prediction) through the module and its backward."""
    z = _t(case.pred, dtype).requires_grad_(True)
    kw = {k: _t(v, dtype) for k, v in case.kw.items()}
    w = None if weight is None else _t(weight, dtype)
    value = crit(z, _t(case.target, dtype), w, **kw)
    value.sum().backward()  # reduction="none": the gradient of the sum, as symloss's
    return value.detach().numpy(), z.grad.numpy()


# ------------------------------------------------------------------ the catalog
@registry_params()
@pytest.mark.parametrize("backend", BACKENDS)
def test_value_and_gradient_match_numpy_on_random_inputs(loss, backend):
    case = random_case(loss)
    crit = loss.to_torch(backend=backend)
    value, grad = run(crit, case)
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    assert same(value, want_v) and same(grad, want_g), (value, want_v, grad, want_g)


@registry_params()
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_reductions_and_weights_match_numpy(loss, reduction):
    L = symloss.get(loss.name, reduction=reduction)
    case = random_case(loss, seed=1)
    weight = np.random.default_rng(2).uniform(0.0, 2.0, size=case.pred.shape[:1])
    if len(loss.input_indices) == 1:
        weight = np.random.default_rng(2).uniform(0.0, 2.0, size=case.pred.shape)
    for backend in BACKENDS:
        value, grad = run(L.to_torch(backend=backend), case, weight=weight)
        want_v = L(case.pred, case.target, weight=weight, **case.kw)
        want_g = L.grad(case.pred, case.target, weight=weight, **case.kw)
        assert same(value, want_v) and same(grad, want_g), backend


@registry_params()
def test_the_generated_code_is_exact_at_the_edges(loss):
    """Logits of ±1e4, probabilities of 0 and 1, residuals of ±1e8 and the other edges
    of test_edges_mpmath: the same values and gradients as the NumPy path, infinities
    and all (the NumPy path is held to mpmath there)."""
    crit = loss.to_torch(backend="torch")
    for case_id, case in edge_cases(loss):
        with np.errstate(all="ignore"):
            want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
        value, grad = run(crit, case)
        assert same(value, want_v), f"{case_id}: value {value} != {want_v}"
        assert same(grad, want_g), f"{case_id}: gradient {grad} != {want_g}"


@pytest.mark.parametrize(
    "name, options",
    [("sigmoid_focal", {"gamma": 0.5}), ("sigmoid_focal", {"gamma": 50.0}),
     ("softmax_focal", {"gamma": 0.5}), ("poly1", {"epsilon": 1e6}), ("huber", {"delta": 1e-6}),
     ("tweedie", {"power": 1.000001}), ("tweedie", {"power": 3.5}),
     ("multi_margin", {"margin": 1e-6})],
)  # fmt: skip
def test_edges_with_extreme_parameters(name, options):
    loss = symloss.get(name, **options)
    crit = loss.to_torch(backend="torch")
    for case_id, case in edge_cases(loss):
        with np.errstate(all="ignore"):
            want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
        value, grad = run(crit, case)
        assert same(value, want_v) and same(grad, want_g), case_id


@registry_params()
@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_in_float32_out_within_float32_tolerance(loss, backend):
    case = random_case(loss, seed=3)
    crit = loss.to_torch(backend=backend)
    z = _t(case.pred, torch.float32).requires_grad_(True)
    value = crit(
        z, _t(case.target, torch.float32), **{k: _t(v, torch.float32) for k, v in case.kw.items()}
    )
    value.backward()
    assert value.dtype == torch.float32 and z.grad.dtype == torch.float32
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    assert close32(value.item(), want_v) and close32(z.grad.numpy(), want_g)


@registry_params()
def test_float32_calls_run_the_float32_kernels_without_a_float64_copy(loss):
    """float32 tensors reach symloss's float32 kernels as views (float32 target rows
    too): nothing is staged in float64, and the gradient is the kernels' own float32
    output."""
    case = random_case(loss, seed=5)
    crit = loss.to_torch(backend="auto")

    def generated(*args):
        raise AssertionError("the call took the generated torch code, not symloss's kernels")

    crit._runtime = generated
    z = _t(case.pred, torch.float32).requires_grad_(True)
    kw = {k: _t(v, torch.float32) for k, v in case.kw.items()}
    value = crit(z, _t(case.target, torch.float32), **kw)
    value.backward()
    assert all(a.dtype != np.float64 for a in crit._staging.arrays.values())
    want_v, want_g = loss.value_and_grad(
        case.pred.astype(np.float32),
        case.target.astype(np.float32) if case.target.dtype.kind == "f" else case.target,
        **{k: v.astype(np.float32) for k, v in case.kw.items()},
    )
    assert want_g.dtype == np.float32
    assert close32(value.item(), want_v) and close32(z.grad.numpy(), want_g)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rows_are_held_to_the_precision_they_came_in_as_in_the_numpy_path(backend):
    """Thirds rounded to float32 sum to 1 + 3e-8: inside float32's tolerance (8 ulps
    of 1 per class), outside float64's (1e-9 per class).  Given as float32 they pass
    with float32 and with float64 logits; the same numbers given as float64 are refused
    with the NumPy path's message."""
    L = symloss.get("cce_logits")
    z = np.random.default_rng(6).normal(size=(4, 3))
    t = np.full((4, 3), 1 / 3, dtype=np.float32)
    crit = L.to_torch(backend=backend)
    value = crit(torch.tensor(z, dtype=torch.float32), torch.tensor(t))
    assert close32(value.item(), L(z.astype(np.float32), t))
    zt = torch.tensor(z, requires_grad=True)
    value = crit(zt, torch.tensor(t))
    value.backward()
    assert value.dtype == torch.float64 and same(value.item(), L(z, t))
    assert same(zt.grad.numpy(), L.grad(z, t))
    with pytest.raises(symloss.InputError) as numpy_path:
        L(z, t.astype(np.float64))
    with pytest.raises(symloss.InputError) as torch_path:
        crit(torch.tensor(z), torch.tensor(t.astype(np.float64)))
    assert str(torch_path.value) == str(numpy_path.value)
    assert "target row 0 sums to 1.0000000298" in str(numpy_path.value)


# ------------------------------------------------------------------ derivatives
@registry_params()
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_and_gradgradcheck_pass_in_float64(loss, backend):
    case = random_case(loss, seed=4, n=3, m=3)
    crit = loss.to_torch(backend=backend)
    t = _t(case.target)
    kw = {k: _t(v) for k, v in case.kw.items()}
    z = _t(case.pred).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda q: crit(q, t, **kw), (z,))
    assert torch.autograd.gradgradcheck(lambda q: crit(q, t, **kw), (z,))


@registry_params()
def test_double_backward_is_the_symbolic_hessian(loss):
    case = random_case(loss, seed=5)
    crit = loss.to_torch()
    t = _t(case.target)
    kw = {k: _t(v) for k, v in case.kw.items()}
    full = torch.autograd.functional.hessian(lambda q: crit(q, t, **kw), _t(case.pred)).numpy()
    got = hessian_entries(loss, case.pred, full)
    assert same(got, loss.hess(case.pred, case.target, **case.kw))


def test_per_sample_weights_get_their_gradient():
    loss = symloss.get("gaussian_nll")
    case = random_case(loss)
    crit = loss.to_torch()
    z, t, var = _t(case.pred), _t(case.target), _t(case.kw["var"])
    w = torch.rand(len(z), dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z, w: crit(z, t, w, var=var), (z.requires_grad_(), w))


def test_the_backward_is_the_closed_form_gradient_not_autograd():
    """The planted-bug check: the module's backward returns what the gradient kernel
    returns.  Here the kernel is replaced by one returning 7 everywhere: autograd
    through the forward code would still give the true gradient."""
    loss = symloss.get("mse", reduction="sum")
    crit = loss.to_torch(backend="torch")
    kernels = crit._runtime.kernels
    saved = dict(kernels)
    kernels["value_and_grad"] = lambda y, t: (saved["value"](y, t), torch.full_like(y, 7.0))
    try:
        z = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        crit(z, torch.ones(3, dtype=torch.float64)).backward()
    finally:
        kernels.clear()
        kernels.update(saved)
    assert z.grad.tolist() == [7.0, 7.0, 7.0]
    assert type(crit(z, torch.ones(3, dtype=torch.float64)).grad_fn).__name__ == (
        "MeanSquaredErrorFunctionBackward"
    )


# ------------------------------------------------------------------ PyTorch's own
def _cases():
    rng = np.random.default_rng(11)
    z = rng.normal(scale=3.0, size=(7, 5))
    labels = rng.integers(0, 5, 7)
    soft = rng.uniform(0.1, 1, (7, 5))
    soft /= soft.sum(1, keepdims=True)
    x, y = rng.normal(scale=2, size=20), rng.normal(size=20)
    b = (rng.random(20) < 0.5).astype(float)
    sign = 2 * b - 1
    var = rng.uniform(0.1, 3, 20)
    cw = [1.0, 2.0, 0.5, 3.0, 1.5]
    lab_ignored = labels.copy()
    lab_ignored[[1, 4]] = -100
    return [
        ("bce_logits", {}, x, b, {}, lambda q, t: F.binary_cross_entropy_with_logits(q, t)),
        ("bce_logits", {"pos_weight": 2.5}, x, b, {},
         lambda q, t: F.binary_cross_entropy_with_logits(q, t, pos_weight=torch.tensor(2.5, dtype=q.dtype))),
        ("bce", {}, 1 / (1 + np.exp(-x)), b, {}, F.binary_cross_entropy),
        ("cce_logits", {}, z, labels, {}, F.cross_entropy),
        ("cce_logits", {}, z, soft, {}, F.cross_entropy),
        ("cce_logits", {"label_smoothing": 0.2, "class_weight": cw}, z, labels, {},
         lambda q, t: F.cross_entropy(q, t, weight=torch.tensor(cw, dtype=q.dtype), label_smoothing=0.2)),
        ("cce_logits", {"class_weight": cw}, z, lab_ignored, {},
         lambda q, t: F.cross_entropy(q, t, weight=torch.tensor(cw, dtype=q.dtype))),
        ("huber", {"delta": 1.5}, x, y, {}, lambda q, t: F.huber_loss(q, t, delta=1.5)),
        ("smooth_l1", {"beta": 0.5}, x, y, {}, lambda q, t: F.smooth_l1_loss(q, t, beta=0.5)),
        ("mse", {}, x, y, {}, F.mse_loss),
        ("mae", {}, x, y, {}, F.l1_loss),
        ("soft_margin", {}, x, sign, {}, F.soft_margin_loss),
        ("multilabel_soft_margin", {}, z, (soft > 0.2).astype(float), {}, F.multilabel_soft_margin_loss),
        ("multi_margin", {}, z, labels, {}, F.multi_margin_loss),
        ("kl_div", {}, np.log(soft), soft[::-1].copy(), {},
         lambda q, t: F.kl_div(q, t, reduction="batchmean")),
        ("poisson_nll", {}, x, np.abs(y), {}, F.poisson_nll_loss),
        ("gaussian_nll", {}, x, y, {"var": var}, lambda q, t, var: F.gaussian_nll_loss(q, t, var)),
    ]  # fmt: skip


CASES = _cases()


@pytest.mark.parametrize(
    "name, options, pred, target, kw, reference",
    CASES,
    ids=[f"{c[0]}-{'-'.join(c[1]) or 'default'}-{c[3].dtype}" for c in CASES],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_losses_pytorch_has_match_pytorch(name, options, pred, target, kw, reference, backend):
    """Value and autograd gradient of torch.nn.functional's loss (PyTorch 2.13)."""
    crit = symloss.get(name, **options).to_torch(backend=backend)
    z1, z2 = _t(pred).requires_grad_(True), _t(pred).requires_grad_(True)
    t = _t(target)
    kwt = {k: _t(v) for k, v in kw.items()}
    ours, theirs = crit(z1, t, **kwt), reference(z2, t, **kwt)
    ours.backward()
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(z1.grad.numpy(), z2.grad.numpy(), rtol=1e-11, atol=1e-15)


def test_focal_matches_torchvisions_formula():
    """torchvision.ops.sigmoid_focal_loss (torchvision 0.2x), written out: torchvision is
    not installed here; its reduction='mean'."""
    rng = np.random.default_rng(3)
    x, t = rng.normal(scale=3, size=50), (rng.random(50) < 0.3).astype(float)

    def torchvision(inputs, targets, alpha=0.25, gamma=2.0):
        p = torch.sigmoid(inputs)
        ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce * ((1 - p_t) ** gamma)
        return (alpha * targets + (1 - alpha) * (1 - targets)) * loss

    for backend in BACKENDS:
        crit = symloss.get("sigmoid_focal").to_torch(backend=backend)
        z1, z2 = _t(x).requires_grad_(True), _t(x).requires_grad_(True)
        ours, theirs = crit(z1, _t(t)), torchvision(z2, _t(t)).mean()
        ours.backward()
        theirs.backward()
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
        np.testing.assert_allclose(z1.grad.numpy(), z2.grad.numpy(), rtol=1e-10, atol=1e-16)


def test_target_broadcasts_as_pytorchs_mse_does():
    z = torch.tensor([[0.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
    t = torch.tensor([1.0, -1.0], dtype=torch.float64)
    with pytest.warns(UserWarning, match="broadcast"):  # PyTorch warns, and broadcasts
        want = F.mse_loss(z, t)
    for backend in BACKENDS:
        assert symloss.get("mse").to_torch(backend=backend)(z, t).item() == want.item()


# ------------------------------------------------------------------ errors
BAD = [
    ("bce_logits", [np.inf, 0.0], [1.0, 0.0], {}, {}),
    ("bce_logits", [1.0, 0.0], [1.5, 0.0], {}, {}),
    ("bce", [1.0, 0.5], [2.0, 0.0], {}, {}),
    ("hinge", [1.0, 0.5], [0.0, 1.0], {}, {}),
    ("mse", [1.0, 0.5, 2.0], [1.0, 0.0], {}, {}),
    ("cce_logits", [[1.0, 2.0], [0.0, 1.0]], [0, 2], {}, {}),
    ("cce_logits", [[1.0, 2.0], [0.0, 1.0]], [[0.5, 0.4], [1.0, 0.0]], {}, {}),
    ("cce_logits", [1.0, 2.0], [0.0, 1.0], {}, {}),
    ("cce_logits", [[1.0, 2.0], [0.0, 1.0]], [0, 1, 1], {}, {}),
    ("gaussian_nll", [1.0, 2.0], [0.0, 1.0], {}, {}),
    ("gaussian_nll", [1.0, 2.0], [0.0, 1.0], {"var": [1.0, -1.0]}, {}),
    ("gaussian_nll", [1.0, 2.0], [0.0, 1.0], {"var": [1.0, 1.0], "sigma": [1.0, 1.0]}, {}),
    ("mse", [1.0, 2.0], [0.0, 1.0], {}, {"weight": [1.0, -1.0]}),
    ("mse", [[1.0, 2.0]], [[0.0, 1.0]], {}, {"weight": [1.0, 2.0, 3.0]}),
]


@pytest.mark.parametrize(
    "name, pred, target, kw, opts", BAD, ids=[f"{b[0]}-{k}" for k, b in enumerate(BAD)]
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_raises_the_numpy_paths_error(name, pred, target, kw, opts, backend):
    """The same class and message as ``L(pred, target)`` raises (on CPU tensors, where
    the values can be read without a device sync)."""
    L = symloss.get(name)
    with pytest.raises((symloss.InputError, symloss.ArgumentError)) as numpy_error:
        L(
            np.asarray(pred),
            np.asarray(target),
            **{k: np.asarray(v) for k, v in {**kw, **opts}.items()},
        )
    crit = L.to_torch(backend=backend)
    weight = opts.get("weight")
    with pytest.raises(type(numpy_error.value)) as torch_error:
        crit(
            _t(pred),
            _t(target),
            None if weight is None else _t(weight),
            **{k: _t(v) for k, v in kw.items()},
        )
    assert str(torch_error.value) == str(numpy_error.value)


LARGE = 100_000  # above compile_min_elements: the compiled loop runs, in blocks


def _large(name, dtype, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=LARGE).astype(dtype)
    binary = name in ("bce_logits", "sigmoid_focal")
    t = (rng.random(LARGE) < 0.5) if binary else rng.normal(size=LARGE)
    return z, t.astype(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["mse", "huber", "bce_logits", "sigmoid_focal"])
def test_a_large_forward_keeps_the_gradient_a_separate_pass_gives(name, dtype):
    """The kernels' forward computes the value and the gradient in one pass (the
    total added up in the loop, the domains checked in it) and backward returns that
    gradient, scaled by grad_output: it equals the gradient kernel run on its own, and
    the value the value kernel's."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    L = symloss.get(name)
    z, t = _large(name, np_dtype)
    crit = L.to_torch()
    zt = torch.tensor(z).requires_grad_(True)
    value = crit(zt, torch.tensor(t))
    (3.0 * value).backward()
    assert value.dtype == dtype and zt.grad.dtype == dtype
    want_g, want_v = L.grad(z, t), L(z, t)  # two separate kernels, two passes
    assert want_g.dtype == np_dtype
    np.testing.assert_allclose(zt.grad.numpy(), 3.0 * want_g, rtol=4 * np.finfo(np_dtype).eps)
    assert value.item() == pytest.approx(float(want_v), rel=4 * float(np.finfo(np_dtype).eps))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name, where, bad",
    [
        ("mse", ("pred", LARGE - 1), np.nan),
        ("mse", ("target", 70_000), np.inf),
        ("huber", ("pred", 12_345), -np.inf),
        ("bce_logits", ("pred", 99_000), np.inf),
        ("bce_logits", ("target", 50_001), 1.5),
        ("bce_logits", ("target", 3), np.nan),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_large_inputs_raise_the_numpy_paths_error(name, where, bad, dtype, backend):
    """On large inputs the kernels check interval domains in their loop: a NaN, an
    infinity or a value outside the domain anywhere still raises the error the NumPy
    path's separate checks raise (the NumPy backend: no compiled loop)."""
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    L = symloss.get(name)
    z, t = _large(name, np_dtype)
    (z if where[0] == "pred" else t)[where[1]] = bad
    with symloss.backend("fused"), pytest.raises(symloss.InputError) as numpy_error:
        L(z, t)
    assert f"[{where[1]}] = " in str(numpy_error.value)
    crit = L.to_torch(backend=backend)
    with pytest.raises(symloss.InputError) as torch_error:
        crit(torch.tensor(z).requires_grad_(True), torch.tensor(t))
    assert str(torch_error.value) == str(numpy_error.value)


def test_a_target_that_requires_grad_is_refused():
    crit = symloss.get("mse").to_torch()
    t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(symloss.InputError, match="target requires grad"):
        crit(torch.ones(3, dtype=torch.float64, requires_grad=True), t)


def test_bad_options_raise_at_call():
    crit = symloss.get("huber").to_torch(backend="torch")
    runtime = crit._runtime
    z = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(symloss.OptionError, match="delta = -1.0 is outside"):
        runtime(z, z, None, {}, {"delta": -1.0}, "mean")
    with pytest.raises(symloss.OptionError, match="reduction must be one of"):
        runtime(z, z, None, {}, {"delta": 1.0}, "average")
    with pytest.raises(ValueError, match="backend must be one of"):
        symloss.get("huber").to_torch(backend="cuda")


# ------------------------------------------------------------------ framework conventions
#: PyTorch 2.13's dynamo instantiates torch.autograd.Function itself while tracing any
#: custom Function (a two-line Function with a static forward warns the same way).
DYNAMO_WARNING = "ignore:.*should not be instantiated:DeprecationWarning"


@pytest.mark.filterwarnings(DYNAMO_WARNING)
@pytest.mark.parametrize(
    "name", ["bce_logits", "cce_logits", "huber", "sigmoid_focal", "cosine", "gaussian_nll"]
)
def test_torch_compile_traces_the_module(name):
    """aot_eager: dynamo traces the Python (no graph break: fullgraph=True) and AOT
    autograd the Functions; inductor (slow to build here) is in the next test."""
    loss = symloss.get(name)
    case = random_case(loss, seed=6)
    crit = loss.to_torch()
    t = _t(case.target)
    kw = {k: _t(v) for k, v in case.kw.items()}
    compiled = torch.compile(lambda q: crit(q, t, **kw), backend="aot_eager", fullgraph=True)
    z = _t(case.pred).requires_grad_(True)
    value = compiled(z)
    value.backward()
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    assert same(value.item(), want_v) and same(z.grad.numpy(), want_g)


@pytest.mark.slow
@pytest.mark.filterwarnings(DYNAMO_WARNING)
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_with_inductor():
    """Inductor fuses the generated code into C++ (about 30 s to build here; importing
    inductor itself trips PyTorch 2.13's own torch.jit deprecation warning)."""
    loss = symloss.get("sigmoid_focal")
    case = random_case(loss, seed=7)
    crit = loss.to_torch()
    step = torch.compile(lambda q, t: crit(q, t))
    z = _t(case.pred).requires_grad_(True)
    value = step(z, _t(case.target))
    value.backward()
    want_v, want_g = loss.value_and_grad(case.pred, case.target)
    assert np.isclose(value.item(), want_v, rtol=1e-12)
    assert np.allclose(z.grad.numpy(), want_g, rtol=1e-10, atol=1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_tensors_stay_on_cuda():  # pragma: no cover - no GPU on the CI machine
    loss = symloss.get("cce_logits")
    case = random_case(loss)
    z = _t(case.pred).cuda().requires_grad_(True)
    value = loss.to_torch()(z, _t(case.target).cuda())
    value.backward()
    assert value.device.type == "cuda" and z.grad.device.type == "cuda"
    assert same(z.grad.cpu().numpy(), loss.grad(case.pred, case.target))


def test_a_module_is_a_module():
    crit = symloss.get("sigmoid_focal", alpha=0.5).to_torch()
    assert isinstance(crit, torch.nn.Module)
    assert list(crit.parameters()) == [] and list(crit.buffers()) == []
    assert repr(crit) == "SymlossLoss('sigmoid_focal', alpha=0.5, gamma=2.0, reduction='mean')"
    model = torch.nn.Linear(3, 1).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 3, dtype=torch.float64), (torch.rand(8) < 0.5).double()
    loss = crit(model(x)[:, 0], y)
    loss.backward()
    opt.step()
    assert all(p.grad is not None for p in model.parameters())


def test_one_hot_rows_mean_divides_by_n_and_labels_by_their_weights():
    """PyTorch's weighted mean for labels, the plain mean for one-hot rows (as now)."""
    cw = [1.0, 3.0]
    L = symloss.get("cce_logits", class_weight=cw)
    z = np.array([[0.0, 1.0], [2.0, 0.5], [1.0, 1.0]])
    labels = np.array([1, 1, 0])
    for backend in BACKENDS:
        crit = L.to_torch(backend=backend)
        by_labels = crit(_t(z), _t(labels)).item()
        by_rows = crit(_t(z), _t(np.eye(2)[labels])).item()
        assert by_labels == pytest.approx(L(z, labels), rel=1e-14)
        assert by_rows == pytest.approx(L(z, np.eye(2)[labels]), rel=1e-14)
        assert by_labels == pytest.approx(by_rows * 3 / (3 + 3 + 1), rel=1e-14)
    assert one_hot(L)


@pytest.mark.parametrize(
    "loss", [L for L in LOSSES if L.name in ("cosine_distance", "dice")], ids=str
)
def test_row_losses_give_one_value_per_row(loss):
    L = symloss.get(loss.name, reduction="none")
    case = random_case(L)
    for backend in BACKENDS:
        value = L.to_torch(backend=backend)(_t(case.pred), _t(case.target))
        assert value.shape == (case.pred.shape[0],)
        assert same(value.numpy(), L(case.pred, case.target))


def test_a_module_pickles_as_the_loss_it_was_made_from(tmp_path):
    """torch.save of a model that holds the loss, after it has run (its loss's kernels
    compiled: they are not pickled, and are rebuilt on first use)."""
    crit = symloss.get("sigmoid_focal", alpha=0.5).to_torch()
    z, t = (
        torch.tensor([0.3, -2.0], dtype=torch.float64),
        torch.tensor([1.0, 0.0], dtype=torch.float64),
    )
    want = crit(z, t)
    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    model.crit = crit
    torch.save(model, tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    assert repr(loaded.crit) == repr(crit) and loaded.crit(z, t).item() == want.item()


OPTIONS = option_cases()


@pytest.mark.parametrize(
    "name, options, inputs", [c[1:] for c in OPTIONS], ids=[c[0] for c in OPTIONS]
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_options_match_the_numpy_path(name, options, inputs, reduction, backend):
    """pos_weight, alpha and gamma, delta, var=, integer labels with ignore_index (PyTorch's
    weighted mean), class weights, label smoothing and per-sample weights: the module's
    value and gradient are the NumPy path's, under every reduction."""
    L = symloss.get(name, reduction=reduction, **options)
    kw = dict(inputs)
    pred, target, weight = kw.pop("pred"), kw.pop("target"), kw.pop("weight")
    value, grad = run(L.to_torch(backend=backend), Case(pred, target, kw), weight=weight)
    want_v = L(pred, target, weight=weight, **kw)
    want_g = L.grad(pred, target, weight=weight, **kw)
    assert same(value, want_v) and same(grad, want_g), (value, want_v)
