"""Labels on a page say what the formula is about (issue 16, item 4)."""

from __future__ import annotations

import pytest
from conftest import LOSSES

import symloss
from symloss.docs import html as html_out
from symloss.docs.sheet import input_role, is_article_loss, plot_caption, sheet

LOGIT_LOSSES = [L for L in LOSSES if "logit" in L.domains[str(L.pred.label)].description]


def page(loss) -> str:
    return html_out._html_page(sheet(loss), None, {})


@pytest.mark.parametrize("loss", LOGIT_LOSSES, ids=lambda L: L.name)
def test_a_loss_on_logits_never_calls_them_a_prediction(loss):
    s = sheet(loss)
    z = str(loss.pred.label)
    labels = [f.label for f in s.formulas]
    assert f"Gradient by the logits {z}" in labels
    assert f"Hessian by the logits {z}" in labels
    assert not any(label.endswith(f"prediction {z}") for label in labels)
    assert input_role(loss) == "logits"


def test_the_logit_losses_include_the_uncomposed_ones():
    names = {L.name for L in LOGIT_LOSSES}
    assert {"multilabel_soft_margin", "soft_margin", "sigmoid_focal", "softmax_focal"} <= names


def test_a_regression_loss_is_by_the_prediction():
    labels = [f.label for f in sheet(symloss.get("mse")).formulas]
    assert "Gradient by the prediction y" in labels


@pytest.mark.parametrize("name", ["cce_logits", "cce", "poly1", "softmax_focal"])
def test_pages_do_not_show_the_internal_constraint_name(name):
    text = page(symloss.get(name))
    assert "one_hot" not in text
    assert "each target row sums to 1" in text


@pytest.mark.parametrize("loss", LOSSES, ids=lambda L: L.name)
def test_the_articles_table_is_cited_only_for_the_articles_losses(loss):
    caption = plot_caption(sheet(loss))
    if not is_article_loss(loss):
        assert "article" not in caption
