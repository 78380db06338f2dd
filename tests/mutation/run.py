#!/usr/bin/env python3
"""Mutation check of the test suite (issue 20): does each realistic bug make a test fail?

Each mutant patches source text in a temporary copy of the repository (the work tree
as git sees it: tracked and untracked, not ignored), runs the tests that should catch
it, and is "killed" when they fail.  A mutant that survives is a hole in the suite.

Usage::

    python tests/mutation/run.py              # every mutant, then the table
    python tests/mutation/run.py --check      # only check that every anchor matches
    python tests/mutation/run.py ID [ID ...]  # chosen mutants
    python tests/mutation/run.py --list

Updating after files move (symloss/_core.py -> symloss/core/..., tests/test_x.py ->
tests/integration/...): edit ``FILES`` and ``TESTS`` below; each mutant names its file
and tests by those keys only.  A patch anchors on an exact piece of source text that
must occur exactly once in its file; if it does not (the code changed), the mutant is
reported as "ANCHOR?" with the file and the missing text, and the run exits 2, so a
stale list never passes for a clean result.

This file is not collected by pytest (tests/conftest.py: collect_ignore).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Source files by role: the only place their paths are written.
FILES = {
    "core": "symloss/numeric/evaluate.py",
    "checks": "symloss/numeric/checks.py",
    "fused": "symloss/numeric/fused.py",
    "compiled": "symloss/numeric/compiled.py",
    "numeric": "symloss/numeric/stabilize.py",
    "docs": "symloss/docs/html.py",
    "cli": "symloss/cli/main.py",
    "domain": "symloss/numeric/rows.py",
    "article": "symloss/losses/article.py",
    "ci": ".ci/run",
    "spec": "symloss/frameworks/spec.py",
    "jax_template": "symloss/frameworks/templates/jax.py.tmpl",
}

#: Test files by role: the only place their paths are written.
TESTS = {
    "options": "tests/numeric/test_options_reference.py",
    "small_compiled": "tests/numeric/test_small_compiled.py",
    "torch_options": "tests/integration/test_torch_options.py",
    "torch_classification": "tests/integration/test_torch_classification.py",
    "boundaries": "tests/numeric/test_boundaries.py",
    "edges_reference": "tests/integration/test_edges_reference.py",
    "docs": "tests/docs/test_docs.py",
    "docs_placement": "tests/docs/test_docs_placement.py",
    "export": "tests/docs/test_export.py",
    "cli_commands": "tests/cli/test_cli_commands.py",
    "ci_contract": "tests/test_ci_contract.py",
    "jax_properties": "tests/integration/test_jax_properties.py",
    "classification": "tests/losses/test_classification.py",
    "float32": "tests/numeric/test_float32.py",
    "jax_export": "tests/frameworks/test_jax_export.py",
    "codegen": "tests/frameworks/test_codegen.py",
}


@dataclass(frozen=True)
class Mutant:
    id: str
    what: str  # the bug, as a reviewer would describe it
    file: str  # a key of FILES
    patches: tuple[tuple[str, str], ...]  # (exact old text, new text), each once
    tests: tuple[str, ...]  # keys of TESTS, optionally "key::test_function_name"


MUTANTS = [
    Mutant(
        "weight-dropped-grad-hess",
        "weight= is dropped from grad and hess (the value still applies it)",
        "core",
        (("        if self.weight is not None:\n            w = self.weight[start",
          "        if False:\n            w = self.weight[start"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "label-grad-n-too-small",
        "integer-label cross-entropy gradient n times too small",
        "core",
        (("        if self.count != 1:\n            g /= self.count\n",
          "        if self.count != 1:\n"
          "            g /= self.count * (g.shape[0] if self.labels else 1)\n"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "docs-grad-hess-swapped",
        "the docs page's Gradient and Hessian sections swapped",
        "docs",
        (('parts.append("<h2>Gradient</h2>")', 'parts.append("<h2>Hessian</h2>")@@'),
         ('parts.append("<h2>Hessian</h2>")\n', 'parts.append("<h2>Gradient</h2>")\n'),
         ('parts.append("<h2>Hessian</h2>")@@', 'parts.append("<h2>Hessian</h2>")')),
        ("docs_placement", "docs"),
    ),
    Mutant(
        "row-sum-tolerance-loosened",
        "the target row-sum tolerance loosened from 1e-9 m to 1e-2 m",
        "checks",
        (("    return max(1e-9, 8 * float(np.finfo(dtype).eps))",
          "    return max(1e-2, 8 * float(np.finfo(dtype).eps))"),),
        ("boundaries",),
    ),
    Mutant(
        "cli-docs-export-removed",
        "'symloss docs' and 'symloss export' removed from the command line",
        "cli",
        (("COMMAND_MODULES = (catalog, parse, check, docs, build)",
          "COMMAND_MODULES = (catalog, parse, check, build)"),),
        ("cli_commands", "docs::test_symloss_docs_command",
         "export::test_symloss_export_command"),
    ),
    Mutant(
        "small-call-without-1/n",
        "a small call through the compiled loop divides its gradient by 1, not n",
        "compiled",
        (("        numbers[len(scalars)] = divisor\n", "        numbers[len(scalars)] = 1.0\n"),),
        ("small_compiled",),
    ),
    Mutant(
        "small-call-checks-skipped",
        "a small call through the compiled loop skips its input checks",
        "checks",
        (("            return self._passes_compiled(arrays)\n", "            return True\n"),),
        ("small_compiled",),
    ),
    Mutant(
        "mean-without-1/n",
        "the gradient of the mean forgets its 1/n (no sample weights)",
        "core",
        (("divisor = batch.count if weight is None else 1.0", "divisor = 1.0"),),
        ("options", "edges_reference"),
    ),
    Mutant(
        "naive-softplus",
        "softplus evaluated as log(1 + exp(x)) (overflows at large logits)",
        "numeric",
        (("            return relu(x) + log1p(exp(-Abs(x)))", "            return log1p(exp(x))"),),
        ("edges_reference",),
    ),
    Mutant(
        "hess-weight-dropped",
        "sample weights (and the count) not applied to the Hessian only",
        "core",
        (("            if weight is not None:\n                batch.scale_rows(h[lo:hi], lo)",
          "            if False:\n                batch.scale_rows(h[lo:hi], lo)"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "weights-not-sliced-per-block",
        "each block of rows takes the first rows' weights",
        "core",
        (("w = self.weight[start : start + g.shape[0]]", "w = self.weight[: g.shape[0]]"),),
        ("options",),
    ),
    Mutant(
        "ignored-rows-counted",
        "rows labelled ignore_index still count in the mean's divisor",
        "core",
        (("            per_row = per_row * (labels != loss.ignore_index)\n",
          "            per_row = per_row * 1.0\n"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "class-weight-count-n",
        "integer labels with class weights divide by n instead of sum w_y",
        "core",
        (("if cw is not None and loss.label_reduction", "if False"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "batchmean-divides-by-elements",
        "reduction='batchmean' divides by n m instead of n",
        "core",
        (('    elif loss.reduction == "batchmean":\n        count = float(n)',
          '    elif loss.reduction == "batchmean":\n        count = float(p.size)'),),
        ("options",),
    ),
    Mutant(
        "open-end-accepted",
        "an open domain end (log's 0, tweedie's y = 0) is accepted",
        "domain",
        (("ok_lo = low > lo if lo_open else low >= lo", "ok_lo = low >= lo"),),
        ("boundaries",),
    ),
    Mutant(
        "pos-weight-on-negatives",
        "pos_weight multiplies the negative term instead of the positive one",
        "article",
        (("term = Add(Mul(pos_weight_symbol, positive, evaluate=False), negative, evaluate=False)",
          "term = Add(positive, Mul(pos_weight_symbol, negative, evaluate=False), evaluate=False)"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "keras-smoothing-wrong",
        "binary label smoothing towards 0 (t (1 - e)) instead of towards 1/2",
        "article",
        (("smoothed = Add(t[i] * (1 - smoothing), smoothing / 2, evaluate=False)",
          "smoothed = t[i] * (1 - smoothing)"),),
        ("options", "torch_options"),
    ),
    Mutant(
        "hessian-nan-at-zero-probability",
        "a zero target's t/y**2 Hessian term is 0 * inf = NaN at y = 0",
        "numeric",
        (("if isinstance(f, Pow) and f.exp.is_Integer and f.exp < 0 and f.base.has(Indexed)",
          "if isinstance(f, Pow) and f.exp == -1 and f.base.has(Indexed)"),
         ("xdivy(Mul(*weight), inverse[0].base ** -inverse[0].exp)",
          "xdivy(Mul(*weight), inverse[0].base)")),
        ("edges_reference",),
    ),
    Mutant(
        "sse-target-unchecked",
        "sum_squared_error accepts NaN and inf targets",
        "article",
        (('    reduction="sum",\n    index=k,\n',
          '    reduction="sum",\n    index=k,\n    target=None,\n'),),
        ("boundaries",),
    ),
    Mutant(
        "ci-skips-frameworks",
        "CI installs the test extra only, without torch, jax and dask",
        "ci",
        (('pip install ".[test,frameworks]" && pytest', 'pip install ".[test]" && pytest'),),
        ("ci_contract",),
    ),
    Mutant(
        "float32-blend-on-float64-bits",
        "the NumPy code's selections read float32 values as float64 bit patterns",
        "fused",
        (("    return np.asarray(x, dtype=dtype).view(np.int32 if dtype == np.float32 else np.int64)",
          "    return np.asarray(x, dtype=np.float64).view(np.int64)"),),
        ("float32",),
    ),
    Mutant(
        "float32-c-maximum-is-minimum",
        "the float32 C loop's maximum computes the minimum",
        "compiled",
        (('    "maximum": "sl_maxf({0}, {1})",', '    "maximum": "sl_minf({0}, {1})",'),),
        ("float32",),
    ),
    Mutant(
        "jax-label-gather-under-smoothing",
        "to_jax gathers the value at the labels without checking that the kernel is 0 at t = 0",
        "spec",
        (("    return at_zero == 0 or (", "    return True or (at_zero == 0) or ("),),
        ("codegen::test_a_value_is_gathered_at_labels_only_where_that_is_its_row_sum",
         "jax_export::test_options_match_the_numpy_path"),
    ),
    Mutant(
        "jax-label-gather-wrong-column",
        "to_jax gathers each row's value one column right of its label",
        "jax_template",
        (("jnp.take_along_axis(at_one, picked[:, None], axis=-1)",
          "jnp.take_along_axis(at_one, (picked[:, None] + 1) % pred.shape[-1], axis=-1)"),),
        ("jax_export::test_integer_labels_match_the_numpy_path",),
    ),
]  # fmt: skip


def _work_tree_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    )  # fmt: skip
    return [p for p in out.stdout.decode().split("\0") if p and (ROOT / p).is_file()]


def _copy(dest: Path) -> None:
    for rel in _work_tree_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


def anchor_problems(mutant: Mutant, text: str) -> list[str]:
    """Why *mutant*'s patches cannot apply to *text* (its file): [] when they can."""
    problems = []
    for old, new in mutant.patches:
        count = text.count(old)
        if count != 1:
            shown = old if len(old) < 70 else old[:67] + "..."
            problems.append(f"{count} matches of {shown!r}")
        text = text.replace(old, new, 1)
    return problems


def _where_now(anchor: str) -> list[str]:
    """Work-tree files that hold *anchor* exactly once (where a moved file went)."""
    found = []
    for rel in _work_tree_files():
        if rel.endswith((".py", "run")) and not rel.startswith("tests/"):
            try:
                if (ROOT / rel).read_text().count(anchor) == 1:
                    found.append(rel)
            except UnicodeDecodeError:
                continue
    return found


def _test_args(mutant: Mutant) -> list[str]:
    args = []
    for key in mutant.tests:
        name, _, select = key.partition("::")
        path = TESTS[name]
        args.append(f"{path}::{select}" if select and "[" not in select else path)
    return args


def run_tests(tree: Path, args: list[str], cache: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "SYMLOSS_CACHE_DIR": str(cache),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("PYTEST_ADDOPTS", None)
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--no-header", "-o", "addopts=", *args]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    lines = [x for x in proc.stdout.splitlines() if x.strip()]
    return proc.returncode, (lines[-1] if lines else proc.stderr.strip()[-200:])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ids", nargs="*", help="mutants to run (default: all)")
    p.add_argument("--check", action="store_true", help="only check the anchors")
    p.add_argument("--list", action="store_true", help="list the mutants")
    p.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    args = p.parse_args(argv)
    known = {m.id: m for m in MUTANTS}
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        p.error(f"unknown mutant(s): {', '.join(unknown)}")
    chosen = [known[i] for i in args.ids] if args.ids else MUTANTS
    if args.list:
        for m in chosen:
            print(f"{m.id:34} {FILES[m.file]:28} {m.what}")
        return 0

    stale = []
    for m in chosen:
        path = ROOT / FILES[m.file]
        why = ["file missing"] if not path.is_file() else anchor_problems(m, path.read_text())
        missing_tests = [t for t in m.tests if not (ROOT / TESTS[t.partition("::")[0]]).is_file()]
        why += [f"test file {TESTS[t.partition('::')[0]]} missing" for t in missing_tests]
        if why:
            stale.append((m, why))
    for m, why in stale:
        hint = _where_now(m.patches[0][0])
        hint = f" (the first anchor is now in {', '.join(hint)}: update FILES)" if hint else ""
        print(f"ANCHOR? {m.id}: {FILES[m.file]}: {'; '.join(why)}{hint}", file=sys.stderr)
    if args.check:
        print(f"{len(chosen) - len(stale)} of {len(chosen)} mutants apply")
        return 2 if stale else 0

    rows = []
    with tempfile.TemporaryDirectory(prefix="symloss-mutants-") as tmp:
        tmp = Path(tmp)
        clean = tmp / "clean"
        _copy(clean)
        if not args.no_baseline:
            all_args = sorted({a for m in chosen for a in _test_args(m)})
            t0 = time.monotonic()
            code, last = run_tests(clean, all_args, tmp / "cache-clean")
            print(f"baseline (no mutant): exit {code}, {last} ({time.monotonic() - t0:.0f} s)")
            if code != 0:
                print("the unmutated tests fail: fix them first", file=sys.stderr)
                return 1
        for m in chosen:
            if any(s is m for s, _ in stale):
                rows.append((m, "ANCHOR?", "anchor no longer matches", 0.0))
                continue
            tree = tmp / "mutant"
            shutil.rmtree(tree, ignore_errors=True)
            shutil.copytree(clean, tree)
            path = tree / FILES[m.file]
            text = path.read_text()
            for old, new in m.patches:
                text = text.replace(old, new, 1)
            path.write_text(text)
            if path.suffix == ".py":
                try:
                    compile(text, str(path), "exec")
                except SyntaxError as exc:  # a broken patch would "kill" every test
                    rows.append((m, "INVALID", f"the patched file does not compile: {exc}", 0.0))
                    continue
            t0 = time.monotonic()
            code, last = run_tests(tree, _test_args(m), tmp / f"cache-{len(rows)}")
            # pytest's exit codes: 1 tests failed, 2 collection errors (an import of the
            # mutant failed: still a kill), anything else a problem of the run itself.
            verdict = {0: "SURVIVED", 1: "killed", 2: "killed (collection)"}.get(
                code, f"ERROR (pytest exit {code})"
            )
            rows.append((m, verdict, last, time.monotonic() - t0))
            print(f"{m.id}: {verdict} ({last})", flush=True)

    print()
    print("| mutant | file | bug | tests run | result | time |")
    print("|---|---|---|---|---|---|")
    for m, verdict, last, secs in rows:
        tests = ", ".join(m.tests)
        print(
            f"| {m.id} | {FILES[m.file]} | {m.what} | {tests} | {verdict}: {last} | {secs:.0f} s |"
        )
    survived = [m.id for m, v, _, _ in rows if v == "SURVIVED"]
    broken = [m.id for m, v, _, _ in rows if v in ("INVALID", "ANCHOR?") or v.startswith("ERROR")]
    killed = len(rows) - len(survived) - len(broken)
    print(
        f"\n{killed} killed, {len(survived)} survived, {len(broken)} not run properly"
        + (f" ({', '.join(broken)})" if broken else "")
    )
    return 2 if broken else (1 if survived else 0)


if __name__ == "__main__":
    sys.exit(main())
