"""The registry: every loss by name, the catalog's and the user's.

:func:`register` adds a loss (or a builder of losses) and refuses duplicate names;
:func:`get` returns one by name or alias with options bound; :func:`names` and
:func:`catalog` list them.  The catalog's families (:mod:`symloss.losses`) are loaded
on first use, one family at a time (``symloss.get("bce")`` imports only the family
that defines ``bce``, which keeps ``symloss show bce`` quick to start): loading a
family registers the entries of its ``CATALOG`` with :func:`register`, as a user's
losses are registered.

Layer: above :mod:`symloss.losses` and :mod:`symloss.core`; below the LaTeX reader,
the checker, the docs and the CLI.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import lru_cache

import numpy as np

from symloss.core.loss import Loss
from symloss.errors import ArgumentError, DefinitionError, OptionError, UnknownLossError
from symloss.losses import FAMILIES

_REGISTRY: dict[str, Loss] = {}
_ALIASES: dict[str, str] = {}
#: The families whose CATALOG is registered.  Held here, not read from sys.modules: a
#: family can be imported for its names (its domains, its builders) before the
#: registry loads it, and importing one registers nothing.
_LOADED: set[str] = set()
#: Taken while families load, so that two threads asking for a loss at once register
#: each family once (a second registration would be refused as a duplicate).
_LOADING = threading.Lock()


def register(loss: Loss | Callable[..., Loss], *, group: str = "") -> Loss:
    """Add a loss to the registry; duplicate names or aliases are refused.

    *loss* is a :class:`Loss`, or a builder: a function of keyword-only options
    (such as ``log_input`` or ``label_smoothing``) returning a Loss, called with
    no arguments for the registered default.  *group* (one of
    :data:`symloss.core.loss.GROUPS`) is where the docs list a loss that declares
    none itself; the catalog passes its family's ``GROUP``.
    """
    if not isinstance(loss, Loss):
        builder = loss
        loss = builder()
        if loss.builder is None:
            loss = replace(loss, builder=builder)
    if group and not loss.group:
        loss = replace(loss, group=group)
    for key in (loss.name, *loss.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise DefinitionError(f"a loss is already registered as {key!r}")
    _REGISTRY[loss.name] = loss
    for alias in loss.aliases:
        _ALIASES[alias] = loss.name
    return loss


def names() -> list[str]:
    """The registered canonical names, sorted."""
    _load()
    return sorted(_REGISTRY)


def get(name: str, **options) -> Loss:
    """The registered loss called *name* (canonical name or alias), with options bound.

    Hyperparameters (``delta=1.5``), structural options (``label_smoothing=0.1``,
    ``ignore_index=-100``) and ``reduction`` bind here.  Derivations are cached per
    loss structure, so binding numbers costs nothing symbolic.

    Raises
    ------
    KeyError
        For an unknown name; the message lists close matches.
    TypeError
        For an unknown option; the message names the valid ones.
    """
    _load(name)
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownLossError(f"unknown loss {name!r}{hint} (see symloss.names())")
    if not options:
        return _REGISTRY[key]
    frozen = tuple(sorted((k, _freeze(v)) for k, v in options.items()))
    return _bind(key, frozen)


def _freeze(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    return value


@lru_cache(maxsize=256)
def _bind(key: str, frozen: tuple) -> Loss:
    base = _REGISTRY[key]
    options = dict(frozen)
    reduction = options.pop("reduction", base.reduction)
    params = {p.name: p for p in base.params}
    # A parameter the builder also takes, set to None, is a structural choice: the
    # builder drops its term (sigmoid_focal's alpha=None, as optax's default).
    structural = {
        k: v for k, v in options.items() if k not in params or (v is None and k in base.options)
    }
    valid = sorted({"reduction", *params, *base.options})
    unknown = sorted(set(structural) - set(base.options))
    if unknown:
        raise ArgumentError(
            f"{key} got unexpected option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid)}"
        )
    loss = base.builder(**structural) if structural else base
    params = {p.name: p for p in loss.params}
    bound = dict(loss.bound)
    for k, v in options.items():
        if k in params:
            bound[k] = params[k].validate(v, key)
        elif k not in structural:
            raise ArgumentError(
                f"{key} got unexpected option {k!r}; valid options: {', '.join(valid)}"
            )
    if reduction not in loss.reductions:
        raise OptionError(
            f"{key}: reduction must be one of {', '.join(loss.reductions)}, got {reduction!r}"
        )
    return replace(
        loss,
        bound=tuple(sorted(bound.items())),
        reduction=reduction,
        builder=base.builder,
        group=loss.group or base.group,  # a builder's loss takes its family's group
    )


def catalog() -> Iterator[Loss]:
    """Every registered loss, in name order."""
    return (get(k) for k in names())


def _load(name: str | None = None) -> None:
    """Register the catalog's families, in :data:`~symloss.losses.FAMILIES` order: all
    of them, or, with *name*, those up to the one that defines it."""
    with _LOADING:
        for family in FAMILIES:
            if name is not None and (name in _REGISTRY or name in _ALIASES):
                return
            if family not in _LOADED:
                module = importlib.import_module(f"symloss.losses.{family}")
                for entry in module.CATALOG:
                    register(entry, group=getattr(module, "GROUP", ""))
                _LOADED.add(family)
