"""The command line, run as users run it: in a subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from shared import ROOT

import symloss


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "symloss", *args], capture_output=True, text=True, timeout=120
    )


def test_list_shows_every_registered_loss():
    out = run("list")
    assert out.returncode == 0
    for L in symloss.catalog():
        assert L.name in out.stdout and L.title in out.stdout


def test_show_all_prints_each_loss_with_its_gradient():
    out = run("show", "--all")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("∂E/∂") == len(symloss.names())
    assert "σ(zᵢ) - tᵢ" in out.stdout


def test_show_latex_article_style_for_the_article_loss():
    out = run("show", "bce", "--latex", "--part", "loss")
    assert out.returncode == 0
    assert r"t_i\,log\,y_i" in out.stdout


def test_show_latex_standard_style_gradient():
    out = run("show", "cce_logits", "--latex", "--part", "gradient", "--style", "standard")
    assert r"\frac{\operatorname{softmax}\left(z\right)_{ij} - t_{ij}}{n}" in out.stdout
    assert "one_hot" in out.stdout


def test_table_reproduces_the_article():
    out = run("table", "bce")
    assert out.returncode == 0
    rows = [line.split("|") for line in out.stdout.splitlines()[2:]]
    assert [[c.strip() for c in r] for r in rows] == [
        ["0.2", "0", "0", "-0.22"],
        ["0.8", "0", "0", "-1.61"],
        ["0.2", "1", "-1.61", "0"],
        ["0.8", "1", "-0.22", "0"],
    ]


def test_table_with_chosen_points():
    out = run("table", "bce", "--y", "0.5", "--t", "1")
    assert out.returncode == 0
    assert "-0.69" in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (("show", "nope"), "unknown loss 'nope'"),
        (("show",), "needs a loss name"),
        (("show", "bce", "--style", "fancy"), "invalid choice: 'fancy'"),
        (("table", "bce", "--y", "1.5", "--t", "0"), "outside the domain [0, 1]"),
        (("table", "bce", "--y", "0.5,0.2", "--t", "0"), "--y has 2 values but --t has 1"),
        (("table", "bce", "--y", "abc"), "expected numbers"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, message):
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert message in lines[0]


def test_debug_shows_the_traceback():
    out = run("--debug", "show", "nope")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_readme_catalog_is_generated_from_the_registry():

    from symloss.cli import markdown_catalog

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- catalog:start -->")[1].split("<!-- catalog:end -->")[0]
    assert block.strip() == markdown_catalog(), "run: symloss list --markdown, paste into README"
    for L in symloss.catalog():
        assert f"`{L.name}`" in block
