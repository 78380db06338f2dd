"""How kernels are evaluated: the backend, threads and block sizes, with an API.

Each setting starts from its environment variable (read once, at import) and can be
changed at run time with :func:`configure`, or for a block of code with
:func:`configured` (and :func:`backend` for the backend alone).  The settings are
process-wide, not per thread: the worker threads of one call read the same values.

Backends (each evaluates block by block):

- ``"auto"`` (default): the compiled C loop (:mod:`symloss.numeric.compiled`) on blocks
  of at least ``compile_min_elements`` elements, where a C compiler works; else
  ``"fused"``;
- ``"c"``: the compiled C loop on every block (a :class:`~symloss.BackendError` if no
  compiler works);
- ``"fused"``: generated in-place NumPy code (:mod:`symloss.numeric.fused`), no compiler;
- ``"lambdify"``: SymPy's lambdify, one allocation per operation (the reference).

An invalid environment value is not an import error: it is reported, naming the
variable, the first time the setting is used.

>>> import symloss
>>> with symloss.backend("fused"):
...     symloss.get_backend()
'fused'
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace

import numpy as np

from symloss.errors import BackendError, SettingError

BACKENDS = ("auto", "c", "fused", "lambdify")

#: Environment variable of each setting.
ENVIRONMENT = {
    "backend": "SYMLOSS_BACKEND",
    "threads": "SYMLOSS_NUM_THREADS",
    "block_elements": "SYMLOSS_BLOCK_ELEMENTS",
    "compile_min_elements": "SYMLOSS_COMPILE_MIN_ELEMENTS",
    "compile_after_calls": "SYMLOSS_COMPILE_AFTER_CALLS",
}


@dataclass(frozen=True)
class Settings:
    """The evaluation settings.

    Attributes
    ----------
    backend : {"auto", "c", "fused", "lambdify"}
    threads : int
        Worker threads for blocked evaluation (NumPy and the C loop release the GIL).
    block_elements : int or None
        Elements per block of one array; None picks by backend
        (:func:`symloss.numeric.blocks.block_elements`).
    compile_min_elements : int
        Under ``"auto"``, blocks smaller than this run NumPy's fused code, so a small
        input never waits for the compiler (about 0.1 s per kernel, once per machine:
        the compiled objects are cached on disk).
    compile_after_calls : int
        Under ``"auto"``, a smaller input runs the compiled loop once that loop is
        loaded or cached on disk (a large call or ``symloss build`` made it), or once
        the same kernel has been called this many times on inputs of one shape and
        type in this process: the compiler then runs once, and every later call
        skips NumPy's per-operation cost.  0 compiles at the first call.
    """

    backend: str = "auto"
    threads: int = os.cpu_count() or 1
    block_elements: int | None = None
    compile_min_elements: int = 65536
    compile_after_calls: int = 1000


#: The accepted range of each numeric setting (block_elements 0 means "pick by backend").
_RANGES = {
    "threads": (1, 1024),
    "block_elements": (0, 2**31),
    "compile_min_elements": (0, 2**62),
    "compile_after_calls": (0, 2**62),
}


def parse_count(source: str, raw: str, low: int, high: int) -> int:
    """The whole number written in *raw* (ASCII digits only: not ``1e5``, ``-5``,
    ``1_000`` or other scripts' digits) if it lies from *low* to *high*, else a
    :class:`~symloss.SettingError` naming *source* and the range."""
    text = raw.strip()
    value = int(text) if text.isascii() and text.isdigit() else None
    if value is None or not low <= value <= high:
        raise SettingError(
            f"{source}={raw!r} is not accepted: give a whole number from {low:,} to {high:,}"
        )
    return value


def _validated(name: str, value, source: str) -> object:
    """*value* for setting *name*, or an error saying what *source* got wrong: a
    BackendError for an unknown backend, a SettingError for a number out of range."""
    if name == "backend":
        if value not in BACKENDS:
            raise BackendError(f"{source}={value!r} is not one of {', '.join(BACKENDS)}")
        return value
    given = value
    if isinstance(value, str):
        if name == "block_elements" and not value.strip():
            return None  # the documented "pick by backend"
        value = parse_count(source, value, *_RANGES[name])
    if name == "block_elements" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingError(f"{source} must be an int, got {value!r}")
    low, high = _RANGES[name]
    if not low <= value <= high:
        raise SettingError(
            f"{source}={given!r} is not accepted: give a whole number from {low:,} to {high:,}"
        )
    return None if name == "block_elements" and value == 0 else value


def _from_environment() -> tuple[Settings, dict[str, Exception]]:
    values: dict[str, object] = {}
    errors: dict[str, Exception] = {}
    for name, var in ENVIRONMENT.items():
        raw = os.environ.get(var)
        if raw is None:
            continue
        try:
            values[name] = _validated(name, raw, var)
        except (BackendError, SettingError) as exc:
            errors[name] = exc
    return Settings(**values), errors


_LOCK = threading.Lock()
#: The settings in force, and the environment's errors not yet overridden.
_SETTINGS, _ENV_ERRORS = _from_environment()


def settings() -> Settings:
    """The settings in force; raises the environment's error if a variable was invalid
    and the setting has not been configured since."""
    if _ENV_ERRORS:
        raise next(iter(_ENV_ERRORS.values()))
    return _SETTINGS


def configure(**changes) -> Settings:
    """Change settings for the whole process; returns the previous ones.

    >>> import symloss
    >>> previous = symloss.configure(threads=1)
    >>> _ = symloss.configure(threads=previous.threads)
    """
    global _SETTINGS
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    checked = {k: _validated(k, v, k) for k, v in changes.items()}
    with _LOCK:
        previous = _SETTINGS
        _SETTINGS = replace(_SETTINGS, **checked)
        for name in checked:  # an explicit setting replaces what the environment said
            _ENV_ERRORS.pop(name, None)
    return previous


@contextmanager
def configured(**changes) -> Iterator[Settings]:
    """Run a block with some settings changed, restored afterwards."""
    global _SETTINGS
    previous = configure(**changes)
    try:
        yield _SETTINGS
    finally:
        with _LOCK:
            _SETTINGS = previous


def get_backend() -> str:
    """The backend in force (``"auto"``, ``"c"``, ``"fused"`` or ``"lambdify"``)."""
    return settings().backend


def set_backend(name: str) -> None:
    """Evaluate every later call with backend *name* (see the module docstring)."""
    configure(backend=name)


@contextmanager
def backend(name: str) -> Iterator[None]:
    """``with symloss.backend("fused"): ...`` runs the block with that backend."""
    with configured(backend=name):
        yield


def use_compiled(values) -> bool:
    """Whether the compiled C loop runs on a block holding these arrays: always under
    ``"c"``, under ``"auto"`` for a block of ``compile_min_elements`` or more."""
    current = settings()
    backend = current.backend
    if backend != "auto":
        return backend == "c"
    least = current.compile_min_elements
    ndarray = np.ndarray
    for v in values:  # a loop, not any(): this runs several times in every call
        if isinstance(v, ndarray) and v.size >= least:
            return True
    return False
