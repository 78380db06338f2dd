"""``symloss show`` and ``table`` in a terminal (issue 16): no repeated lines, one-line
table headers, every element-wise loss tabulated, output wrapped to ``$COLUMNS``,
conventions and references shown, and an ASCII mode for CJK terminals."""

from __future__ import annotations

import math

import pytest

import symloss
from symloss.cli import main
from symloss.docs.table import tabulable
from symloss.registry import catalog


def out(capsys, *args) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_a_derivation_names_its_constraint_once(capsys):
    text = out(capsys, "show", "cce_logits", "--part", "derivation")
    assert text.count("uses one_hot") == 1


def test_the_gradient_still_names_its_constraint(capsys):
    assert out(capsys, "show", "cce_logits", "--part", "gradient").count("uses one_hot") == 1


@pytest.mark.parametrize("name", ["sse", "mse", "huber", "bce", "cce", "cce_logits"])
def test_table_rows_have_one_line_headers(capsys, name):
    lines = out(capsys, "table", name).splitlines()
    assert set(lines[1]) <= {"-", "|"}, lines[:3]  # the header is exactly one line
    cells = len(lines[0].split(" | "))
    assert all(len(line.split(" | ")) == cells for line in lines[2:])


def test_table_of_one_hot_cce_has_a_row_per_sample_and_class(capsys):
    lines = out(capsys, "table", "cce", "--y", "0.7,0.3;0.4,0.6", "--t", "1,0;0,1").splitlines()
    body = [[c.strip() for c in line.split("|")] for line in lines[2:]]
    assert [r[:2] for r in body] == [["1", "1"], ["1", "2"], ["2", "1"], ["2", "2"]]
    assert float(body[0][-1]) == round(math.log(0.7), 2)
    assert float(body[3][-1]) == round(math.log(0.6), 2)
    assert body[1][-1] == body[2][-1] == "0"


def test_every_element_wise_loss_is_tabulated(capsys):
    names = [L.name for L in catalog() if tabulable(L)]
    assert "categorical_cross_entropy" in names and "softmax_cross_entropy" in names
    for name in names:
        assert main(["table", name]) == 0, name
    capsys.readouterr()


def test_a_loss_coupled_through_a_row_sum_is_refused_in_one_line(capsys):
    assert main(["table", "dice"]) == 2
    assert "one term per element" in capsys.readouterr().err


@pytest.mark.parametrize("width", [80, 60, 120])
def test_show_wraps_to_columns(capsys, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", str(width))
    text = out(capsys, "show", "softmax_focal", "categorical_hinge", "--part", "all")
    text += out(capsys, "show", "tversky", "--part", "derivation")
    # A URL is never cut (it stays copyable); every other line fits.
    long = [line for line in text.splitlines() if len(line) > width and "http" not in line]
    assert not long, long[:3]


def test_show_prints_conventions_and_references(capsys):
    text = out(capsys, "show", "huber")
    L = symloss.get("huber")
    assert "conventions: Mean over the n elements" in text
    assert text.count("reference: ") == len(L.references)


def test_ascii_mode_is_plain_ascii(capsys):
    text = out(capsys, "show", "--all", "--ascii")
    text += out(capsys, "show", "cce_logits", "huber", "--ascii", "--part", "derivation")
    text += out(capsys, "table", "cce_logits", "--ascii")
    bad = sorted({c for c in text if ord(c) > 127})
    assert not bad, bad


def test_unicode_mode_is_the_default(capsys):
    assert "∂E/∂yᵢ" in out(capsys, "show", "mse", "--part", "gradient")
