"""Every command the README's "Command line" section shows exists (issue 20).

Run as users run them, in a subprocess on the source tree.  A command dropped from
``symloss.cli`` (``docs`` and ``export`` once were, and their end-to-end tests turned
into skips) fails here by name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Command line", 1)[1].split("```console", 1)[1].split("```")[0]
    return [m for m in re.findall(r"^\$ symloss (\w+)", section, re.M)]


def test_the_readme_lists_every_command():
    """The README shows each subcommand the parser has, and no other."""
    from symloss.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.dest == "command"]
    assert set(readme_commands()) == set(sub.choices)


@pytest.mark.parametrize("command", sorted(set(readme_commands())))
def test_readme_command_exists(command, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMLOSS_CACHE_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "symloss", command, "--help"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, f"symloss {command} --help: {out.stderr}"
    assert out.stdout.startswith(f"usage: symloss {command}"), out.stdout[:200]
