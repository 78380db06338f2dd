r"""Every registered loss, value, gradient and Hessian, at the edges of its domains, against a
high-precision reference built from the loss's own symbolic expression (issue 8).
2-D inputs are batches of several rows (so that a reduction or divisor bug shows), and
the Hessian (its diagonal, or each row's block) is SymPy's second derivative of the same
concrete expression, almost everywhere.  tests/test_edges_reference.py checks the
article's and the classic losses against hand-written formulas instead.

Reference: ``L.coef * Sum(L.term, *limits)`` with the concrete sizes substituted and the
sums expanded (``.doit()``); activations rewritten to exp/log (``sigmoid``, ``softmax``,
``relu``...; see :mod:`symloss.symbols`); every array element becomes a symbol.  The
gradient is SymPy's ``diff`` of that concrete expression by each element symbol.  Both
are lambdified to mpmath and evaluated with the *exact* binary values of the float64
inputs and parameters at dps = 50, 100, 200, ... 12800 until two successive precisions
agree (``_agree``: 1e-30 relative, or 1e-30 of the call's float64-representable scale;
an exact 0 is trusted only from 6400 digits); the test asserts that they do (a reference
that is still moving is a wrong reference: ``log(1 - sigmoid(1e4))`` as written needs
thousands of digits).

Comparison: relative error <= 1e-12.  Absolute floor: ``ATOL_REL * scale`` where
``scale`` is the largest magnitude among the value and the gradient entries of the same
call that float64 can represent (an overflowing entry must be inf, and must not widen the
floor of the others).  Reason: an entry that is exactly 0 or far below the others (e.g. the gradient of
BCE-with-logits at z = 1e4, t = 1, which is ~e^-1e4) is the difference of terms of size
``scale`` in float64 and cannot be resolved relative to itself; 1e-300 is used where the
scale is 0.  Exact float64 underflow (true value < 1e-300) passes through the same floor.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

import symloss
from symloss import symbols as _symbols

REL = 1e-12
ATOL_REL = 1e-15
STABLE = 1e-30  # agreement of two successive precisions (see _agree)
#: An exact 0 from the reference is trusted only from this precision on: below it,
#: 1 - sigmoid(1e4) (~1e-4343, the deepest cancellation the edges produce: |logit| <= 1e4)
#: rounds to exactly 0 at two successive precisions, which would "agree".
ZERO_CONFIRM_DPS = 6400
DPS_LADDER = (50, 100, 200, 400, 800, 1600, 3200, 6400, 12800)

P_EDGES = [1e-12, 1e-6, 1 - 1e-6, 1 - 1e-12]
LOGIT_EDGES = [30.0, -30.0, 1e4, -1e4]
RESIDUAL_EDGES = [1e8, -1e8]
HALFLINE_EDGES = [1e-12, 1e12]
PARAM_EDGES = {  # tiny and huge hyperparameters where the domain allows
    "huber": [{"delta": 1e-6}, {"delta": 1e6}],
    "smooth_l1": [{"beta": 1e-6}, {"beta": 1e6}],
    "pinball": [{"quantile": 1e-6}, {"quantile": 1 - 1e-6}],
    "sigmoid_focal": [{"alpha": 1e-6, "gamma": 1e-6}, {"alpha": 1 - 1e-6, "gamma": 50.0}],
    "softmax_focal": [{"alpha": 1e-6, "gamma": 1e-6}, {"gamma": 50.0}],
    "poly1_cross_entropy": [{"epsilon": 1e-6}, {"epsilon": 1e6}],
    "multi_margin": [{"margin": 1e-6}, {"margin": 1e6}],
    "dice": [{"smooth": 1e-6}, {"smooth": 1e6}],
    "tversky": [{"smooth": 1e-6, "alpha": 1e-6, "beta": 1e6}],
    "tweedie": [{"power": 1.000001}, {"power": 1.999999}, {"power": 3.5}],
    "gaussian_nll": [{"eps": 1e-300}],
    "mean_absolute_percentage_error": [{"eps": 1e-300}],
}

#: (loss, case id) -> reason, for a genuine library failure found here (strict xfail).
#: None is open; the last ones (tweedie near p = 1 and 2, poly1 at the confidently right
#: class, the focal losses' NaN gradient at gamma < 1) are fixed, see CHANGELOG.md.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}

#: Hessians documented as NaN at some edges: loss -> (the sentence of its conventions
#: that says so, the condition on its hyperparameters).  There a NaN entry is accepted
#: only where the true value is below the float64 range (p_ij rounds to 1).
DOCUMENTED_NAN_HESSIAN = {
    "softmax_focal": ("the Hessian is NaN there for gamma < 1", lambda v: v["gamma"] < 1),
}


def _values_for(domain_set, is_logit: bool):
    s = domain_set if domain_set is not None else sp.Interval(-sp.oo, sp.oo)
    if isinstance(s, sp.FiniteSet):
        return [float(v) for v in s]
    lo, hi = s.inf, s.sup
    if lo == 0 and hi == 1:
        return P_EDGES
    if lo.is_infinite and hi.is_infinite:
        return LOGIT_EDGES if is_logit else RESIDUAL_EDGES
    if lo == 0 and hi.is_infinite:
        return HALFLINE_EDGES
    if lo == -1 and hi.is_infinite:
        return [-1 + 1e-12, 1e12]
    raise AssertionError(f"no edges for {s}")


def _targets_for(domain_set, pred_values):
    s = domain_set if domain_set is not None else sp.Interval(-sp.oo, sp.oo)
    if isinstance(s, sp.FiniteSet):
        return [float(v) for v in s]
    if s.inf == 0 and s.sup == 1:
        return [0.0, 1.0, 0.3]
    if s.inf.is_infinite:
        return [0.5]
    if s.inf == 0:
        return [1e-12, 1e12, 1.0]
    return [0.5]


def cases_for(L):
    """[(case_id, pred, target, kw, params)] at the domain edges; small fixed batches."""
    doms = L.domains
    pname, tname = str(L.pred.label), str(L.target.label)
    is_logit = pname == "z"
    pvals = _values_for(doms[pname].set if pname in doms else None, is_logit)
    two_d = len(L.input_indices) == 2
    one_hot = any(c.name == "one_hot" for c in L.constraints)
    tset = doms[tname].set if tname in doms else None
    tvals = _targets_for(tset, pvals)
    out = []
    if not two_d:
        for t in tvals:
            if pvals is not RESIDUAL_EDGES:
                pred = np.array(pvals)
                target = np.full(len(pvals), t)
            else:  # residuals of +-1e8 around the target
                pred = np.array([t + 1e8, t - 1e8])
                target = np.full(2, t)
            if L.name == "mean_squared_log_error" or (tset is not None and tset.inf == -1):
                target = np.full(len(pred), 1.0 if t == 0.5 else t)
            out.append((f"t={t:g}", pred, target))
    else:
        # Batches of several rows (a reduction or divisor bug shows only with n > 1):
        # one batch per shift c, row r's one-hot target at class (r + c) mod m.
        m = 3
        if is_logit:
            rows = [[1e4, -1e4, 0.0], [30.0, -30.0, 1e4], [-1e4, -1e4, -1e4 + 1.0]]
        elif pvals is P_EDGES:
            # The last row holds an exact 0: its target class is never that 0 (the loss
            # is +inf there; tests/test_edges_reference.py checks that limit).
            rows = [[1e-12, 1e-6, 1 - 1e-6], [1 - 1e-12, 1e-12, 1e-6], [1 - 1e-12, 1e-12, 0.0]]
        else:
            rows = [[1e8, -1e8, 0.5], [-1e8, 1e8, 1e8]]
        pred = np.array(rows)
        hot = one_hot or (tset is not None and tset.inf == 0 and tset.sup == 1)
        for c in range(m if hot else 1):
            if hot:
                classes = [(r + c) % m for r in range(len(rows))]
                classes = [k if rows[r][k] != 0.0 else (k + 1) % m for r, k in enumerate(classes)]
                target = np.eye(m)[classes]
                out.append((f"rows-shift{c}", pred, target))
            else:
                out.append(("rows", pred, np.full(pred.shape, 0.5)))
    kws = []
    for b in L.extra_inputs:  # gaussian_nll's variance: tiny and huge
        kws.append(str(b.label))
    result = []
    param_sets = [{}] + PARAM_EDGES.get(L.name, [])
    for (cid, pred, target), params in itertools.product(out, param_sets):
        for extra_vals in [None] if not kws else [1e-12, 1e12]:
            kw = {k: np.full(pred.shape, extra_vals) for k in kws} if kws else {}
            pid = ",".join(f"{k}={v!r}" for k, v in params.items())
            eid = f"var={extra_vals:g}" if kws else ""
            case_id = "|".join(x for x in (cid, pid, eid) if x)
            result.append((case_id, pred, target, kw, params))
    return result


def _rewrite(expr):
    """Every custom function of :mod:`symloss.symbols` back to exp/log/Max (symbolic sizes)."""
    expr = expr.replace(lambda e: isinstance(e, _symbols.relu), lambda e: sp.Max(0, e.args[0]))
    for fn in (_symbols.sigmoid, _symbols.softmax, _symbols.softplus, _symbols.logsumexp):
        expr = expr.replace(lambda e, fn=fn: isinstance(e, fn), lambda e: e.rewrite(sp.exp))
    return expr


def _expand_rowmax(expr):
    """``rowmax(f, (j, 1, m))`` with a concrete ``m`` -> ``Max(f|j=1, ..., f|j=m)``."""

    def expand(e):
        ((var, lo, hi),) = e.limits
        return sp.Max(*[e.function.xreplace({var: k}) for k in range(int(lo), int(hi) + 1)])

    return expr.replace(lambda e: isinstance(e, _symbols.rowmax), expand).doit()


@functools.cache
def _compiled(name, params_items, shape, exact_items):
    """Lambdified (value, gradient...) of the loss with concrete sizes, cached.

    ``exact_items`` are the (array, index, value) of the non-prediction elements equal
    to 0 or 1: those are substituted exactly (``0 log 0 = 0``; a ``(1 - t)`` factor with
    t = 1 removes its term, as in the true function), the others are arguments.
    """
    L = _loss(name, params_items)
    expr = L.coef * sp.Sum(L.term, *[(v, 1, size) for v, size in L.indices])
    expr = _rewrite(expr)  # before the sizes: the softmax rewrite brings its own sum over m
    sizes = {size: shape[a] for a, (_, size) in enumerate(L.input_indices)}
    if len(shape) == 2:
        sizes.setdefault(_symbols.m, shape[1])
    expr = _expand_rowmax(expr.xreplace(sizes).doit())
    sym_of = {}
    for e in sorted(expr.atoms(sp.Indexed), key=str):
        idx = tuple(int(k) - 1 for k in e.indices)
        sym_of[e] = (str(e.base.label), idx, sp.Symbol(f"{e.base.label}_{idx}", real=True))
    cexpr = expr.xreplace({e: s for e, (_, _, s) in sym_of.items()})
    exact = {(a, idx): v for a, idx, v in exact_items}
    for a, idx, s in sym_of.values():
        if (a, idx) in exact:
            if exact[(a, idx)] == 0:  # the convention 0 log 0 = 0 (xlogy)
                # Any product holding both s and log(s) as factors: -s log(s)/n too, which
                # is no subtree s*log(s) (a batch of n > 1 rows writes its 1/n in there).
                cexpr = cexpr.replace(
                    lambda e, s=s: e.is_Mul and s in e.args and sp.log(s) in e.args,
                    lambda e: sp.S.Zero,
                )
            cexpr = cexpr.xreplace({s: sp.Integer(exact[(a, idx)])})
    pname = str(L.pred.label)
    args = [(a, idx, s) for a, idx, s in sym_of.values() if (a, idx) not in exact]
    pred_syms = [(idx, s) for a, idx, s in args if a == pname]
    param_syms = [p.symbol for p in L.params]
    grads = [sp.diff(cexpr, s) for _, s in pred_syms]
    # Hessian entries: the diagonal of a separable loss, else each row's block; second
    # derivatives almost everywhere (DiracDelta = 0), the convention of the kernels.
    hess_keys, hess = [], []
    for (idx, _), g in zip(pred_syms, grads):
        for idx2, s2 in pred_syms:
            if idx2 == idx if L.separable else idx2[:-1] == idx[:-1]:
                hess_keys.append((idx, idx2[-1]))
                hess.append(sp.diff(g, s2).replace(sp.DiracDelta, lambda *a: sp.S.Zero))
    outs = [cexpr, *grads, *hess]
    f = sp.lambdify([*param_syms, *[s for _, _, s in args]], outs, "mpmath", cse=True)
    return f, [(a, idx) for a, idx, _ in args], [idx for idx, _ in pred_syms], hess_keys


def _representable_scale(xs) -> float:
    """Largest magnitude among the entries that float64 can hold (0 if none)."""
    big = mpmath.mpf(np.finfo(float).max)
    return max((abs(x) for x in xs if mpmath.isfinite(x) and abs(x) <= big), default=0)


def _agree(prev, cur) -> bool:
    """Two precisions agree: to STABLE relative, or STABLE times the call's scale.

    The absolute part is 15 orders below the comparison's own floor (ATOL_REL * scale),
    so an entry that is the unresolved difference of terms of size ``scale`` (a gradient
    of e^-1e4 next to entries of order 1) is stable enough for what is asserted.
    """
    floor = STABLE * _representable_scale(cur)
    return all(abs(a - b) <= STABLE * max(abs(a), abs(b)) + floor for a, b in zip(prev, cur))


@functools.cache
def _reference_cached(name, params_items, pred_b, target_b, kw_items, shape):
    L = _loss(name, params_items)
    arrays = {
        str(L.pred.label): np.frombuffer(pred_b).reshape(shape),
        str(L.target.label): np.frombuffer(target_b).reshape(shape),
        **{k: np.frombuffer(v).reshape(shape) for k, v in kw_items},
    }
    pname = str(L.pred.label)
    exact = tuple(
        (a, idx, int(arr[idx]))
        for a, arr in sorted(arrays.items())
        if a != pname
        for idx in np.ndindex(shape)
        if arr[idx] in (0.0, 1.0)
    )
    f, arg_keys, grad_idx, hess_keys = _compiled(name, params_items, shape, exact)
    params = dict(params_items)
    pvals = [float(params.get(p.name, L.param_values[p.name])) for p in L.params]
    xvals = [float(arrays[a][idx]) for a, idx in arg_keys]
    with _big_ints():
        return _ladder(f, pvals + xvals, grad_idx, hess_keys)


@contextlib.contextmanager
def _big_ints():
    """mpmath converts integers of > 4300 digits (12800 dps; printing 1e-8692)."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(limit)


def _fmt(x) -> str:
    with _big_ints():
        return mpmath.nstr(x, 20)


def _ladder(f, vals, grad_idx, hess_keys):
    """Raise the precision until two successive precisions agree (``_agree``)."""
    prev, history = None, []
    for dps in DPS_LADDER:
        with mpmath.workdps(dps):
            # mpf(float) is exact: the float64 inputs at their binary values
            try:
                cur = [mpmath.mpf(c) for c in f(*map(mpmath.mpf, vals))]
            except ZeroDivisionError:  # an exact cancellation at this precision
                cur = None
        if cur is None or not all(mpmath.isfinite(c) for c in cur):
            # 1 - sigmoid(1e4) rounds to 0 below ~4350 digits: log(0), 0**-x; go higher
            prev = None
            history.append((dps, "non-finite"))
            continue
        zeros_ok = dps >= ZERO_CONFIRM_DPS or all(c != 0 for c in cur)
        if prev is not None and zeros_ok and _agree(prev, cur):
            k = 1 + len(grad_idx)
            return dps, cur[0], dict(zip(grad_idx, cur[1:k])), dict(zip(hess_keys, cur[k:]))
        history.append((dps, _fmt(cur[0])))
        prev = cur
    raise AssertionError(f"reference not stable up to {DPS_LADDER[-1]} digits: {history}")


def reference(L, pred, target, kw, params):
    """(dps, value, gradient array, Hessian array): stable between two successive
    precisions (asserted).  The Hessian is the diagonal (input's shape) of a separable
    loss, else the per-row blocks (shape + (m,))."""
    shape = pred.shape
    as_b = lambda a: np.ascontiguousarray(a, dtype=np.float64).tobytes()  # noqa: E731
    dps, value, grads, hess_entries = _reference_cached(
        L.name,
        tuple(sorted(params.items())),
        as_b(pred),
        as_b(target),
        tuple(sorted((k, as_b(v)) for k, v in kw.items())),
        shape,
    )
    grad = np.zeros(shape, dtype=object)
    for idx in np.ndindex(shape):
        grad[idx] = grads.get(idx, mpmath.mpf(0))
    hess = np.zeros(shape if L.separable else (*shape, shape[-1]), dtype=object)
    for hidx in np.ndindex(hess.shape):
        idx, other = (hidx, hidx[-1]) if L.separable else (hidx[:-1], hidx[-1])
        hess[hidx] = hess_entries.get((idx, other), mpmath.mpf(0))
    return dps, value, grad, hess


ALL_CASES = []
for _name in symloss.names():
    _L = symloss.get(_name)
    for _case in cases_for(_L):
        marks = ()
        if (_name, _case[0]) in KNOWN_FAILURES:
            marks = pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[(_name, _case[0])])
        ALL_CASES.append(pytest.param(_name, *_case, id=f"{_name}[{_case[0]}]", marks=marks))


@functools.cache
def _loss(name, params_items):
    return symloss.get(name, **dict(params_items))


def _close(ours: float, ref, atol: float) -> bool:
    if mpmath.isinf(ref) or abs(ref) > np.finfo(float).max:  # true value overflows float64
        return bool(np.isinf(ours)) and (ours > 0) == (ref > 0)
    if not np.isfinite(ours):
        return False
    return abs(mpmath.mpf(ours) - ref) <= REL * abs(ref) + atol


@pytest.mark.parametrize("backend", ["numpy", "c"])
@pytest.mark.parametrize("name,case_id,pred,target,kw,params", ALL_CASES)
def test_value_gradient_and_hessian_match_high_precision_reference(
    name, case_id, pred, target, kw, params, backend, request
):
    """On both kernel backends: the NumPy code the small inputs here run by default,
    and the compiled C loop that large inputs run (conftest.py's ``backend_c``)."""
    if backend == "c":
        request.getfixturevalue("backend_c")
    L = _loss(name, tuple(sorted(params.items())))
    _, ref_v, ref_g, ref_h = reference(L, pred, target, kw, params)
    with np.errstate(all="raise"):
        ours_v = float(L(pred, target, **kw))
        ours_g = np.asarray(L.grad(pred, target, **kw), dtype=float)
        ours_h = np.asarray(L.hess(pred, target, **kw), dtype=float)
    scale = float(_representable_scale([ref_v, *ref_g.ravel()]))
    atol = ATOL_REL * scale if scale else 1e-300
    problems = []
    if not _close(ours_v, ref_v, atol):
        problems.append(f"value: ours={ours_v!r} ref={_fmt(ref_v)}")
    for idx in np.ndindex(pred.shape):
        if not _close(ours_g[idx], ref_g[idx], atol):
            problems.append(f"grad{idx}: ours={ours_g[idx]!r} ref={_fmt(ref_g[idx])}")
    # The Hessian on its own scale (its entries are of another order than the gradient's).
    h_scale = float(_representable_scale(ref_h.ravel()))
    h_atol = ATOL_REL * h_scale if h_scale else 1e-300
    sentence, when = DOCUMENTED_NAN_HESSIAN.get(name, ("", lambda v: False))
    nan_ok = when(L.param_values)
    assert not nan_ok or sentence in L.conventions
    for idx in np.ndindex(ref_h.shape):
        if nan_ok and np.isnan(ours_h[idx]) and abs(ref_h[idx]) < 1e-300:
            continue
        if not _close(ours_h[idx], ref_h[idx], h_atol):
            problems.append(f"hess{idx}: ours={ours_h[idx]!r} ref={_fmt(ref_h[idx])}")
    where = f"{name} at pred={pred.tolist()} target={target.tolist()} {kw} {params}"
    assert not problems, where + ": " + "; ".join(problems)
