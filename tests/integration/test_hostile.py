r"""Hostile input (issue 19): work that a formula can trigger is bounded in time and memory.

* Budgets (:mod:`symloss.symbolic.budget`): the timer ticks, checks memory as well as time,
  fires again when its exception is swallowed, and leaves no timer behind.
* The hostile table (:func:`hostile_table`): for each class of hostile construction
  (huge exponents, ``\exp(k \ln a)``, towers, factorials, huge literals, products of
  constants, big rationals, sums with huge literal limits, simplify-heavy constants,
  evaluation- and identify-heavy formulas, reserved names) a generator of variants.
  Every variant runs the whole path (parse, printing, gradient, evaluation, identify)
  in a subprocess limited to 2 GiB of address space (``RLIMIT_AS``) with a hard
  30 s limit per input; the outcome must be a Loss or a SymlossError, never a crash,
  a hang, a MemoryError or a raw traceback.  The inputs run in two batches at once
  (one child process each, with per-input budgets), so the table takes about a
  minute; the worst time and peak memory are printed with ``-s``.
* A Hypothesis strategy of magnitude constructions, run in such a subprocess too.
* In-process checks of the smaller items: parameter values, reserved names, the
  budget on the scale's ``simplify``, on evaluation's symbolic steps and on identify.

Tests that could hang the test process if a guard were removed run in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import pytest

from symloss import BudgetExceeded
from symloss.symbolic import budget as _budget

# One worker under pytest-xdist (pyproject: --dist loadgroup): the hostile table is
# built once per process (a minute of children).
pytestmark = pytest.mark.xdist_group("test_hostile")

ROOT = Path(__file__).resolve().parents[2]
HARD_SECONDS = 30.0  #: a hostile input must finish its whole path within this, or it hangs
ADDRESS_SPACE = 2 * 2**30  #: RLIMIT_AS of the children: 2 GiB
CASE_BUDGET = 2.0  #: budget_seconds of each input's derivation and evaluation steps
IDENTIFY_BUDGET = 5.0  #: identify()'s budget for each input (about 1.5 s for no match)


# ============================================================================ budgets
def _spin():
    while True:  # real work in the loop: CPython 3.11 may not catch a signal's
        sum(range(100))  # exception raised on a jump to itself (`while True: pass`)


def _no_timer_left():
    assert not _budget._FRAMES
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None, signal.default_int_handler)


def test_budget_stops_a_long_loop():
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="spinning took longer than its budget of 0.2 s"):
        with _budget.budget(0.2, "spinning"):
            _spin()
    assert time.monotonic() - start < 1.0
    _no_timer_left()


def test_budget_bounds_memory():
    """Growing memory is stopped at the memory budget, well before the time budget."""
    kept = []
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="memory budget of 64 MiB"):
        with _budget.budget(30.0, "allocating", memory_mb=64):
            while True:
                kept.append(bytearray(2**20))  # touched: resident at once
    assert time.monotonic() - start < 5.0
    assert 40 <= len(kept) < 400, len(kept)  # stopped near 64 MiB, not at the time limit
    kept.clear()
    _no_timer_left()


def _work(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))


def test_expired_budget_fires_again_when_its_exception_is_swallowed():
    """SymPy has ``except Exception: pass`` in places; the budget must still end the block."""
    swallowed = False
    start = time.monotonic()
    with pytest.raises(BudgetExceeded):
        with _budget.budget(0.2, "stubborn"):
            try:
                _work(10.0)  # the first expiry surely lands here ...
            except BudgetExceeded:
                swallowed = True  # ... and is swallowed
            _work(3.0)  # only a second firing stops this
    assert swallowed and time.monotonic() - start < 1.0
    _no_timer_left()


def test_nested_budgets_the_tighter_wins_and_outer_fires_through_inner():
    with pytest.raises(BudgetExceeded, match="outer took longer"):
        with _budget.budget(0.2, "outer"):
            with _budget.budget(10.0, "inner"):
                _spin()
    with pytest.raises(BudgetExceeded, match="inner took longer"):
        with _budget.budget(10.0, "outer"):
            with _budget.budget(0.2, "inner"):
                _spin()
    _no_timer_left()


def test_many_short_budgets_leave_no_timer_behind():
    """Leaving a budget as its timer ticks must not leave the timer running."""
    for _ in range(2000):
        try:
            with _budget.budget(0.001, "short"):
                sum(range(3000))
        except BudgetExceeded:
            pass
    _no_timer_left()


def test_memory_and_recursion_errors_become_budget_exceeded():
    def deep(k):
        return deep(k + 1)

    with pytest.raises(BudgetExceeded, match="nested too deeply"):
        with _budget.budget(5.0, "recursing"):
            deep(0)
    with pytest.raises(BudgetExceeded, match="ran out of memory"):
        with _budget.budget(5.0, "allocating"):
            raise MemoryError
    _no_timer_left()


def test_no_budget_means_no_timer():
    with _budget.budget(None, "trusted"):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# ============================================================================ the table
#: A sum over the samples around a term, so that a refusal is about the term alone.
MEAN = r"\frac{1}{n}\sum_{i=1}^{n} "


def _case(cls: str, label: str, text: str, expect: str, reason: str = "", **extra) -> dict:
    """One hostile input.  *expect*: ``"ParseError"`` (refused, with *reason* in the
    message), ``"loss"`` (every step succeeds) or ``"any"`` (a Loss, and each later
    step succeeds or raises a SymlossError)."""
    return {"id": f"{cls}:{label}", "text": text, "expect": expect, "reason": reason, **extra}


def power_variants() -> list[dict]:
    """Huge exponents written with ``^``, over numbers, elements and functions."""
    bases = [
        "2",
        "y_i",
        "(y_i - t_i)",
        r"\sqrt{3} y_i",
        "0.5",
        r"\pi",
        r"\frac{3}{7}",
        r"\log(y_i)",
        "(2 y_i)",
        r"\left|y_i - t_i\right|",
    ]
    exponents = [
        "10^{99}",
        "10^{7}",
        "99999999",
        "1001",
        "-10^{9}",
        r"\frac{10^{9}}{7}",
        "2^{2^{5}}",
        "9^{9}",
    ]
    out = [
        _case(
            "power",
            f"{b}^{e}",
            MEAN + f"{{y_i + {b}^{{{e}}}}}",
            "ParseError",
            "too large",
            at=f"{b}^" if not b.startswith(r"\sqrt") else "y_i^",
        )
        for b in bases
        for e in exponents
    ]
    out.append(_case("power", "y^1000 allowed", MEAN + "{y_i^{1000}}", "any"))
    out.append(_case("power", "2^-1000 allowed", MEAN + r"{y_i \cdot 2^{-1000}}", "loss"))
    return out


def exp_log_variants() -> list[dict]:
    r"""``\exp(k \ln a)`` in its spellings: SymPy turns it into ``a^k``."""
    out = []
    for k in ["10^{99}", "10^{7}", "99999999", "1001"]:
        for label, term in [
            ("e^{k ln 2}", rf"e^{{{k} \ln 2}}"),
            ("exp(k log 3)", rf"\exp({k}\log(3))"),
            ("e^{k log_2 5}", rf"e^{{{k} \log_{{2}} 5}}"),
            ("exp(k ln y)", rf"\exp({k} \ln(y_i))"),
            ("e^{k(ln 2 + ln 3)}", rf"e^{{{k} (\ln 2 + \ln 3)}}"),
            ("e^{ln 2 k + y}", rf"e^{{\ln(2) \cdot {k} + y_i}}"),
            ("(e^{ln 2})^k", rf"(e^{{\ln 2}})^{{{k}}}"),
            ("(e^{y})^k", rf"(e^{{y_i}})^{{{k}}}"),
            ("(3 e^{y ln 2})^k", rf"(3 e^{{y_i \ln 2}})^{{{k}}}"),
        ]:
            out.append(
                _case(
                    "exp_log", f"{label} k={k}", MEAN + f"{{y_i + {term}}}", "ParseError", at=term
                )
            )
        # A symbol in the coefficient: exact only once identify() puts numbers in.
        symbolic = MEAN + rf"{{y_i \cdot e^{{{k} t_i \ln 2}}}}"
        out.append(
            _case(
                "exp_log", f"e^(k t ln 2) k={k}", symbolic, "ParseError" if k != "1001" else "any"
            )
        )
    return out


def tower_variants() -> list[dict]:
    """Nested powers: numbers, elements, and powers of powers (their exponents multiply)."""
    out = []
    for depth in (3, 4, 5, 8):
        tower = "2^{" * depth + "2" + "}" * depth
        out.append(
            _case(
                "tower",
                f"2^2^..^2 depth {depth}",
                MEAN + f"{{y_i \\cdot {tower}}}",
                "loss" if depth <= 3 else "ParseError",
            )
        )
    out += [
        _case("tower", "9^9^9", MEAN + r"{y_i \cdot 9^{9^{9}}}", "ParseError", "too large"),
        _case("tower", "y^(2^2^2^2)", MEAN + r"{y_i^{2^{2^{2^{2}}}}}", "ParseError", "too large"),
        _case("tower", "((y^10)^10)^10", MEAN + r"{((y_i^{10})^{10})^{10}}", "any"),
        _case(
            "tower", "((y^10)^10)^11", MEAN + r"{((y_i^{10})^{10})^{11}}", "ParseError", "exponent"
        ),
        _case("tower", "(y^1000)^1000", MEAN + r"{(y_i^{1000})^{1000}}", "ParseError", "exponent"),
        _case(
            "tower", "((y^1000)^1000)^1000", MEAN + r"{((y_i^{1000})^{1000})^{1000}}", "ParseError"
        ),
        _case(
            "tower",
            "sqrt3 tower",
            MEAN + r"{y_i \cdot \sqrt{3}^{\sqrt{3}^{\sqrt{3}^{100}}}}",
            "ParseError",
        ),
        _case("tower", "y^(y^(y^...))", MEAN + "{" + "y_i^{" * 12 + "y_i" + "}" * 12 + "}", "any"),
    ]
    return out


def factorial_variants() -> list[dict]:
    """Factorials, binomials and Gamma of huge numbers: not in the grammar at all."""
    texts = [
        r"(10^{99})!",
        r"y_i!",
        r"\binom{10^{99}}{5}",
        r"\Gamma(10^{99})",
        r"\operatorname{factorial}(10^{99})",
        r"\operatorname{gamma}(y_i)",
        r"{10^{99} \choose 2}",
    ]
    return [_case("factorial", t, MEAN + f"{{y_i + {t}}}", "ParseError") for t in texts]


def literal_variants() -> list[dict]:
    """Huge integer literals and numbers near the digit limits (printing included)."""
    return [
        _case("literal", "100 digits", MEAN + "{y_i \\cdot " + "9" * 100 + "}", "loss"),
        _case(
            "literal", "101 digits", MEAN + "{y_i \\cdot " + "9" * 101 + "}", "ParseError", "digits"
        ),
        _case("literal", "100-digit decimal", MEAN + "{y_i \\cdot 0." + "0" * 98 + "1}", "loss"),
        _case("literal", "10^999 prints", MEAN + r"{y_i \cdot 10^{999}}", "loss"),
        _case("literal", "10^-999 prints", MEAN + r"{y_i \cdot 10^{-999}}", "loss"),
        _case(
            "literal", "10^1000", MEAN + r"{y_i \cdot 10^{1000}}", "ParseError", "number too large"
        ),
        _case(
            "literal",
            "10^4400 (over 4300 digits)",
            MEAN + r"{y_i \cdot 10^{4400}}",
            "ParseError",
            "too large",
        ),
        _case("literal", "2^999 * 3^600", MEAN + r"{y_i \cdot 2^{999} \cdot 3^{600}}", "loss"),
        _case(
            "literal",
            "(99..9)^11 100 digits",
            MEAN + "{y_i \\cdot " + "9" * 100 + "^{11}}",
            "ParseError",
            "number too large",
        ),
    ]


def product_variants() -> list[dict]:
    """Products of many constants fold into one number: their digits add up."""
    big = "10^{99}"
    out = []
    for count, expect in [(5, "loss"), (11, "ParseError"), (60, "ParseError")]:
        product = r" \cdot ".join([big] * count)
        out.append(
            _case("products", f"{count} x 10^99", MEAN + f"{{y_i \\cdot {product}}}", expect)
        )
    out += [
        _case(
            "products",
            "coefficient into a sum",
            MEAN + r"{10^{999} (10^{999} y_i + 1)}",
            "ParseError",
            "number too large",
        ),
        _case(
            "products",
            "two coefficients",
            MEAN + r"{10^{999} y_i \cdot 10^{999} t_i}",
            "ParseError",
            "number too large",
        ),
        _case(
            "products",
            "(10^999 y)^5",
            MEAN + r"{(10^{999} y_i)^{5}}",
            "ParseError",
            "number too large",
        ),
        _case(
            "products",
            "log factors keep their numbers",
            MEAN + r"{\log(10^{99} + y_i) \cdot \log(10^{99} + t_i)}",
            "any",
        ),
        _case("products", "10^999 outside", r"10^{999} \cdot " + MEAN + "{y_i}", "loss"),
    ]
    return out


def rational_variants() -> list[dict]:
    """Big rationals: sums of fractions with big denominators, powers of them."""

    def fractions(count):
        return " + ".join(rf"\frac{{1}}{{10^{{99}} + {2 * k + 1}}}" for k in range(count))

    return [
        _case("rationals", "5 fractions", MEAN + f"{{y_i \\cdot ({fractions(5)})}}", "loss"),
        _case(
            "rationals",
            "12 fractions",
            MEAN + f"{{y_i \\cdot ({fractions(12)})}}",
            "ParseError",
            "number too large",
        ),
        _case("rationals", "(3/7)^1000", MEAN + r"{y_i \cdot (\frac{3}{7})^{1000}}", "loss"),
        _case(
            "rationals",
            "((10^99+1)/10^99)^1000",
            MEAN + r"{y_i \cdot (\frac{10^{99}+1}{10^{99}})^{1000}}",
            "ParseError",
            "number too large",
        ),
        _case("rationals", "y^(10^99+1)/10^99", MEAN + r"{y_i^{\frac{10^{99}+1}{10^{99}}}}", "any"),
        _case("rationals", "1001st root", MEAN + r"{\sqrt[10^{99}]{y_i}}", "any"),
    ]


def sum_variants() -> list[dict]:
    """Sums (and sums of sums) with huge literal limits, which ``doit`` expands."""
    return [
        _case(
            "sums",
            "sum 2^k to 10^99",
            MEAN + r"y_i \sum_{k=1}^{10^{99}} 2^{k}",
            "ParseError",
            "too large",
        ),
        _case(
            "sums",
            "sum log k to 10^9 (issue)",
            MEAN + r"y_i \sum_{k=1}^{10^{9}} \log(k)",
            "ParseError",
            "expand",
        ),
        _case(
            "sums",
            "sum y_ij to 10^6",
            MEAN + r"\sum_{j=1}^{1000000} y_{ij}",
            "ParseError",
            "expand",
        ),
        _case(
            "sums",
            "sum from 10^99 to m",
            MEAN + r"y_i \sum_{k=10^{99}}^{m} 2^{k}",
            "ParseError",
            "too large",
        ),
        _case(
            "sums",
            "100 x 100 nested",
            MEAN + r"\sum_{j=1}^{100} \sum_{k=1}^{100} y_{ij} t_{ik}",
            "ParseError",
            "expand",
        ),
        _case(
            "sums",
            "k^1000 to 50",
            MEAN + r"y_i \sum_{k=1}^{50} k^{1000}",
            "ParseError",
            "too large",
        ),
        _case(
            "sums",
            "nested limit from the outer",
            MEAN + r"y_i \sum_{k=1}^{10^{4}} \sum_{l=1}^{k} l",
            "ParseError",
            "expand",
        ),
        _case(
            "sums", "constant body 10^99 times", MEAN + r"y_i \sum_{k=1}^{10^{99}} \log(2)", "any"
        ),
        _case("sums", "sum k^2 to 3", MEAN + r"{y_i \sum_{k=1}^{3} k^{2}}", "loss"),
        _case("sums", "sum y_ij to 10", MEAN + r"\sum_{j=1}^{10} (y_{ij} - t_{ij})^2", "any"),
        _case("sums", "1000 logs", MEAN + r"{y_i \sum_{k=1}^{1000} \log(k + 1)}", "any"),
        _case("sums", "max over j", MEAN + r"\max_{j}(y_{ij})", "any"),
    ]


#: The issue's 912-character product: simplify ran past 120 s on it.
COSINES = r"\cos(\frac{\pi}{31})" + "".join(
    rf" \cdot \cos(\frac{{{k}\pi}}{{31}})" for k in range(2, 31)
)


def simplify_variants() -> list[dict]:
    """Constants that keep ``simplify`` busy: only cosmetic, so from_latex stays fast."""
    roots = r" \cdot ".join(rf"\sqrt{{{k}}}" for k in range(2, 40))
    return [
        _case(
            "simplify",
            "30 cosines (issue)",
            COSINES + r" \cdot \frac{1}{n}\sum_{i=1}^{n} (y_i - t_i)^2",
            "any",
            parse_under=8.0,
        ),
        _case(
            "simplify",
            "cosines in the term",
            MEAN + "{(y_i - t_i)^2 \\cdot " + COSINES + "}",
            "any",
        ),
        _case(
            "simplify",
            "38 square roots",
            roots + r" \cdot \frac{1}{n}\sum_{i=1}^{n} y_i",
            "any",
            parse_under=8.0,
        ),
        _case(
            "simplify",
            "nested radicals",
            r"\sqrt{2 + \sqrt{3 + \sqrt{5 + \sqrt{7}}}} \cdot \frac{1}{n}\sum_{i=1}^{n} y_i",
            "any",
        ),
    ]


def evaluation_variants() -> list[dict]:
    """Formulas whose evaluation path (doit, stabilisation, compile) is the heavy part."""
    softplus = " + ".join(rf"\log(1 + e^{{y_i - {k}}})" for k in range(1, 60))
    return [
        _case(
            "evaluation",
            "sum log k to 10^9 (issue)",
            MEAN + r"y_i \sum_{k=1}^{10^{9}} \log(k)",
            "ParseError",
        ),
        _case("evaluation", "59 softplus terms", MEAN + f"{{{softplus}}}", "any"),
        _case(
            "evaluation",
            "sum of exp to 300",
            MEAN + r"{y_i \sum_{k=1}^{300} \log(1 + e^{k})}",
            "any",
        ),
        _case(
            "evaluation",
            "cases",
            MEAN
            + r"\begin{cases} y_i^{1000} & y_i > 0 \\ 10^{999} y_i & \text{otherwise} \end{cases}",
            "any",
        ),
    ]


def identify_variants() -> list[dict]:
    """Formulas whose comparison with the catalog is the heavy part."""
    return [
        _case("identify", "y^(10^99) (issue)", MEAN + r"y_i^{10^{99}}", "ParseError", "exponent"),
        _case("identify", "trinomial^40", MEAN + r"{(y_i + t_i + 1)^{40}}", "any"),
        _case(
            "identify", "y^1000 t^1000", MEAN + r"{y_i^{1000} t_i^{1000} (1 - y_i)^{1000}}", "any"
        ),
        _case("identify", "2^(100 y)", MEAN + r"{2^{100 y_i} - t_i}", "any"),
        _case(
            "identify", "mse control", MEAN + "(y_i - t_i)^2", "loss", identify="mean_squared_error"
        ),
    ]


def name_variants() -> list[dict]:
    """Arrays named like the call's keywords could never be passed."""
    return [
        _case(
            "names",
            name,
            MEAN + rf"y_i \mathrm{{{name}}}_{{i}}",
            "ParseError",
            "keywords of the loss's call",
        )
        for name in ("weight", "out", "pred", "target", "self")
    ] + [_case("names", "var is fine", MEAN + r"y_i \mathrm{var}_{i}", "loss")]


CLASSES = {
    "power": power_variants,
    "exp_log": exp_log_variants,
    "tower": tower_variants,
    "factorial": factorial_variants,
    "literal": literal_variants,
    "products": product_variants,
    "rationals": rational_variants,
    "sums": sum_variants,
    "simplify": simplify_variants,
    "evaluation": evaluation_variants,
    "identify": identify_variants,
    "names": name_variants,
}


def hostile_table() -> list[dict]:
    cases = [c for make in CLASSES.values() for c in make()]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    return cases


TABLE = hostile_table()


# ============================================================================ the child
def _peak_reset() -> None:
    try:  # Linux: reset the peak resident size, so that each input's peak is its own
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mib() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(L, rng):
    """Arrays for one call of *L*: inside every domain, one-hot rows where required."""
    import numpy as np

    shape = []
    for axis, (_, size) in enumerate(L.input_indices):
        fixed = int(size) if getattr(size, "is_Integer", False) and 0 < int(size) <= 64 else None
        shape.append(3 if axis == 0 else fixed or 4)
    y = rng.uniform(0.2, 0.8, shape)
    t = rng.uniform(0.2, 0.8, shape)
    if any(c.name == "one_hot" for c in L.constraints):
        t = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[0])]
    extra = {str(b.label): rng.uniform(0.2, 0.8, shape) for b in L.extra_inputs}
    return y, t, extra


def run_case(case: dict, budget: float, identify_budget: float = IDENTIFY_BUDGET) -> dict:
    """The whole path for one input, each step on its own: ``{step: "ok" | message}``.

    A SymlossError is a clear outcome; any other exception is recorded as ``CRASH``.
    """
    import numpy as np

    from symloss import Loss, ParseError, SymlossError, from_latex, identify

    steps: dict = {}
    record = {"id": case["id"], "steps": steps, "seconds": {}}

    def step(name, action):
        start = time.monotonic()
        try:
            result = action()
            steps[name] = "ok"
            return result
        except SymlossError as exc:
            steps[name] = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - exactly what the test must not see
            tail = traceback.format_exception(exc)[-3:]
            steps[name] = f"CRASH {type(exc).__name__}: {str(exc)[:300]} | {''.join(tail)[-600:]}"
        finally:
            record["seconds"][name] = round(time.monotonic() - start, 3)
        return None

    start = time.monotonic()
    try:
        L = from_latex(case["text"], params=case.get("params"), budget_seconds=budget)
    except ParseError as exc:
        record.update(parse_error=exc.reason, position=exc.position)
        assert 0 <= exc.position <= len(case["text"]) and "\n" not in exc.reason
        return record
    finally:
        record["seconds"]["parse"] = round(time.monotonic() - start, 3)
    assert isinstance(L, Loss)
    steps["parse"] = "ok"
    step("print", lambda: (repr(L), L.pretty(), L.latex(), L.latex(style="article")))
    step("gradient", lambda: (L.gradient(), L.pretty("gradient"), L.latex(part="gradient")))
    rng = np.random.default_rng(0)

    def evaluate():
        y, t, extra = _inputs(L, rng)
        return float(np.sum(L(y, t, **extra))), L.grad(y, t, **extra).shape

    record["value"] = repr(step("evaluate", evaluate))
    record["identified"] = step("identify", lambda: identify(L, budget_seconds=identify_budget))
    return record


def _child_main() -> None:
    """Run the cases read from stdin; a JSON line on the job's fd as each starts and ends
    (not stdout, which a library may print on)."""
    job = json.load(sys.stdin)
    proto = os.fdopen(job["fd"], "w", buffering=1)
    for case in job["cases"]:
        proto.write(json.dumps({"start": case["id"]}) + "\n")
        _peak_reset()
        start = time.monotonic()
        try:
            record = run_case(case, job["budget"])
        except BaseException as exc:  # noqa: BLE001 - reported, and the parent fails it
            record = {"id": case["id"], "steps": {"run": f"CRASH {type(exc).__name__}: {exc}"}}
        record.update(total=round(time.monotonic() - start, 3), peak_mib=round(_peak_mib(), 1))
        proto.write(json.dumps(record) + "\n")


#: The children's first statement: their own address-space limit, then the script.  Not
#: preexec_fn: that runs Python between fork and exec, which JAX (imported by the
#: framework tests in this process) warns is unsafe, and the warning fails the test.
_LIMITED = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE}, {ADDRESS_SPACE})); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def limited(script: str, *args: str) -> list[str]:
    """The command that runs the Python file *script* with *args* in a limited child."""
    return [sys.executable, "-c", _LIMITED, script, *args]


def _script(folder: str, source: str) -> str:
    """*source* written to a file in *folder*: its path."""
    path = Path(folder, "child.py")
    path.write_text(source, encoding="utf-8")
    return str(path)


def child_env(tmp: str) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "SYMLOSS_CACHE_DIR": tmp,
    }


def run_batch(cases: list[dict], budget: float = CASE_BUDGET, hard: float = HARD_SECONDS) -> dict:
    """Run *cases* in one child after another (a new child after a hang or a death);
    ``{id: record}``.  A case that runs past *hard* seconds is killed: ``{"hang": s}``."""
    results: dict = {}
    pending = list(cases)
    with tempfile.TemporaryDirectory() as tmp:
        while pending:
            read_end, write_end = os.pipe()
            err = tempfile.TemporaryFile()
            proc = subprocess.Popen(
                limited(__file__),
                stdin=subprocess.PIPE,
                stdout=err,
                stderr=err,
                pass_fds=(write_end,),
                env=child_env(tmp),
                start_new_session=True,
                cwd=tmp,
            )
            os.close(write_end)
            job = {"budget": budget, "cases": pending, "fd": write_end}
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            current, since, buffer = None, time.monotonic(), b""
            while True:
                wait = hard - (time.monotonic() - since)
                ready, _, _ = select.select([read_end], [], [], max(wait, 0.0))
                if not ready:  # past the hard limit: a hang
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    results[current or pending[0]["id"]] = {"hang": hard}
                    break
                chunk = os.read(read_end, 65536)
                if not chunk:  # the child ended
                    proc.wait()
                    if current is not None:  # ... in the middle of a case
                        err.seek(0)
                        tail = err.read()[-2000:].decode(errors="replace")
                        results[current] = {"died": proc.returncode, "stderr": tail}
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if "start" in message:
                        current, since = message["start"], time.monotonic()
                    else:
                        results[message["id"]] = message
                        current = None
            os.close(read_end)
            err.close()
            pending = [c for c in pending if c["id"] not in results]
    return results


def run_parallel(cases: list[dict], batches: int = 2, **how) -> dict:
    """:func:`run_batch` on *batches* interleaved slices of *cases* at once."""
    results: dict = {}
    slices = [cases[k::batches] for k in range(batches)]
    threads = [
        threading.Thread(target=lambda c=c: results.update(run_batch(c, **how))) for c in slices
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results


# ============================================================================ hypothesis
def magnitude_formulas():
    """Hypothesis: random nestings of the constructions above, with random magnitudes."""
    from hypothesis import strategies as st

    numbers = st.one_of(
        st.integers(0, 10**15).map(str),
        st.integers(1, 5000).map(lambda k: f"10^{{{k}}}"),
        st.tuples(st.integers(2, 9), st.integers(1, 5)).map(
            lambda bd: f"{bd[0]}^{{" * bd[1] + str(bd[0]) + "}" * bd[1]
        ),
        st.sampled_from([r"\pi", "e", r"\frac{3}{7}", r"\sqrt{2}", "0.5", "0.001"]),
    )
    atoms = st.one_of(
        numbers, st.sampled_from(["y_i", "t_i", "(y_i - t_i)", r"\log(y_i)", r"\left|y_i\right|"])
    )

    def combine(children):
        pairs = st.tuples(children, children)
        return st.one_of(
            pairs.map(lambda ab: f"{{{ab[0]}}}^{{{ab[1]}}}"),
            pairs.map(lambda ab: rf"e^{{{ab[0]} \ln({ab[1]})}}"),
            pairs.map(lambda ab: rf"\exp({ab[0]} \log({ab[1]}))"),
            pairs.map(lambda ab: rf"{ab[0]} \cdot {ab[1]}"),
            pairs.map(lambda ab: rf"\frac{{{ab[0]}}}{{{ab[1]}}}"),
            pairs.map(lambda ab: f"({ab[0]} + {ab[1]})"),
            st.tuples(numbers, children).map(
                lambda ab: rf"\sum_{{k=1}}^{{{ab[0]}}} {{k^{{{ab[1]}}}}}"
            ),
            st.tuples(numbers, children).map(
                lambda ab: rf"\sum_{{k={ab[0]}}}^{{m}} {{{ab[1]}^{{k}}}}"
            ),
        )

    return st.recursive(atoms, combine, max_leaves=6).map(lambda e: MEAN + f"{{y_i + {e}}}")


def check_bounded(text: str) -> str:
    """The property for one formula: refused with a position, or a loss whose numbers and
    exponents are within the documented bounds, that prints, and whose gradient comes
    out or raises BudgetExceeded; all within 10 s."""
    import sympy as sp

    from symloss import ParseError, from_latex
    from symloss.latex_in.parser import MAX_EXPONENT, MAX_NUMBER_DIGITS

    start = time.monotonic()
    try:
        L = from_latex(text, budget_seconds=1.0)
    except ParseError as exc:
        assert 0 <= exc.position <= len(text) and exc.reason and "\n" not in exc.reason
        assert not exc.reason.startswith("internal error"), exc.reason
        return "refused"
    for node in sp.preorder_traversal(L.expr):
        if isinstance(node, sp.Rational):
            assert math.log10(max(abs(node.p), node.q)) < MAX_NUMBER_DIGITS, text
        if isinstance(node, sp.Pow) and node.exp.is_Rational:
            assert abs(node.exp) <= MAX_EXPONENT, (text, node.exp)
    repr(L), L.pretty(), L.latex()
    try:
        L.gradient()
    except BudgetExceeded:
        pass
    assert time.monotonic() - start < 10.0, text
    return "loss"


HYPOTHESIS_EXAMPLES = 150


def _hypothesis_main(examples: int) -> None:
    from hypothesis import HealthCheck, given, settings

    outcomes: dict = {}

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(magnitude_formulas())
    def bounded(text):
        outcome = check_bounded(text)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    bounded()
    print(json.dumps(outcomes))


# ============================================================================ table tests
@pytest.fixture(scope="module")
def table_results():
    """Every variant of the table through the whole path, two children at once."""
    start = time.monotonic()
    results = run_parallel(TABLE)
    elapsed = time.monotonic() - start
    done = [r for r in results.values() if "total" in r]
    slowest = max(done, key=lambda r: r["total"])
    hungriest = max(done, key=lambda r: r["peak_mib"])
    print(  # shown with -s: the figures the README quotes
        f"\nhostile table: {len(TABLE)} inputs in {elapsed:.1f} s; slowest {slowest['id']}"
        f" {slowest['total']:.1f} s; highest peak {hungriest['id']} {hungriest['peak_mib']:.0f} MiB"
    )
    return results


@pytest.mark.parametrize("case", TABLE, ids=[c["id"] for c in TABLE])
def test_hostile_input_whole_path(case, table_results):
    """Parse, print, gradient, evaluation and identify in a child with 2 GiB of address
    space: a Loss or a SymlossError at each step, within HARD_SECONDS; refusals where
    the table says so, with the reason it names."""
    record = table_results[case["id"]]
    assert "hang" not in record, f"still running after {HARD_SECONDS} s: {case['text'][:200]}"
    assert "died" not in record, f"the child died ({record['died']}): {record['stderr']}"
    crashes = {k: v for k, v in record["steps"].items() if v.startswith("CRASH")}
    assert not crashes, crashes
    assert record["total"] < HARD_SECONDS and record["peak_mib"] < ADDRESS_SPACE / 2**20
    if case["expect"] == "ParseError":
        assert "parse_error" in record, f"accepted: {record['steps']}"
        assert case["reason"] in record["parse_error"], record["parse_error"]
        if "at" in case:  # the position names the offending term
            assert record["position"] == case["text"].index(case["at"]), record
        return
    assert "parse_error" not in record, record["parse_error"]
    if case["expect"] == "loss":
        allowed = ("ok", "BudgetExceeded: identifying")  # identify may run out on a slow CI
        assert all(v.startswith(allowed) for v in record["steps"].values()), record["steps"]
    if "identify" in case:
        assert record["identified"] == case["identify"], record
    if "parse_under" in case:
        assert record["seconds"]["parse"] < case["parse_under"], record["seconds"]


def test_every_class_has_a_generator_of_variants():
    """The table is a generator of variants per class, not a list of the issue's examples."""
    for name, make in CLASSES.items():
        cases = make()
        assert len(cases) >= 4, name
    refused = [c for c in TABLE if c["expect"] == "ParseError"]
    accepted = [c for c in TABLE if c["expect"] != "ParseError"]
    assert len(refused) > 100 and len(accepted) > 25


def test_children_run_with_the_address_space_limit(tmp_path):
    """The guard the hostile children rely on: their RLIMIT_AS is ADDRESS_SPACE."""
    script = _script(
        str(tmp_path), "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"
    )
    out = subprocess.run(limited(script), capture_output=True, text=True, check=True).stdout
    assert int(out) == ADDRESS_SPACE


def test_hypothesis_magnitudes_in_a_child():
    """The Hypothesis strategy, in a child with 2 GiB of address space (a guard that
    let a huge power through would hang the test process itself)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            limited(__file__, "--hypothesis", str(HYPOTHESIS_EXAMPLES)),
            capture_output=True,
            text=True,
            env=child_env(tmp),
            timeout=HYPOTHESIS_EXAMPLES * 2.0,
            cwd=tmp,
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcomes.get("loss", 0) >= 10 and outcomes.get("refused", 0) >= 10, outcomes


# ============================================================================ smaller items
HUBER = MEAN + r"\delta \left|y_i - t_i\right|"


@pytest.mark.parametrize(
    "value",
    [float("nan"), None, float("inf"), -float("inf"), "1.5", True, 1 + 2j, [1.0]],
    ids=["nan", "None", "inf", "-inf", "str", "bool", "complex", "list"],
)
def test_params_must_be_finite_real_numbers(value):
    from symloss import ParseError, from_latex

    with pytest.raises(ParseError, match="'delta' must be a finite real number") as info:
        from_latex(HUBER, params={"delta": value})
    assert info.value.position == HUBER.index(r"\delta")


def test_params_of_numpy_and_fraction_types_are_floats():
    from fractions import Fraction

    import numpy as np

    from symloss import from_latex

    for value in (np.float64(1.5), np.int64(3), Fraction(3, 2), 2):
        L = from_latex(HUBER, params={"delta": value})
        assert L.params[0].default == float(value)
        assert L(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == pytest.approx(2 * float(value))


def test_cli_refuses_a_nan_param(capsys):
    from symloss.cli import main

    assert main(["parse", HUBER, "--param", "delta=nan"]) == 2
    assert "'delta' must be a finite real number" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["weight", "out", "pred", "target", "self"])
def test_reserved_array_names_are_refused_at_their_position(name):
    from symloss import ParseError, from_latex

    text = MEAN + rf"y_i \mathrm{{{name}}}_{{i}}"
    with pytest.raises(ParseError, match="keywords of the loss's call") as info:
        from_latex(text)
    assert info.value.position == text.index(r"\mathrm")


def test_reserved_names_cover_the_call_keywords():
    """Any keyword of the loss's call methods would shadow an array of that name."""
    import inspect

    from symloss import Loss
    from symloss.latex_in.parser import RESERVED_NAMES

    for method in (Loss.__call__, Loss.grad, Loss.hess, Loss.value_and_grad):
        for p in inspect.signature(method).parameters.values():
            if p.kind is not p.VAR_KEYWORD:
                assert p.name in RESERVED_NAMES, (method.__name__, p.name)


def test_numbers_past_4300_digits_are_refused_and_the_largest_kept_ones_print(capsys):
    """Python refuses str() of an int past 4,300 digits: repr, pretty and latex raised
    ValueError and the CLI exited 1.  Now such numbers never enter an expression."""
    from symloss import ParseError, from_latex
    from symloss.cli import main

    with pytest.raises(ParseError, match="too large"):
        from_latex(MEAN + r"y_i \cdot 10^{4400}")
    assert main(["parse", MEAN + r"y_i \cdot 10^{4400}"]) == 2
    assert "too large" in capsys.readouterr().err
    L = from_latex(MEAN + r"y_i \cdot 10^{999}")  # 1000 digits: the most kept
    assert len(repr(L)) > 0 and "10" in L.latex() and L.pretty()
    assert main(["parse", MEAN + r"y_i \cdot 10^{999}"]) == 0
    assert "1000000000" in capsys.readouterr().out


def test_the_scale_simplify_gives_up_within_its_budget(monkeypatch):
    """simplify of the constant in front of the sum is cosmetic: past SCALE_SECONDS the
    constant is kept as written (it ran past 120 s on a product of 30 cosines)."""
    import sympy as sp

    from symloss import from_latex
    from symloss.latex_in import convert as _from_latex

    calls = []

    def slow_simplify(expr, *a, **k):
        calls.append(expr)
        _work(30.0)  # without the budget the test takes 30 s, and fails on time
        return expr

    monkeypatch.setattr(sp, "simplify", slow_simplify)
    start = time.monotonic()
    L = from_latex(r"\frac{\sqrt{8}}{2 n}\sum_{i=1}^{n} (y_i - t_i)^2", budget_seconds=20.0)
    assert time.monotonic() - start < _from_latex.SCALE_SECONDS + 2.0
    assert calls and L.reduction == "mean" and L.scale == sp.sqrt(2)
    _no_timer_left()


def test_identify_runs_under_its_budget(monkeypatch):
    """identify() compared the formula with the whole catalog without a budget."""
    from symloss import from_latex, get
    from symloss.latex_in import convert as _from_latex
    from symloss.latex_in.convert import equivalent, identify

    L = from_latex(MEAN + "(y_i - t_i)^4")
    monkeypatch.setattr(_from_latex, "_canonical", lambda loss: _work(20.0))
    start = time.monotonic()
    assert equivalent(L, get("mse"), seconds=0.3) is False  # undecided: not equal
    assert time.monotonic() - start < 1.5
    start = time.monotonic()
    with pytest.raises(
        BudgetExceeded, match="identifying custom took longer than its budget of 1 s"
    ):
        identify(L, budget_seconds=1.0)
    assert time.monotonic() - start < 2.5
    _no_timer_left()


def test_identify_uses_the_loss_budget_by_default(monkeypatch):
    from symloss import from_latex
    from symloss.latex_in import convert as _from_latex
    from symloss.latex_in.convert import identify

    L = from_latex(MEAN + "(y_i - t_i)^4", budget_seconds=1.0)
    monkeypatch.setattr(_from_latex, "_canonical", lambda loss: _work(20.0))
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="budget of 1 s"):
        identify(L)
    assert time.monotonic() - start < 2.5


def test_parse_runs_under_the_budget(monkeypatch):
    """The parser's own deadline is checked between groups; one long SymPy call inside a
    group is stopped by the budget, and reported as a ParseError."""
    from symloss import ParseError
    from symloss.latex_in import parser as _latex_in

    real = _latex_in._run_engine

    def slow_engine(flat):
        _work(30.0)
        return real(flat)

    monkeypatch.setattr(_latex_in, "_run_engine", slow_engine)
    start = time.monotonic()
    with pytest.raises(ParseError, match="reading the formula took longer than its budget"):
        _latex_in.parse_latex("x + y")
    assert time.monotonic() - start < _latex_in.TIME_BUDGET + 3.0
    _no_timer_left()


EVALUATION_CHILD = """
import time, numpy as np, sympy as sp
from symloss import BudgetExceeded, Loss
from symloss.numeric import evaluate as _numeric  # where the kernels call stabilize
from symloss.symbols import array, index, n
y, t, i, k = array("y"), array("t"), index("i"), index("k")
def loss(term):  # built directly: the parser would refuse this sum
    return Loss(name="slow", title="", term=term, scale=sp.S.One, indices=((i, n),),
                pred=y, target=t, domains={}, budget_seconds=1.0)
arrays = np.array([0.3, 0.6]), np.array([0.2, 0.9])
start = time.monotonic()
try:
    loss(y[i] * sp.Sum(sp.log(k), (k, 1, 10**9)))(*arrays)
except BudgetExceeded as exc:
    print("doit:", exc, round(time.monotonic() - start, 2))
real = _numeric.stabilize
def slow(expr, *args):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        sum(range(100))
_numeric.stabilize = slow
start = time.monotonic()
try:
    loss(y[i] ** 2)(*arrays)
except BudgetExceeded as exc:
    print("stable:", exc, round(time.monotonic() - start, 2))
"""


def test_evaluation_symbolic_steps_run_under_the_budget():
    """L(y, t) expanded the sums (doit) and stabilised the kernel before the budgeted
    compile: a sum to 10^9 ran past 75 s.  In a child: without the budget it hangs."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            limited(_script(tmp, EVALUATION_CHILD)),
            capture_output=True,
            text=True,
            env=child_env(tmp),
            timeout=HARD_SECONDS,
            cwd=tmp,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines())
    assert "expanding the sums of slow took longer than its budget of 1 s" in lines["doit"]
    assert "stabilising the kernel of slow took longer than its budget of 1 s" in lines["stable"]
    assert all(float(v.rsplit(" ", 1)[1]) < 3.0 for v in lines.values()), lines


def test_values_and_gradients_do_not_derive_the_hessian():
    """L(y, t) built the Hessian kernel too (a tuple of all three kernels was made before
    choosing): a formula whose Hessian is over the size budget could not be evaluated."""
    import numpy as np

    from symloss import from_latex

    many_logs = r"E = \sum_{i=1}^{n} " + r" \cdot ".join(
        rf"\log\left(y_i + {k}\right)" for k in range(1, 12)
    )
    L = from_latex(many_logs, budget_seconds=5.0)
    y = np.array([0.3, 0.5])
    assert np.isfinite(L(y, y)) and np.isfinite(L.grad(y, y)).all()
    assert np.isfinite(L.value_and_grad(y, y)[0])
    with pytest.raises(BudgetExceeded, match="Hessian of E is too large"):
        L.hess(y, y)


if __name__ == "__main__":  # a child of run_batch, or of the Hypothesis test
    if sys.argv[1:2] == ["--hypothesis"]:
        _hypothesis_main(int(sys.argv[2]))
    else:
        _child_main()
