"""``symloss export -o FILE`` and the CLI's usage errors (issue 19's hygiene items).

Every case runs the real entry point, ``symloss.cli.main``; exit status 2 is a usage
error (a place that cannot be written is one: the user's to fix), 1 any other error,
each reported in one line on stderr.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from shared import ROOT

import symloss
from symloss.cli import main


def export_to(target, capsys) -> tuple[int, str]:
    rc = main(["export", "bce", "-o", str(target)])
    return rc, capsys.readouterr().err


def test_an_existing_file_is_overwritten_and_keeps_its_mode(tmp_path, capsys):
    out = tmp_path / "handout.tex"
    out.write_text("old")
    os.chmod(out, 0o600)
    assert export_to(out, capsys)[0] == 0
    assert out.read_text().startswith(r"\documentclass")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_new_file_gets_the_usual_mode(tmp_path, capsys):
    out = tmp_path / "new.tex"
    umask = os.umask(0o022)
    try:
        assert export_to(out, capsys)[0] == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_a_symlink_is_followed_and_stays_a_link(tmp_path, capsys):
    real = tmp_path / "real.tex"
    real.write_text("old")
    link = tmp_path / "link.tex"
    link.symlink_to(real)
    assert export_to(link, capsys)[0] == 0
    assert link.is_symlink() and real.read_text().startswith(r"\documentclass")


def test_hard_links_all_see_the_new_text(tmp_path, capsys):
    a = tmp_path / "a.tex"
    a.write_text("old")
    b = tmp_path / "b.tex"
    os.link(a, b)
    assert export_to(a, capsys)[0] == 0
    assert os.path.samefile(a, b) and b.read_text().startswith(r"\documentclass")


def test_a_fifo_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code = "import sys; from symloss.cli import main; sys.exit(main(['export', 'bce', '-o', sys.argv[1]]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(fifo)], env=env)
    with open(fifo, "rb") as reader:
        data = reader.read()
    assert proc.wait(timeout=120) == 0
    assert data.startswith(rb"\documentclass") and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_character_device_is_written_not_replaced(capsys):
    assert export_to("/dev/null", capsys)[0] == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="Linux's /dev/full")
def test_a_full_device_is_an_error_naming_it_and_stays_a_device(capsys):
    rc, err = export_to("/dev/full", capsys)
    assert rc == 2 and err == "symloss: error: cannot write /dev/full: No space left on device\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_directory_is_refused_by_name(tmp_path, capsys):
    rc, err = export_to(tmp_path, capsys)
    assert rc == 2 and err == f"symloss: error: cannot write {tmp_path}: Is a directory\n"


def test_errors_name_the_target_not_a_temporary_file(tmp_path, capsys):
    plain = tmp_path / "plain"
    plain.write_text("a file, not a directory")
    rc, err = export_to(plain / "out.tex", capsys)
    assert rc == 2 and err == f"symloss: error: cannot write {plain / 'out.tex'}: Not a directory\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["table", "bce", "--digits", "-5"],
        ["table", "bce", "--digits", "many"],
        ["check", "bce", "--grad", "x:y", "--seed", "-1"],
        ["check", "bce", "--grad", "x:y", "--samples", "0"],
        ["export", "bce", "-o", ""],
        ["show"],
        ["export", "bce", "--param"],
    ],
)
def test_usage_errors_exit_2_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("symloss: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_subcommand(where):
    argv = ["--debug", "show", "nope"] if where == "before" else ["show", "nope", "--debug"]
    with pytest.raises(symloss.UsageError, match="unknown loss 'nope'"):
        main(argv)
