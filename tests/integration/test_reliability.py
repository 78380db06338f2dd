r"""Reliability (issue 8): fuzzing the LaTeX front end, a hostile corpus, bounded
symbolic work, atomic output under SIGKILL, and CLI errors without tracebacks.

Fuzzing budget
--------------
The ``@settings(max_examples=...)`` of the ``test_fuzz_*`` tests add up to
:data:`CI_EXAMPLES` (>= 10^4).  The same strategies run 10^5+ times in
``benchmarks/fuzz_long.py``.  Allowed outcomes: a :class:`symloss.Loss`, or a
:class:`symloss.ParseError` whose position lies in ``[0, len(text)]``; for the CLI,
exit code 0 or 2 and no traceback.  The fuzz only parses (``from_latex`` builds the
Loss, which never derives the gradient); derivation is tested separately under a
budget.
"""

from __future__ import annotations

import builtins
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared import ROOT

import symloss
from symloss import BudgetExceeded, Loss, ParseError, from_latex
from symloss.cli import main as cli_main
from symloss.symbolic import budget as _budget
from symloss.symbolic import derivatives

# One worker under pytest-xdist (pyproject: --dist loadgroup): the memory check runs
# after the fuzz, in file order, in the same process.
pytestmark = pytest.mark.xdist_group("test_reliability")

DATA = ROOT / "tests" / "data" / "hostile_latex.json"

# ============================================================================ strategies
CATALOG_LATEX = sorted(
    {symloss.get(name).latex(style=s) for name in symloss.names() for s in ("standard", "article")}
)

FRAGMENTS = [
    r"\frac{",
    "}{",
    "}",
    "{",
    "(",
    ")",
    r"\left(",
    r"\right)",
    "|",
    r"\sum_{i=1}^{n}",
    r"\sum_{j=1}^{m}",
    r"\log",
    "log",
    r"\ln",
    r"\exp",
    "^",
    "_",
    "y_i",
    "t_i",
    "z_i",
    "y_{ij}",
    "t_{ij}",
    r"\sigma",
    r"\operatorname{softmax}",
    r"\max",
    r"\delta",
    r"\alpha",
    "+",
    "-",
    r"\cdot",
    "1",
    "2",
    "0.5",
    "n",
    "m",
    "=",
    "E =",
    r"\,",
    " ",
    r"\sqrt{",
    r"\hat{y}_i",
    ",",
    r"\mathrm{",
    r"\begin{cases}",
    r"\end{cases}",
    "&",
    r"\\",
    r"\mid",
    "\x00",
    "é",
    "∑",
]

_PARAMS = {"alpha": 0.25, "delta": 1.5, "gamma": 2.0}


@st.composite
def grammar_latex(draw, max_depth: int = 4):
    """Random LaTeX from a small grammar of loss-like formulas (mostly well formed)."""

    def elem(idx):
        letter = draw(st.sampled_from(["y", "t", "z"]))
        sub = draw(st.sampled_from([idx, "{" + idx + "}", "{" + idx + "j}" if idx == "i" else idx]))
        return f"{letter}_{sub}"

    def expr(depth, idx):
        choices = ["elem", "num", "param"]
        if depth > 0:
            choices += [
                "add",
                "sub",
                "mul",
                "frac",
                "log",
                "pow",
                "abs",
                "max",
                "sigma",
                "softmax",
                "paren",
                "exp",
                "sum",
            ]
        kind = draw(st.sampled_from(choices))
        d = depth - 1
        if kind == "elem":
            return elem(idx)
        if kind == "num":
            return draw(st.sampled_from(["1", "2", "0.5", "10", "0", "3.25", "1000"]))
        if kind == "param":
            return "\\" + draw(st.sampled_from(sorted(_PARAMS)))
        if kind in ("add", "sub", "mul"):
            op = {"add": " + ", "sub": " - ", "mul": r" \cdot "}[kind]
            return expr(d, idx) + op + expr(d, idx)
        if kind == "frac":
            return rf"\frac{{{expr(d, idx)}}}{{{expr(d, idx)}}}"
        if kind == "log":
            return draw(st.sampled_from([r"\log", "log", r"\ln"])) + rf"\left({expr(d, idx)}\right)"
        if kind == "pow":
            return rf"\left({expr(d, idx)}\right)^{{{expr(d, idx)}}}"
        if kind == "abs":
            return rf"\left|{expr(d, idx)}\right|"
        if kind == "max":
            return rf"\max\left(0, {expr(d, idx)}\right)"
        if kind == "sigma":
            return rf"\sigma\left({elem(idx)}\right)"
        if kind == "softmax":
            return r"\operatorname{softmax}(z)_{ij}"
        if kind == "paren":
            return f"({expr(d, idx)})"
        if kind == "exp":
            return rf"e^{{{expr(d, idx)}}}"
        return rf"\sum_{{j=1}}^{{m}} {expr(d, idx)}"

    body = expr(draw(st.integers(0, max_depth)), "i")
    lhs = draw(st.sampled_from(["E = ", r"\mathcal{L} = ", "", "L(y, t) = "]))
    outer = draw(
        st.sampled_from(
            [r"\frac{1}{n}\sum_{i=1}^{n}", r"\sum_{i=1}^{n}", r"-\frac{1}{n}\sum_{i\,=\,1}^{n}"]
        )
    )
    return f"{lhs}{outer}{{{body}}}"


@st.composite
def mutated_catalog(draw):
    """A catalog formula (both styles) with 1-4 random insert/delete/replace edits."""
    chars = list(draw(st.sampled_from(CATALOG_LATEX)))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
        piece = draw(st.one_of(st.sampled_from(FRAGMENTS), st.characters()))
        if action == "insert" or where == len(chars):
            chars.insert(where, piece)
        elif action == "delete":
            del chars[where]
        elif action == "swap" and where + 1 < len(chars):
            chars[where], chars[where + 1] = chars[where + 1], chars[where]
        else:
            chars[where] = piece
    return "".join(chars)


random_text = st.text(max_size=120)
fragment_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
ALL_STRATEGIES = {
    "random": random_text,
    "fragments": fragment_text,
    "grammar": grammar_latex(),
    "mutated": mutated_catalog(),
}


# ============================================================================ oracles
def outcome_from_latex(text: str) -> str:
    """Run from_latex; return "loss" or "ParseError: <reason>"; fail on anything else."""
    params = {k: v for k, v in _PARAMS.items() if "\\" + k in text}
    try:
        L = from_latex(text, params=params, budget_seconds=10.0)
    except ParseError as exc:
        assert 0 <= exc.position <= len(text), (text, exc.position)
        assert exc.reason and "\n" not in exc.reason, (text, exc.reason)
        assert not exc.reason.startswith("internal error"), (text, exc.reason, exc.__cause__)
        return "ParseError: " + exc.reason.split("'")[0].split(":")[0][:60]
    assert isinstance(L, Loss), (text, L)
    return "loss"


def outcome_cli(text: str, capsys) -> int:
    capsys.readouterr()
    try:
        code = cli_main(["parse", text])
    except SystemExit as exc:  # argparse may still exit on texts starting with "-"
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err, (text, err)
    assert code in (0, 2), (text, code, err)
    if code == 2:
        assert err.startswith("symloss: error:"), (text, err)
    return code


# ============================================================================ fuzzing
FUZZ = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
N_RANDOM, N_FRAG, N_GRAMMAR, N_MUTATED = 3000, 2500, 1500, 2000
N_CLI_RANDOM, N_CLI_GRAMMAR, N_CLI_MUTATED = 500, 300, 500
CI_EXAMPLES = (
    N_RANDOM + N_FRAG + N_GRAMMAR + N_MUTATED + N_CLI_RANDOM + N_CLI_GRAMMAR + N_CLI_MUTATED
)
assert CI_EXAMPLES >= 10_000


def _rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process in KiB (Linux)."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    current = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_RSS_START: list[tuple[int, int]] = []


@pytest.fixture(autouse=True, scope="module")
def _rss_at_start():
    """The RSS when this module's first test starts (not at collection: the tests of
    other modules run in between, and torch and jax load hundreds of MiB)."""
    _RSS_START.append(_rss_kib())


@settings(max_examples=N_RANDOM, **FUZZ)
@given(random_text)
def test_fuzz_random_text_from_latex(text):
    outcome_from_latex(text)


@settings(max_examples=N_FRAG, **FUZZ)
@given(fragment_text)
def test_fuzz_fragments_from_latex(text):
    outcome_from_latex(text)


@settings(max_examples=N_GRAMMAR, **FUZZ)
@given(grammar_latex())
def test_fuzz_grammar_from_latex(text):
    outcome_from_latex(text)


@settings(max_examples=N_MUTATED, **FUZZ)
@given(mutated_catalog())
def test_fuzz_mutated_catalog_from_latex(text):
    outcome_from_latex(text)


@settings(max_examples=N_CLI_RANDOM, **FUZZ)
@given(st.one_of(random_text, fragment_text))
def test_fuzz_cli_parse_random(capsys, text):
    outcome_cli(text, capsys)


@settings(max_examples=N_CLI_GRAMMAR, **FUZZ)
@given(grammar_latex(max_depth=2))
def test_fuzz_cli_parse_grammar(capsys, text):
    outcome_cli(text, capsys)


@settings(max_examples=N_CLI_MUTATED, **FUZZ)
@given(mutated_catalog())
def test_fuzz_cli_parse_mutated(capsys, text):
    outcome_cli(text, capsys)


def test_every_catalog_formula_parses_or_names_its_problem():
    for text in CATALOG_LATEX:
        outcome_from_latex(text)


def test_fuzz_memory_growth_below_1_gib():
    """Runs after the fuzz tests above (file order): neither the RSS nor its peak grew
    by 1 GiB.  (A rise of the peak is a lower bound of how far the fuzz's own peak went
    above the RSS at the start.)"""
    (current0, peak0), (current, peak) = _RSS_START[0], _rss_kib()
    for what, grown in (("RSS", current - current0), ("peak RSS", peak - peak0)):
        assert grown < 1024 * 1024, f"{what} grew by {grown / 1024:.0f} MiB during the fuzz"


# ============================================================================ hostile corpus
HOSTILE_BOUND_S = 10.0  #: documented bound per hostile input (parse only)


def build_hostile(spec: dict) -> str:
    """Expand one compact corpus entry into its text (megabyte inputs are built here)."""
    kind = spec.get("build", "literal")
    if kind == "literal":
        return spec["text"]
    if kind == "repeat":
        return spec.get("prefix", "") + spec["unit"] * spec["count"] + spec.get("suffix", "")
    if kind == "nest":
        return (
            spec.get("prefix", "")
            + spec["open"] * spec["depth"]
            + spec["core"]
            + spec["close"] * spec["depth"]
            + spec.get("suffix", "")
        )
    raise ValueError(kind)


HOSTILE = json.loads(DATA.read_text(encoding="utf-8"))["cases"]


@pytest.fixture
def no_code_execution(monkeypatch, tmp_path):
    """Fail the test if the payload reaches os.system/subprocess/eval-like sinks."""
    called = []

    def trap(name):
        def f(*a, **k):
            called.append((name, a))
            raise AssertionError(f"{name} called with {a!r}")

        return f

    for mod, name in [
        (os, "system"),
        (os, "popen"),
        (subprocess, "Popen"),
        (os, "execv"),
        (os, "execve"),
        (os, "remove"),
        (os, "unlink"),
    ]:
        monkeypatch.setattr(mod, name, trap(f"{mod.__name__}.{name}"))
    real_import = builtins.__import__

    def guarded_import(name, *a, **k):
        if name in ("subprocess", "pty", "shutil", "ctypes") and name not in sys.modules:
            called.append(("__import__", name))
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", guarded_import)
    monkeypatch.chdir(tmp_path)
    yield called
    assert not called, called


@pytest.mark.parametrize("spec", HOSTILE, ids=[c["id"] for c in HOSTILE])
def test_hostile_corpus(spec, no_code_execution, tmp_path):
    text = build_hostile(spec)
    assert len(text) >= spec.get("min_length", 0)
    sentinel = tmp_path / "PWNED"
    start = time.monotonic()
    try:
        L = from_latex(text, params=spec.get("params"), budget_seconds=5.0)
    except ParseError as exc:
        outcome = "ParseError"
        assert 0 <= exc.position <= len(text)
        assert "\n" not in exc.reason
        if "reason_contains" in spec:
            assert spec["reason_contains"] in exc.reason, exc.reason
    else:
        outcome = "loss"
        assert isinstance(L, Loss)
    elapsed = time.monotonic() - start
    assert outcome == spec["expect"], (spec["id"], outcome)
    assert elapsed < HOSTILE_BOUND_S, f"{spec['id']} took {elapsed:.1f} s"
    assert not sentinel.exists() and not Path("PWNED").exists()


# ============================================================================ budget
#: y_i^{y_i^{...}} of depth 20: simplifying its gradient runs past a 0.5 s budget.
TOWER = r"E = \frac{1}{n}\sum_{i=1}^{n} " + "y_i^{" * 20 + "y_i" + "}" * 20
#: a product of 11 logs: its Hessian has more than MAX_NODES nodes (the size limit).
MANY_LOGS = r"E = \sum_{i=1}^{n} " + r" \cdot ".join(
    rf"\log\left(y_i + {k}\right)" for k in range(1, 12)
)


@pytest.mark.parametrize(
    "text,expected",
    [(TOWER, "budget of 0.5 s"), (MANY_LOGS, "too large")],
    ids=["tower_time", "product_of_logs_size"],
)
def test_explosive_derivation_hits_the_budget(text, expected):
    L = from_latex(text, budget_seconds=0.5)
    start = time.monotonic()
    with pytest.raises(BudgetExceeded) as info:
        L.gradient()
        L.hessian()
        derivatives.of(L).kernel_gradient  # noqa: B018  (lambdify and cse of the gradient)
    assert time.monotonic() - start < 5.0
    msg = str(info.value)
    assert expected in msg and L.name in msg, msg


def test_size_limit_triggers_on_a_huge_expression():
    big = sp.Add(*[sp.Symbol(f"x{k}") ** k for k in range(_budget.MAX_NODES)])
    with pytest.raises(BudgetExceeded, match="too large"):
        _budget.check_size(big, "the test expression")
    _budget.check_size(sp.Symbol("x") + 1, "small")  # no error


def test_normal_formula_under_the_same_budget_succeeds():
    L = from_latex(r"E = \frac{1}{n}\sum_{i=1}^{n}(y_i - t_i)^2", budget_seconds=0.5)
    start = time.monotonic()
    g = L.gradient()
    assert g.has(L.pred) and L.hessian() != 0
    derivatives.of(L).kernel_gradient  # noqa: B018
    assert time.monotonic() - start < 5.0
    assert float(L([1.0, 2.0], [0.0, 0.0])) == 2.5


# ============================================================================ atomic output
_SLOW_CHILD = textwrap.dedent(
    """
    # Test hook (test code only): slow every atomic write down so that SIGKILL can land
    # between the temporary file being written and the rename, and mid-write.
    import os, sys, time
    import symloss.docs.files as d
    real_replace, real_open = os.replace, os.fdopen
    def slow_replace(a, b, *k, **kw):
        time.sleep(0.02)
        return real_replace(a, b, *k, **kw)
    class SlowFile:
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *e): return self.f.__exit__(*e)
        def write(self, data):
            half = len(data) // 2
            self.f.write(data[:half]); self.f.flush(); time.sleep(0.02)
            return self.f.write(data[half:])
        def __getattr__(self, k): return getattr(self.f, k)
    d.os.replace = slow_replace
    d.os.fdopen = lambda *a, **k: SlowFile(real_open(*a, **k))
    from symloss.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _kill_during(argv, delay, tmp):
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CHILD, *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def _assert_no_partial_files(directory: Path, check):
    for p in directory.rglob("*"):
        if p.is_file():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                continue  # a temporary never takes a final name; cleanup after SIGKILL is impossible
            check(p)


def _complete_site_file(p: Path):
    data = p.read_bytes()
    if p.suffix == ".html":
        assert data.rstrip().endswith(b"</html>"), p
    elif p.suffix == ".json":
        json.loads(data)
    elif p.suffix in (".js", ".css", ".woff2", ".md"):
        assert data, p


@pytest.mark.parametrize("trial", range(4))
def test_docs_site_is_never_half_written_under_sigkill(tmp_path, trial):
    rng = random.Random(trial)
    out = tmp_path / "site"
    _kill_during(["docs", "--out", str(out)], rng.uniform(0.05, 1.5) + 1.0, tmp_path)
    if out.exists():
        _assert_no_partial_files(out, _complete_site_file)


@pytest.mark.parametrize("trial", range(4))
def test_export_is_never_half_written_under_sigkill(tmp_path, trial):
    rng = random.Random(100 + trial)
    target = tmp_path / "handout.tex"
    target.write_text("OLD\\end{document}\n")  # a previous complete file must survive
    _kill_during(
        ["export", "--all", "--derivation", "-o", str(target)],
        rng.uniform(0.05, 1.5) + 1.0,
        tmp_path,
    )
    text = target.read_text()
    assert text.rstrip().endswith(r"\end{document}"), text[-200:]
    for p in tmp_path.iterdir():
        assert p.name == "handout.tex" or p.name.endswith(".tmp"), p


def test_export_completes_without_kill(tmp_path):
    target = tmp_path / "h.tex"
    r = subprocess.run(
        [sys.executable, "-c", _SLOW_CHILD, "export", "bce", "-o", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert target.read_text().rstrip().endswith(r"\end{document}")
    assert [p.name for p in tmp_path.iterdir()] == ["h.tex"]


# ============================================================================ CLI errors
CLI_ERRORS = [
    (["list", "--bogus"], 2),
    (["show", "no_such_loss"], 2),
    (["show"], 2),
    (["table", "no_such_loss"], 2),
    (["table", "bce", "--y", "abc"], 2),
    (["parse", r"\frac{1}{"], 2),
    (["parse", r"E = \sum_{i=1}^{n} y_i", "--param", "oops"], 2),
    (["check", "no_such_loss", "nomod:f"], 2),
    (["check", "bce", "no_such_module_xyz:f"], 2),
    (["docs"], 2),
    (["docs", "--out", "/proc/forbidden/site"], 2),
    (["export"], 2),
    (["export", "no_such_loss"], 2),
    (["export", "bce", "--all"], 2),
    (["frobnicate"], 2),
]


def _run_cli(args, debug=False):
    argv = [sys.executable, "-m", "symloss", *(["--debug"] if debug else []), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args,code", CLI_ERRORS)
def test_cli_error_is_one_line_without_traceback(args, code):
    r = _run_cli(args)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.rstrip("\n").splitlines()
    if args[0] == "parse" and len(lines) == 3:  # reason, the input line, the caret
        assert lines[2].strip() == "^"
    else:
        assert len(lines) == 1, r.stderr
    assert lines[0].startswith("symloss: error:"), r.stderr


def test_cli_failed_check_exits_1(tmp_path):
    mod = tmp_path / "badgrad_mod.py"
    mod.write_text(
        "import numpy as np\n"
        "def loss(y, t):\n    return float(np.mean((y - t) ** 2))\n"
        "def grad(y, t):\n    return (y - t) / len(y)\n"  # missing factor 2
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "symloss",
            "check",
            "mse",
            "badgrad_mod:loss",
            "--grad",
            "badgrad_mod:grad",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 1, (r.returncode, r.stdout[-500:], r.stderr)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [["show", "no_such_loss"], ["parse", r"\frac{1}{"], ["export", "no_such_loss"]],
    ids=["show", "parse", "export"],
)
def test_cli_debug_shows_traceback(args):
    r = _run_cli(args, debug=True)
    assert r.returncode != 0
    assert "Traceback" in r.stderr
