"""Small calls through the compiled loop (issue 18): ``Kernel.small`` and the plain-call
batch of ``prepare``.

A small ``value_and_grad`` runs the C loop directly (no blocks, no pool, a pointer
table per thread) once the loop is loaded, cached on disk, or the kernel has been
called ``compile_after_calls`` times with inputs of one shape and type.  The
reference for every result here is the NumPy code (``backend="fused"``), itself
checked against mpmath in tests/numeric/test_edges.py and tests/losses.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np
import pytest
from conftest import LOSSES, compiler_problem

import symloss
from symloss.numeric import compiled, evaluate
from symloss.numeric.warm import inputs


@pytest.fixture
def compiled_small(configure):
    """Small calls compile their loop at once; fails (CI) or skips without a compiler.
    Returns the list of (loop, result) of every ``CompiledKernel.small`` call."""
    problem = compiler_problem()
    if problem is not None:
        pytest.fail(problem) if _required() else pytest.skip(problem)
    configure(backend="auto", compile_after_calls=0)
    return _spy()


def _required() -> bool:
    import os

    return os.environ.get("SYMLOSS_REQUIRE_CC") == "1"


_SEEN: list = []


def _spy():
    _SEEN.clear()
    return _SEEN


_real_small = compiled.CompiledKernel.small


def _recording_small(self, *args, **kw):
    out = _real_small(self, *args, **kw)
    _SEEN.append((self, out))
    return out


@pytest.fixture(autouse=True)
def _record(monkeypatch):
    monkeypatch.setattr(compiled.CompiledKernel, "small", _recording_small)


def _reference(loss, pred, target, kw):
    with symloss.backend("fused"):
        return loss.value_and_grad(pred, target, **kw)


#: Each loss once, and row-wise losses again with rows of 12 (a width compiled in).
LAYOUTS = [(L, 3) for L in LOSSES] + [(L, 12) for L in LOSSES if len(L.input_indices) == 2]


@pytest.mark.parametrize(("loss", "classes"), LAYOUTS, ids=[f"{L.name}-{m}" for L, m in LAYOUTS])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_compiled_small_call_matches_the_numpy_code(loss, dtype, classes, compiled_small):
    pred, target, kw = inputs(loss, rows=7, classes=classes)
    pred, target = pred.astype(dtype), target.astype(dtype)
    kw = {k: v.astype(dtype) for k, v in kw.items()}
    want_v, want_g = _reference(loss, pred, target, dict(kw))
    for _ in range(2):  # the second call reuses the plain-call batch and the plan
        got_v, got_g = loss.value_and_grad(pred, target, **kw)
        assert got_g.dtype == want_g.dtype == dtype and type(got_v) is type(want_v)
        # float64: a few ulp (the loop's libm and summation order against NumPy's);
        # float32: the float32 contract of docs/numerics.md, relative to the loss.
        rtol = 1e-13 if dtype == np.float64 else 2e-6
        scale = max(float(np.max(np.abs(want_g))), 1e-300)
        np.testing.assert_allclose(got_v, want_v, rtol=rtol, atol=1e-300)
        np.testing.assert_allclose(got_g, want_g, rtol=rtol, atol=rtol * scale)


def test_the_compiled_small_call_runs_for_the_common_losses(compiled_small):
    """The direct call is taken (not silently the NumPy code) for element-wise and
    row-wise losses, float64 and float32, and its plan is kept."""
    for name in ("bce_logits", "mse", "huber", "cce_logits", "sigmoid_focal", "softmax_focal"):
        L = symloss.get(name)
        for dtype in (np.float64, np.float32):
            pred, target, kw = inputs(L, rows=9, classes=10)
            compiled_small.clear()
            L.value_and_grad(pred.astype(dtype), target.astype(dtype), **kw)
            assert [out is not None for _, out in compiled_small] == [True], (name, dtype)


def test_small_calls_compile_after_the_set_number_of_calls(configure, monkeypatch):
    """Under "auto", a loop neither loaded nor cached is compiled at the call after
    compile_after_calls calls of one signature; before that the NumPy code runs."""
    if compiler_problem() is not None:
        pytest.fail(compiler_problem()) if _required() else pytest.skip(compiler_problem())
    asked: list[bool] = []
    real_build = compiled.build

    def build(code, symbol="symloss_kernel", nargs=4, compile=True):
        if symbol == "symloss_kernel":
            asked.append(compile)
            if not compile:
                return None  # as on a machine whose cache does not hold it
        return real_build(code, symbol, nargs, compile)

    monkeypatch.setattr(compiled, "build", build)
    configure(backend="auto", compile_after_calls=3)
    L = symloss.get("log_cosh")
    loop = evaluate.of(L).plan(True, True, False)[0]._compiled
    # as in a fresh process: nothing built or planned yet
    monkeypatch.setattr(loop, "_fns", {})
    monkeypatch.setattr(loop, "_small", {})
    y, t = np.linspace(-2, 2, 13), np.linspace(-1, 1, 13)
    _SEEN.clear()
    for _ in range(5):
        L.value_and_grad(y, t)
    ran = [out is not None for _, out in _SEEN]
    assert ran == [False, False, False, True, True]
    # looked up without the compiler once (the plan then waits), compiled once
    assert asked.count(True) == 1 and asked.count(False) == 1


def test_no_compiler_for_small_calls_under_fused(configure):
    configure(backend="fused", compile_after_calls=0)
    L = symloss.get("bce_logits")
    _SEEN.clear()
    L.value_and_grad(np.zeros(5), np.ones(5))
    assert _SEEN == []


@pytest.mark.parametrize(
    ("name", "pred", "target", "message"),
    [
        ("bce_logits", [0.0, np.nan, 1.0], [0.0, 1.0, 1.0], r"logit z\[1\] = nan is outside"),
        ("bce_logits", [0.0, 1.0, np.inf], [0.0, 1.0, 1.0], r"logit z\[2\] = inf is outside"),
        ("bce_logits", [0.0, 1.0, 2.0], [0.0, 1.5, 1.0], r"target t\[1\] = 1.5 is outside"),
        ("bce", [0.5, 1.5, 0.2], [0.0, 1.0, 1.0], r"prediction y\[1\] = 1.5 is outside"),
        (
            "cce_logits",
            [[0.0, 1.0], [2.0, 3.0]],
            [[1.0, 0.0], [0.7, 0.7]],
            "row 1 sums to 1.(4|39)",
        ),
        ("cce_logits", [[0.0, 1.0], [2.0, 3.0]], [[1.0, 0.0], [np.nan, 1.0]], r"t\[1, 0\] = nan"),
    ],
)
def test_errors_are_the_numpy_codes_on_the_compiled_small_call(
    name, pred, target, message, compiled_small
):
    L = symloss.get(name)
    pred, target = np.array(pred), np.array(target)
    for dtype in (np.float64, np.float32):
        # a valid call of this shape first: its batch and plan are then reused
        ok_pred = (
            np.where(np.isfinite(pred), pred, 0.0).clip(0.1, 0.9)
            if name == "bce"
            else (np.nan_to_num(pred, posinf=0.0))
        )
        ok_target = np.eye(2)[[0, 1]] if pred.ndim == 2 else np.array([0.0, 1.0, 1.0])
        L.value_and_grad(ok_pred.astype(dtype), ok_target.astype(dtype))
        with pytest.raises(symloss.InputError, match=message):
            L.value_and_grad(pred.astype(dtype), target.astype(dtype))


def test_the_plain_call_batch_keeps_no_input_alive():
    L = symloss.get("mse")
    y = np.linspace(0, 1, 50_000)
    t = np.zeros_like(y)
    L.value_and_grad(y, t)
    gone = weakref.ref(y)
    del y
    assert gone() is None


def test_the_plain_call_batch_is_per_shape_and_type():
    """Calls of one shape reuse a batch; another shape or type is prepared anew, and
    each result is the one its own inputs give."""
    L = symloss.get("cce_logits")
    rng = np.random.default_rng(3)
    for rows in (4, 9, 4):
        for dtype in (np.float64, np.float32):
            z = rng.normal(size=(rows, 5)).astype(dtype)
            t = np.eye(5, dtype=dtype)[rng.integers(0, 5, rows)]
            v, g = L.value_and_grad(z, t)
            zz = z.astype(np.float64)
            p = np.exp(zz - zz.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            # hand derivation: mean of -log p_label, gradient (p - t) / rows
            want_v = -np.mean(np.log(np.sum(p * t, axis=1)))
            rtol = 1e-12 if dtype == np.float64 else 1e-5
            assert g.shape == (rows, 5) and g.dtype == dtype
            np.testing.assert_allclose(v, want_v, rtol=rtol)
            np.testing.assert_allclose(g, (p - t) / rows, rtol=rtol, atol=rtol / rows)


def test_threads_fill_their_own_pointer_tables(compiled_small):
    L = symloss.get("bce_logits")
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=257), rng.random(257)) for _ in range(4)]
    want = [_reference(L, z, t, {}) for z, t in cases]
    errors: list = []

    def work(k):
        z, t = cases[k]
        for _ in range(300):
            v, g = L.value_and_grad(z, t)
            if not (np.isclose(v, want[k][0], rtol=1e-13) and np.allclose(g, want[k][1])):
                errors.append(k)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_build_without_the_compiler_finds_only_what_is_cached(tmp_path, monkeypatch):
    if compiler_problem() is not None:
        pytest.fail(compiler_problem()) if _required() else pytest.skip(compiler_problem())
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    code = (
        f"/* {tmp_path} */\n"
        "void symloss_kernel(long n, long m, void **ins, void **outs) { (void)n; (void)m; }\n"
    )
    assert compiled.build(code, compile=False) is None
    assert compiled.build(code) is not None  # compiled and cached
    # a new process would find it on disk: forget this one's loaded copy
    monkeypatch.setattr(compiled, "_LOADED", {})
    monkeypatch.setattr(compiled, "_FUNCS", {})
    assert compiled.build(code, compile=False) is not None


def test_a_reused_batch_still_checks_the_new_arrays():
    """prepare() without defer (the checker, the docs table) checks at once: a batch
    reused for a second call of one shape checks that call's arrays too."""
    L = symloss.get("bce")
    good = np.array([0.2, 0.5, 0.9])
    t = np.array([0.0, 1.0, 1.0])
    evaluate.prepare(L, good, t, None, {})
    evaluate.prepare(L, good, t, None, {})
    with pytest.raises(symloss.InputError, match=r"prediction y\[2\] = 1.5 is outside"):
        evaluate.prepare(L, np.array([0.2, 0.5, 1.5]), t, None, {})
    deferred = evaluate.prepare(L, np.array([0.2, 0.5, 1.5]), t, None, {}, defer=True)
    with pytest.raises(symloss.InputError, match=r"y\[2\] = 1.5"):
        deferred.validate(deferred.arrays, 0)


def test_a_reused_batch_checks_after_the_validators_are_dropped():
    """The Validators are kept for 64 input kinds, then dropped all at once; a reused
    plain-call batch keeps its own, so a later call of its shape is still checked (it
    raised KeyError, looking its Validator up again)."""
    L = symloss.get("bce")
    t = np.array([0.0, 1.0, 1.0])
    evaluate.prepare(L, np.array([0.2, 0.5, 0.9]), t, None, {})
    for k in range(70):  # weighted calls: a Validator each, none a plain-call batch
        x = np.full(k + 4, 0.5)
        L(x, x, weight=np.ones(k + 4))
    evaluate.prepare(L, np.array([0.2, 0.5, 0.9]), t, None, {})
    with pytest.raises(symloss.InputError, match=r"prediction y\[2\] = 1.5 is outside"):
        evaluate.prepare(L, np.array([0.2, 0.5, 1.5]), t, None, {})
