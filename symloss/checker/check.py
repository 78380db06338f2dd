r"""Check your own loss or gradient code against the symbolic truth.

``torch.autograd.gradcheck``, ``jax.test_util.check_grads`` and
``scipy.optimize.check_grad`` compare a gradient with finite differences of the *same*
code, so a shortcut that agrees with itself on the inputs tried passes:
``softmax(z) - t`` passes them with one-hot targets although it is wrong whenever a
target row does not sum to 1.  :func:`check` compares with the loss's closed-form value
and gradient instead, on input families drawn to expose bugs, and names what it finds.

**Input families.** ``interior`` (random points inside the domains); ``edges``
(probabilities at 0, 1e-12, 1e-6, 1 - 1e-6, 1 - 1e-12 and 1; logits at ±30 and ±1e4;
other reals at ±1e3, ±1e6 and 1e-8; half-lines at 1e-12, 1e-6, 1e3 and 1e6 from
their end); ``kinks`` (predictions on the zeros of
:attr:`Loss.kinks`); and one family per kind of target: ``one-hot`` or ``hard``,
``smoothed`` (label smoothing 0.1), ``soft``, ``real``, ``unnormalised`` (rows that
break the one-hot constraint, judged by the general gradient
:meth:`Loss.general_gradient`) and integer ``labels``.  Code may refuse (raise on) the
last two, which lie outside what many implementations accept; it may not answer them
wrongly.  Sizes are n in {3, 5, 7} samples and m in {4, 6} classes, so that factors
n, m and 2 cannot be confused.

**Tolerance.** A component passes when :math:`|u - g| \le r\,(\max(|u|, |g|) + s)`,
with ``u`` your number, ``g`` the truth, and ``s`` the *term magnitude*: the closed
form evaluated with every term of every sum made positive (``|softmax| + |t|`` for
``softmax - t``).  A gradient component near zero is judged against the size of what
cancelled in it, not against zero.  ``r = max(1e-7, sqrt(eps))`` of the dtype you
return: 1e-7 for float64, 3.5e-4 for float32.  Components where the truth is not
finite are not compared.

**Diagnoses,** tried in this order on each failing check, each a hypothesis tested on
every input of the family: a non-finite result where the loss is finite (where, and
the likely cause); a constant factor (-1, n, 1/n, m, 1/m, n/m, m/n, 2, ½, and
products with -1); the constrained closed form on targets that break the constraint;
a size read from the wrong axis; one sample's gradient depending on another sample;
a failure confined to one branch of a ``Piecewise``; a term of the derivative missing
or counted twice; lost precision.

**Kinks.** At a point where the loss is not differentiable, the gradient is not
compared with one number: the report says which subgradient the code chose (the left
or right derivative, the midpoint, one in between) and fails only outside them.

References
----------
The checkers it is compared with: PyTorch ``torch.autograd.gradcheck``, JAX
``jax.test_util.check_grads`` and SciPy ``scipy.optimize.check_grad``, all of which
difference the code under test itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from symloss.checker import inputs
from symloss.checker.diagnose import OUTSIDE, Diagnose, Result, compare, rtol_for, subgradient
from symloss.checker.inputs import (
    Case,
    Family,
    as_dict,
    derived,
    describe,
    evaluate,
    magnitude,
    summand,
)
from symloss.core.loss import Loss
from symloss.errors import CheckFailed
from symloss.registry import get

__all__ = ["Finding", "KinkFinding", "Report", "check"]


@dataclass
class Finding:
    """One row of the report: one check (value or gradient) on one input family."""

    check: str
    family: str
    points: int  # inputs compared
    max_abs_err: float
    max_rel_err: float
    verdict: str  # "ok" | "FAIL" | "refused"
    diagnosis: str = ""
    worst: str = ""  # the worst component and its input, for people
    worst_input: dict = field(default_factory=dict)  # the whole input, to reproduce it


@dataclass
class KinkFinding:
    """Which subgradient the code chose at one kink of the loss."""

    where: str
    choices: dict[str, int]  # choice -> how many kink points
    example: str
    ok: bool


@dataclass
class Report:
    """What :func:`check` found; truthy when the code is right."""

    loss: str
    seed: int
    samples: int
    findings: list[Finding]
    kinks: list[KinkFinding] = field(default_factory=list)
    gradcheck: dict[str, bool] | None = None  # torch's verdict per family, for comparison
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.verdict != "FAIL" for f in self.findings) and all(k.ok for k in self.kinks)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        verdict = "ok" if self.ok else f"FAIL ({len(self.failures())} failing checks)"
        return f"<Report {self.loss}: {verdict}; {len(self.findings)} checks, seed {self.seed}>"

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "FAIL"]

    def raise_if_failed(self) -> None:
        """Raise :class:`CheckFailed`, an ``AssertionError``, with this report as message."""
        if not self.ok:
            raise CheckFailed(self)

    def to_dict(self) -> dict:
        """The report as JSON-able data (non-finite numbers as the strings "inf", "nan")."""
        return _jsonable(
            {
                "loss": self.loss,
                "ok": self.ok,
                "seed": self.seed,
                "samples": self.samples,
                "findings": [dataclasses.asdict(f) for f in self.findings],
                "kinks": [dataclasses.asdict(k) for k in self.kinks],
                "gradcheck": self.gradcheck,
                "notes": self.notes,
            }
        )

    def __str__(self) -> str:
        head = ("check", "family", "inputs", "max abs err", "max rel err", "verdict", "worst input")
        rows = [
            (
                f.check,
                f.family,
                str(f.points),
                _num(f.max_abs_err),
                _num(f.max_rel_err),
                f.verdict,
                f.worst if f.verdict == "FAIL" else "",
            )
            for f in self.findings
        ]
        widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
        lines = [f"symloss check {self.loss}: {self.samples} inputs per family, seed {self.seed}"]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *rows]]
        said: dict[tuple[str, str], list[str]] = {}
        for f in self.findings:
            if f.diagnosis:
                said.setdefault((f.check, f.diagnosis), []).append(f.family)
        lines += [f"{c} on {', '.join(fams)}: {d}" for (c, d), fams in said.items()]
        for k in self.kinks:
            total = sum(k.choices.values())
            chosen = ", ".join(f"{c} at {q} of {total} points" for c, q in k.choices.items())
            lines.append(
                f"{'' if k.ok else 'FAIL '}kink at {k.where}: your gradient chose {chosen}"
            )
            lines.append(f"  {k.example}")
        if self.gradcheck:
            said_torch = ", ".join(
                f"{k} {'passed' if v else 'FAILED'}" for k, v in self.gradcheck.items()
            )
            lines.append(
                f"for comparison, torch.autograd.gradcheck (your code against its own "
                f"finite differences): {said_torch}"
            )
        lines += self.notes
        bad = len(self.failures()) + sum(not k.ok for k in self.kinks)
        lines.append("verdict: ok" if self.ok else f"verdict: FAIL ({bad} failing checks)")
        return "\n".join(lines)


def check(
    loss: Loss | str,
    value: Callable | None = None,
    grad: Callable | None = None,
    params: dict | None = None,
    samples: int = 20,
    seed: int = 0,
    torch: bool = False,
    rtol: float | None = None,
    families: tuple[str, ...] | None = None,
) -> Report:
    r"""Check a loss function and/or its gradient against the symbolic truth.

    Parameters
    ----------
    loss : Loss or str
        The loss the code claims to compute, or its registry name.
    value : callable, optional
        ``value(pred, target, **extra)`` returning the loss (per-sample values for
        ``reduction="none"``).
    grad : callable, optional
        ``grad(pred, target, **extra)`` returning an array shaped like ``pred``: the
        gradient by the loss's own input (the logits, for a loss on logits).
    params : dict, optional
        Options bound by ``symloss.get(name, **params)`` (``delta=1.5``,
        ``reduction="sum"``); a ``TypeError`` names the valid ones.
    samples : int
        Inputs drawn per family.
    seed : int
        Seed of the draws: the same seed gives the same report.
    torch : bool
        The functions take and return torch tensors; without ``grad`` the gradient is
        autograd's of ``value``.  ``torch.autograd.gradcheck`` then runs too, for
        comparison (it does not decide the verdict).
    rtol : float, optional
        Overrides the tolerance chosen from your dtype (see the module docstring).
    families : tuple of str, optional
        Run only these input families.

    Returns
    -------
    Report
        ``report.ok``; ``print(report)`` shows the table and the diagnoses.

    Examples
    --------
    >>> import numpy as np
    >>> from symloss.checker import check
    >>> def grad(z, t):  # sigmoid(z) - t, without the 1/n of the mean
    ...     return 1 / (1 + np.exp(-z)) - t
    >>> report = check("bce_logits", grad=grad, samples=5)
    >>> report.ok
    False
    >>> print(report.failures()[0].diagnosis)  # doctest: +NORMALIZE_WHITESPACE
    your gradient is 7.0× the truth at n = 7 (n× at every size tried: n = 3, 5, 7):
    did you forget the 1/n of the mean reduction?
    """
    if value is None and grad is None:
        raise ValueError("check needs value=, grad= or both")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if torch and importlib.util.find_spec("torch") is None:
        raise ImportError("check(..., torch=True) needs PyTorch (pip install torch)")
    L = _resolve(loss, params)
    fams = inputs.families(L)
    unknown = set(families or ()) - {f.name for f in fams}
    if unknown:
        raise ValueError(
            f"no input families {sorted(unknown)} for {L.name}; "
            f"choose from {', '.join(f.name for f in fams)}"
        )
    runner = _Runner(L, value, grad, torch, rtol)
    rng = np.random.default_rng(seed)
    report = Report(L.name, seed, samples, [])
    for fam in fams:
        cases = [fam.make(rng) for _ in range(samples)]
        if families is not None and fam.name not in families:
            continue  # drawn all the same, so that a family's inputs do not depend on the others
        if value is not None:
            report.findings.append(runner.run("value", fam, cases))
        if grad is not None or torch:
            name = "gradient" if grad is not None else "gradient (autograd)"
            report.findings.append(runner.run(name, fam, cases))
    report.kinks = runner.kink_findings()
    if torch:
        report.gradcheck = runner.gradcheck()
    report.notes = runner.notes
    return report


def _resolve(loss, params) -> Loss:
    if isinstance(loss, str):
        return get(loss, **(params or {}))
    if not params:
        return loss
    try:
        registered = get(loss.name)
    except KeyError:
        registered = None
    if registered is not loss:
        raise TypeError(
            f"params= binds options by registry name, and {loss.name!r} is not a registered "
            "loss: build the Loss with the values instead"
        )
    return get(loss.name, **params)


class _Runner:
    """Calls the user's code and the truth on each input, and compares them."""

    def __init__(self, L: Loss, value, grad, torch: bool, rtol: float | None):
        self.L, self.value, self.grad, self.torch, self.rtol = L, value, grad, torch, rtol
        self.notes: list[str] = []
        self.kink_tally: dict[int, dict[str, int]] = {}  # kink -> choice -> points
        self.kink_example: dict[int, str] = {}

    def _args(self, case: Case, pred=None, requires_grad=False):
        args, kw = [case.pred if pred is None else pred, case.target], dict(case.extra)
        if self.torch:
            import torch

            args = [
                torch.tensor(a, dtype=torch.long if a.dtype.kind in "iu" else torch.float64)
                for a in args
            ]
            args[0].requires_grad_(requires_grad)
            kw = {k: torch.tensor(v, dtype=torch.float64) for k, v in kw.items()}
        return args, kw

    def user(self, what: str, case: Case, pred=None) -> tuple[np.ndarray, float]:
        """The user's value or gradient as float64, and the tolerance for its dtype."""
        # Warnings inside the user's code (log(0), overflow) are silenced: the
        # non-finite results they come with are reported instead.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if what == "value" or self.grad is not None:
                args, kw = self._args(case, pred)
                out = (self.value if what == "value" else self.grad)(*args, **kw)
            else:  # autograd of the value; a "none" reduction differentiates the sum
                import torch

                args, kw = self._args(case, pred, requires_grad=True)
                (out,) = torch.autograd.grad(
                    self.value(*args, **kw).sum(), args[0], allow_unused=True
                )
                out = torch.zeros_like(args[0]) if out is None else out
            if hasattr(out, "detach"):
                out = out.detach().cpu().numpy()
            raw = np.asarray(out)
            return raw.astype(np.float64), self.rtol or rtol_for(raw.dtype)

    def truth(self, what: str, case: Case, pred=None) -> np.ndarray:
        if pred is None and what in case.memo:
            return case.memo[what]
        p, T = case.pred if pred is None else pred, case.truth
        with np.errstate(all="ignore"):
            if what == "value":
                out = np.asarray(T(p, case.target, **case.extra), dtype=np.float64)
            else:
                out = T.grad(p, case.target, **case.extra)
        if pred is None:
            case.memo[what] = out
        return out

    def scale(self, what: str, case: Case) -> np.ndarray:
        """The term magnitude ``s`` of the tolerance (see the module docstring)."""
        T = case.truth
        with np.errstate(all="ignore"):
            mag = magnitude(summand(T, what))
            return np.abs(evaluate(T, "magnitude", mag, case, what, finite=True))

    def run(self, check_name: str, fam: Family, cases: list[Case]) -> Finding:
        what = "value" if check_name == "value" else "gradient"
        results: list[Result] = []
        for case in cases:
            try:
                u, rtol = self.user(what, case)
            # The user's code raised: refused, or failed.  SystemExit too: a function
            # that calls sys.exit(0) must not turn a check into a silent pass.
            except (Exception, SystemExit) as exc:
                msg = f"{type(exc).__name__}: {exc}"
                if fam.optional:
                    said = f"your code refuses these inputs ({msg})"
                    return Finding(check_name, fam.name, 0, 0.0, 0.0, "refused", said)
                return self._failed(check_name, fam, case, f"raised {msg}")
            g = self.truth(what, case)
            if u.shape != g.shape and not (what == "value" and u.size == 1 == g.size):
                msg = f"returns shape {u.shape} where the truth has shape {g.shape}"
                if what == "value" and g.size == 1:
                    msg += f": per-sample values, not reduced ({self.L.reduction})?"
                return self._failed(check_name, fam, case, msg)
            u = u.reshape(g.shape)
            s = self.scale(what, case)
            ok, abs_err, rel_err = compare(u, g, s, rtol)
            if case.kink is not None and what == "gradient":
                ok = ok | self._at_kinks(case, u, g)  # judged there instead
            results.append(Result(case, u, g, s, rtol, ok, abs_err, rel_err))
        return self._finding(check_name, what, fam, results)

    def _failed(self, check_name, fam, case, message) -> Finding:
        where, data = describe(self.L, case), as_dict(case)
        return Finding(check_name, fam.name, 1, math.inf, math.inf, "FAIL", message, where, data)

    def _finding(self, check_name, what, fam, results: list[Result]) -> Finding:
        def excess(r):  # how far past its tolerance each component is
            with np.errstate(all="ignore"):
                tol = r.rtol * (np.maximum(np.abs(r.user), np.abs(r.truth)) + r.scale)
                return np.where(r.ok, 0.0, np.nan_to_num(r.abs_err / (tol + 1e-300), nan=np.inf))

        finding = Finding(
            check_name,
            fam.name,
            points=len(results),
            max_abs_err=max(float(r.abs_err.max(initial=0.0)) for r in results),
            max_rel_err=max(float(r.rel_err.max(initial=0.0)) for r in results),
            verdict="ok" if all(r.ok.all() for r in results) else "FAIL",
        )
        if finding.verdict == "FAIL":
            worst = max(results, key=lambda r: float(excess(r).max(initial=0.0)))
            idx = (
                np.unravel_index(int(np.argmax(excess(worst))), worst.user.shape)
                if worst.user.ndim
                else None
            )
            finding.worst = describe(self.L, worst.case, idx)
            finding.worst_input = as_dict(worst.case)
            finding.diagnosis = Diagnose(self, what, results).run()
        return finding

    def _at_kinks(self, case: Case, u: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Name the subgradient the user chose at each kink; the mask of the kinks.

        The one-sided derivatives are the truth just left and right of the point (the
        loss is separable, so every element can be shifted at once).  A placed point
        where they agree is no kink after all, and is compared as usual.
        """
        h = 1e-9 * np.maximum(1.0, np.abs(case.pred))
        left, left2, right, right2 = (
            self.truth("gradient", case, case.pred + k * h) for k in (-1, -2, 1, 2)
        )
        # A jump that does not shrink with h is a kink; a smooth point moves by O(h).
        drift = np.abs(right2 - right) + np.abs(left - left2)
        top = float(np.abs(g[np.isfinite(g)]).max(initial=0.0))
        tol = 1e-6 * np.maximum(np.maximum(np.abs(left), np.abs(right)), top)
        kink = case.kink & (np.abs(left - right) > 10 * drift + tol)
        for idx in zip(*np.nonzero(kink)):
            lo, hi, mine = float(left[idx]), float(right[idx]), float(u[idx])
            k = int(case.kink_at[idx])
            choice = subgradient(mine, lo, hi, tol[idx])
            counts = self.kink_tally.setdefault(k, {})
            counts[choice] = counts.get(choice, 0) + 1
            if k not in self.kink_example or choice == OUTSIDE:
                self.kink_example[k] = (
                    f"e.g. at {describe(self.L, case, idx)}: yours {mine:.6g}, "
                    f"left derivative {lo:.6g}, right {hi:.6g}"
                )
        return kink

    def kink_findings(self) -> list[KinkFinding]:
        kinks = derived(self.L).kinks
        return [
            KinkFinding(kinks[k][0], counts, self.kink_example[k], OUTSIDE not in counts)
            for k, counts in sorted(self.kink_tally.items())
        ]

    def gradcheck(self) -> dict[str, bool]:
        """torch.autograd.gradcheck on the first input of each family, for comparison."""
        if self.value is None:
            self.notes.append("torch.autograd.gradcheck needs value= to difference; not run")
            return {}
        out = {}
        for fam in inputs.families(self.L):
            case = fam.make(np.random.default_rng(0))
            if case.target.dtype.kind in "iu":
                continue
            (p, *rest), kw = self._args(case, requires_grad=True)
            out[fam.name] = _torch_gradcheck(self.value, self.grad, p, rest, kw)
        return out


def _torch_gradcheck(value, grad, p, rest, kw) -> bool:
    """Run torch's gradcheck on the user's value, with the user's grad as its backward."""
    import torch

    class UserGrad(torch.autograd.Function):  # the user's backward, as they would wire it
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return value(x, *rest, **kw)

        @staticmethod
        def backward(ctx, g_out):
            (x,) = ctx.saved_tensors
            return g_out * grad(x.detach(), *rest, **kw)

    fn = UserGrad.apply if grad is not None else (lambda x: value(x, *rest, **kw))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(
                torch.autograd.gradcheck(
                    fn, (p,), eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False, fast_mode=True
                )
            )
        except Exception:
            return False


def _num(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    return x
