"""Options in the formula (issue 16, item 2): the values of the hyperparameters, what
the computation adds to the definition, and each option's effect, on the page and in
the handout, all made from the loss."""

from __future__ import annotations

import html

import numpy as np
import pytest
from conftest import LOSSES

import symloss
import symloss.docs as docs
from symloss.docs import html as html_out
from symloss.docs.options import computed_notes, option_effects, where_tex
from symloss.docs.sheet import sheet


def page(loss) -> str:
    return html.unescape(html_out._html_page(sheet(loss), None, {}))


def test_bound_values_are_shown_on_the_page_and_in_the_handout():
    H = symloss.get("huber", delta=1.5)
    assert where_tex(H) == r"\delta = 1.5"
    assert 'where <span class="math inline">\\delta = 1.5</span>' in page(H)
    assert r"where \(\delta = 1.5\)." in docs.export_tex([H], None)
    assert "delta = 1.5" in H.describe_params()[0]


def test_class_weights_show_their_values():
    C = symloss.get("cce_logits", class_weight=[1, 2, 1])
    assert r"w = \left(1, 2, 1\right)" in where_tex(C)


@pytest.mark.parametrize("loss", [L for L in LOSSES if L.options], ids=lambda L: L.name)
def test_every_option_is_documented_with_its_effect(loss):
    effects = option_effects(loss)
    named = {note.text.split(" ")[0] for note in effects}
    assert named == set(loss.options)
    text = page(loss)
    for note in effects:
        assert note.text in text
        if note.tex:
            assert note.tex in text and note.tex.split(r",\quad")[0] != loss.latex()


def test_reduction_none_is_one_value_per_sample():
    texts = [n.tex for n in computed_notes(symloss.get("cce", reduction="none"))]
    assert texts[0] == r"E_{i} = -\sum_{j=1}^{m} t_{ij} \log{\left(y_{ij} \right)}"
    assert not any(n.tex.startswith("E_{i}") for n in computed_notes(symloss.get("cce")))


def test_the_class_weighted_mean_divides_by_the_summed_weights_as_computed():
    w = np.array([1.0, 2.0, 0.5])
    C = symloss.get("cce_logits", class_weight=list(w))
    (note,) = [n for n in computed_notes(C) if "summed weights" in n.text]
    assert r"\frac{1}{\sum_{i=1}^{n} w_{c_{i}}}" in note.tex
    z = np.array([[0.3, -1.0, 2.0], [1.0, 0.0, 0.5], [0.0, 0.0, 0.0]])
    c = np.array([2, 0, 1])
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(3)
    expected = -(w[c] * log_p[rows, c]).sum() / w[c].sum()
    assert C(z, c) == pytest.approx(expected, rel=1e-12)


def test_per_sample_weights_multiply_each_term_and_the_mean_divides_by_n():
    L = symloss.get("huber", delta=1.5)
    (note,) = [n for n in computed_notes(L) if "per-sample" in n.text]
    assert note.tex.startswith(r"E = \frac{1}{n}\sum_{i=1}^{n}") and "s_{i}" in note.tex
    y, t, s = np.array([0.0, 3.0, -1.0]), np.zeros(3), np.array([1.0, 0.5, 2.0])
    each = symloss.get("huber", delta=1.5, reduction="none")(y, t)
    assert L(y, t, weight=s) == pytest.approx((s * each).sum() / 3, rel=1e-12)


def test_ignore_index_is_stated():
    notes = computed_notes(symloss.get("cce_logits"))
    assert any("-100 (ignore_index)" in n.text for n in notes)
