"""Every example in README.md and docs/*.md runs as written (issue 21).

Python blocks (```python) run one after another in a fresh interpreter per file, in a
temporary directory, as a reader pasting them into one session would.  Console blocks
(```console) run each ``$ `` line with ``symloss`` meaning this tree's command; a line
may end in ``# exits N`` to state a non-zero exit status.  Bash blocks (```bash) are the
Quick start: each ``pip install ... && CMD`` runs CMD (the install itself is what CI
does before the tests).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from shared import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(path: Path, language: str) -> list[str]:
    return [
        body for lang, body in FENCE.findall(path.read_text(encoding="utf-8")) if lang == language
    ]


def environment(tmp_path: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    launcher = bin_dir / "symloss"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m symloss "$@"\n')
    launcher.chmod(0o755)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_python_examples_run_as_written(path, tmp_path):
    code = "\n\n".join(blocks(path, "python"))
    if not code:
        return
    script = tmp_path / "examples.py"
    script.write_text(code)
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
        env=environment(tmp_path), timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, f"{path.name}'s Python examples failed:\n{out.stderr[-3000:]}"


def console_lines(path: Path) -> list[tuple[str, int]]:
    found = []
    for body in blocks(path, "console"):
        for line in body.splitlines():
            if not line.startswith("$ "):
                continue
            command, _, comment = line[2:].partition("  #")
            status = re.search(r"exits (\d+)", comment)
            found.append((command.strip(), int(status.group(1)) if status else 0))
    return found


CONSOLE = [(p, c, s) for p in DOCUMENTS for c, s in console_lines(p)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "command", "status"), CONSOLE, ids=[f"{p.name}: {c[:50]}" for p, c, _ in CONSOLE]
)
def test_console_examples_run_as_written(path, command, status, tmp_path):
    out = subprocess.run(
        command, shell=True, capture_output=True, text=True, cwd=tmp_path,
        env=environment(tmp_path), timeout=900,
    )  # fmt: skip
    assert out.returncode == status, f"{command!r} exited {out.returncode}:\n{out.stderr[-2000:]}"


def test_quick_start_has_exactly_two_commands_and_the_second_is_ci():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (body,) = blocks_in(quick, "bash")
    commands = [line for line in body.splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, "the README's test command must be what .ci/run runs"


@pytest.mark.slow
def test_quick_start_main_job_runs(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    first = blocks_in(quick, "bash")[0].splitlines()[0]
    install, _, command = first.partition("&&")
    assert install.strip().startswith("pip install")
    out = subprocess.run(
        shlex.split(command.strip()), capture_output=True, text=True, cwd=tmp_path,
        env=environment(tmp_path), timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) < 200, "the main job should show one loss well"


def blocks_in(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]
