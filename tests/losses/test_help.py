"""What a loss says about itself: ``help(loss)`` and ``repr(loss)``, made from its data."""

from __future__ import annotations

import dataclasses
import pydoc

from conftest import registry_params

import symloss


def help_of(loss) -> str:
    """What ``help(loss)`` prints."""
    return pydoc.render_doc(loss, renderer=pydoc.plaintext)


def flat(text: str) -> str:
    return " ".join(text.split())


@registry_params()
def test_help_shows_the_formula_parameters_conventions_and_references(loss):
    text = help_of(loss)
    assert loss.latex() in text  # on one line, ready to copy
    for line in loss.pretty().splitlines():
        assert line.rstrip() in text
    for p in loss.params:
        assert f"{p.name} = {loss.param_values[p.name]!r}" in text
    assert f"reduction = {loss.reduction!r}" in text
    assert flat(loss.conventions) in flat(text)
    assert loss.references and all(flat(r) in flat(text) for r in loss.references)
    for label, dom in loss.domains.items():
        assert f"{label}: {dom.description}" in flat(text)
    # Not the dataclass's field dump, nor the class's own docstring.
    assert "term=" not in text and "One loss function" not in text


def test_help_shows_bound_values_and_the_builders_options():
    text = help_of(symloss.get("cce_logits", label_smoothing=0.1))
    assert "label_smoothing = 0.1 in [0, 1]" in text
    assert "label_smoothing=None, class_weight=None, ignore_index=-100" in text
    assert "delta = 2.5" in help_of(symloss.get("huber", delta=2.5))


def test_the_help_text_follows_the_loss_not_a_copy():
    huber = symloss.get("huber")
    renamed = dataclasses.replace(huber, title="Renamed Huber")
    assert huber.__doc__.startswith("Huber loss (huber; aliases: huber_loss)")
    assert renamed.__doc__.startswith("Renamed Huber (huber; aliases: huber_loss)")


def test_the_class_keeps_its_own_docstring():
    assert symloss.Loss.__doc__.startswith("One loss function")
    assert "Parameters" in help_of(symloss.Loss) and "One loss function" in help_of(symloss.Loss)


def test_repr_is_one_short_line():
    assert repr(symloss.get("huber")) == "<Loss huber: Huber loss, delta=1.0, reduction='mean'>"
    for loss in symloss.catalog():
        text = repr(loss)
        assert "\n" not in text and len(text) < 160, text
        assert text.startswith(f"<Loss {loss.name}: {loss.title}")
    weighted = repr(symloss.get("cce_logits", class_weight=[1.0] * 1000))
    assert "class_weight=(1.0, 1.0, 1.0, 1.0, ...)" in weighted and len(weighted) < 160
