"""The catalog as data: each family declares its losses in ``CATALOG``, and the registry
registers them, one family at a time, when a name needs it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import registry_params
from shared import ROOT

import symloss
from symloss import registry
from symloss.core.loss import Loss
from symloss.losses import FAMILIES


def in_a_fresh_process(code: str) -> str:
    """stdout of *code* run by a new interpreter on this tree (nothing imported yet)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


LOADED_FAMILIES = (
    "import sys, symloss\n"
    "{call}\n"
    "print(' '.join(sorted(m.rpartition('.')[2] for m in sys.modules"
    " if m.startswith('symloss.losses.'))))"
)


def test_get_imports_only_the_family_that_defines_the_loss():
    loaded = in_a_fresh_process(LOADED_FAMILIES.format(call="symloss.get('bce')")).split()
    assert loaded == ["article", "common"]
    assert "margin" not in loaded


def test_families_load_in_order_and_stop_at_the_one_that_defines_the_name():
    loaded = in_a_fresh_process(LOADED_FAMILIES.format(call="symloss.get('hinge')")).split()
    assert sorted(loaded) == sorted(["common", *FAMILIES[: FAMILIES.index("margin") + 1]])


def test_names_loads_every_family():
    loaded = in_a_fresh_process(LOADED_FAMILIES.format(call="symloss.names()")).split()
    assert sorted(loaded) == sorted(["common", *FAMILIES])


def test_importing_a_family_registers_nothing():
    out = in_a_fresh_process(
        "import symloss.losses.margin as margin\n"
        "from symloss import registry\n"
        "print(len(registry._REGISTRY), len(margin.CATALOG))\n"
        "print(registry.get('hinge').name, len(registry.names()))"
    )
    first, second = out.splitlines()
    assert first == "0 4"  # imported for its names: the family is not registered yet
    assert second.startswith("hinge ")  # and the registry still loads it, once


@pytest.mark.parametrize("family", FAMILIES)
def test_every_catalog_entry_is_registered_once(family):
    symloss.names()  # every family loaded; loading again must not register again
    symloss.names()
    module = importlib.import_module(f"symloss.losses.{family}")
    entries = module.CATALOG
    assert entries, f"{family} declares no losses"
    for entry in entries:
        loss = entry if isinstance(entry, Loss) else entry()
        # Registered as declared, with the family's GROUP where the loss names none.
        assert symloss.get(loss.name) == replace(loss, group=loss.group or module.GROUP)
        if not isinstance(entry, Loss):
            assert symloss.get(loss.name).builder is entry
        # The same public register() users call refuses the family a second time.
        with pytest.raises(ValueError, match="already registered"):
            registry.register(entry)


def test_every_registered_loss_comes_from_one_family():
    owners: dict[str, str] = {}
    for family in FAMILIES:
        for entry in importlib.import_module(f"symloss.losses.{family}").CATALOG:
            name = (entry if isinstance(entry, Loss) else entry()).name
            assert name not in owners, f"{name} is in {owners.get(name)} and {family}"
            owners[name] = family
    assert sorted(owners) == symloss.names()


@registry_params()
def test_every_input_array_has_a_domain(loss):
    arrays = {str(b.label) for b in (loss.pred, loss.target, *loss.extra_inputs)}
    assert set(loss.domains) == arrays
    assert None not in loss.domains.values()


def test_a_nan_target_is_refused_by_the_articles_sse_as_by_mse():
    for name in ("sse", "mse"):
        with pytest.raises(ValueError, match="outside the domain"):
            symloss.get(name)(np.array([1.0, 2.0]), np.array([np.nan, 1.0]))


def test_a_composition_states_its_bases_reduction_and_its_activation():
    # Made from the base's sums (symloss.losses.common.mean_statement), not cut from
    # the base's prose; the text is the one printed before conventions were built.
    assert symloss.get("bce_logits").conventions == (
        "Mean over the n samples; the prediction is sigmoid of the logits, evaluated "
        "stably (softplus / log-sum-exp)."
    )
    assert symloss.get("cce_logits").conventions.startswith(
        "Mean over the n samples of the sum over the m classes; the prediction is softmax "
        "of the logits, evaluated stably (softplus / log-sum-exp). Integer labels"
    )
