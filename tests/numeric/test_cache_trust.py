"""Issue 19's compiled-backend items: the kernel cache's trust model
(docs/cache-trust.md), its recoveries and refusals, thread-safe first use, long-row
accuracy, and the SYMLOSS_* numeric settings.

Each critical class is a table of constructions (or a Hypothesis strategy), not one
example.  Every test points the cache at its own temporary directory
(``SYMLOSS_CACHE_DIR``); what could crash the interpreter (loading a damaged object)
runs in a subprocess, which imports this tree (``PYTHONPATH``).  Foreign owners are
made with ``os.chown`` to another uid, so those cases need root (CI runs as root) and
skip otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import symloss
from symloss import SymlossError
from symloss.numeric import blocks, config, rows
from symloss.numeric import compiled as _compiled
from symloss.numeric.kernel import Kernel

pytestmark = pytest.mark.usefixtures("backend_c")  # skips (or fails) without a compiler

ROOT = Path(__file__).resolve().parents[2]
OTHER = 54321  # a uid that is not this process's
EPS = np.finfo(np.float64).eps
TRUST = _compiled.TRUST_PARENTS
needs_root = pytest.mark.skipif(
    not hasattr(os, "getuid") or os.getuid() != 0, reason="os.chown to another user needs root"
)


# ============================================================================ helpers
def _fresh(monkeypatch, cache: Path) -> None:
    """This process forgets what it compiled and loaded (the disk cache stays) and
    uses the cache *cache*, with the parents checked."""
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(cache))
    monkeypatch.delenv(TRUST, raising=False)
    for name in ("_LOADED", "_FUNCS", "_FAILED", "_STATE"):
        monkeypatch.setattr(_compiled, name, {})


def _source(tag: float) -> str:
    """A tiny kernel with a cache entry of its own: ``out[0][0] = tag + m``."""
    return (
        "void symloss_kernel(long r, long m, const double *const *in, double *const *out)"
        f" {{ out[0][0] = {tag!r} + (double)m; }}\n"
    )


def _call(fn, m: int = 1) -> float:
    out = np.zeros(1)
    fn(0, m, None, (ctypes.c_void_p * 1)(out.ctypes.data))
    return float(out[0])


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "kernels").iterdir())


def _only_entry(cache: Path) -> Path:
    (entry,) = _entries(cache)
    return entry


def _key(entry: Path) -> str:
    return entry.name[1:-3]  # k<key>.so


def _is_valid_entry(entry: Path) -> bool:
    """A regular file of this user's, read and run by the owner only, sealed for its name."""
    info = entry.lstat()
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and stat.S_IMODE(info.st_mode) == 0o500
        and _compiled._unseal(entry.read_bytes(), _key(entry)) is not None
    )


def _put(entry: Path, data: bytes, mode: int = 0o500, uid: int | None = None) -> None:
    """Replace *entry* (whatever it is) by a file holding *data*."""
    _remove(entry)
    entry.write_bytes(data)
    entry.chmod(mode)
    if uid is not None:
        os.chown(entry, uid, uid)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _cc(tmp: Path, code: str, name: str) -> bytes:
    """A shared object of C *code*, compiled directly (not through symloss)."""
    src, obj = tmp / f"{name}.c", tmp / f"{name}.so"
    src.write_text(code)
    subprocess.run(["cc", "-shared", "-fPIC", str(src), "-o", str(obj)], check=True)
    return obj.read_bytes()


def _evil(tmp: Path, marker: Path) -> bytes:
    """A library whose constructor creates *marker* as soon as it is loaded."""
    return _cc(
        tmp,
        "#include <fcntl.h>\n#include <unistd.h>\n"
        "__attribute__((constructor)) static void evil(void)"
        f' {{ int fd = open("{marker}", O_CREAT | O_WRONLY, 0600); if (fd >= 0) close(fd); }}\n'
        "void symloss_kernel(long r, long m, const double *const *in, double *const *out)"
        " { out[0][0] = 666.0; }\n",
        "evil",
    )


def _subprocess_env(cache: Path, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SYMLOSS_CACHE_DIR": str(cache), **extra}
    env.pop(TRUST, None)
    return env


def _within(seconds: float, fn):
    """fn() on a daemon thread: its result, or a failure if it has not returned in
    time (a named pipe opened without O_NONBLOCK would block forever)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised below, on the test's thread
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# ============================================================================ damaged objects
#: A kernel loaded by a subprocess: each source in argv[1] (JSON) is built and called;
#: prints the values.  A damaged object that were loaded would kill it (SIGBUS, SIGSEGV).
LOAD_ALL = """
import ctypes, json, sys
import numpy as np
from symloss.numeric import compiled as _compiled
values = []
for code in json.load(open(sys.argv[1])):
    out = np.zeros(1)
    _compiled.build(code)(0, 1, None, (ctypes.c_void_p * 1)(out.ctypes.data))
    values.append(float(out[0]))
print(json.dumps(values))
"""


def _cut(n: int):
    return lambda d, tag_at: d[:n] if n >= 0 else d[: len(d) + n]


def _flip(at: int | None):
    def damage(d: bytes, tag_at: int) -> bytes:
        k = tag_at if at is None else at % len(d)
        return d[:k] + bytes([d[k] ^ 0x5A]) + d[k + 1 :]

    return damage


SEAL = _compiled._SEAL.size
#: Ways a cached object can be damaged on disk: cut at many lengths (a full disk, a
#: crash before fsync, a copy that stopped; negative: bytes from the end), bytes
#: changed or zeroed inside (a torn write; None: the kernel's own constant, so that
#: it would load and return another number), the seal cut off, doubled or alone.
DAMAGES = {
    **{f"cut to {n} bytes": _cut(n) for n in (0, 1, 4, 63, 64, 512, 1000, 4000, 8000, 12000)},
    **{f"cut by {-n} bytes": _cut(n) for n in (-1, -8, -SEAL + 1, -SEAL, -SEAL - 1, -4096)},
    **{f"byte {at} changed": _flip(at) for at in (0, 4, 16, 64, 5000, -SEAL - 9, -1)},
    "the kernel's constant changed": _flip(None),
    "4096 bytes zeroed in the middle": lambda d, _: (
        d[: len(d) // 2 - 2048] + bytes(4096) + d[len(d) // 2 + 2048 :]
    ),
    "seal doubled": lambda d, _: d + d[-SEAL:],
    "seal alone": lambda d, _: d[-SEAL:],
}


def _entry_of(cache: Path, code: str) -> Path:
    """The cache entry of *code* (its name is the hash of the identity and the source)."""
    key = hashlib.sha256((_compiled._identity() + code).encode()).hexdigest()[:32]
    return cache / "kernels" / f"k{key}.so"


def test_damaged_objects_are_compiled_again_without_crashing(tmp_path, monkeypatch):
    """Issue 19 item 5: a truncated cached object crashed every later run (SIGBUS).

    One kernel per damage of DAMAGES: a fresh process loads them all, must not
    crash, must return each kernel's own value, and leaves every entry a valid
    object again, with nothing else left in the cache."""
    cache = tmp_path / "cache"
    _fresh(monkeypatch, cache)
    sources = [_source(100.0 + k) for k in range(len(DAMAGES))]
    for code, damage in zip(sources, DAMAGES.values()):
        _compiled.build(code)
        entry = _entry_of(cache, code)
        data = entry.read_bytes()
        tag_at = data.find(np.float64(float(code.split("= ")[1].split(" +")[0])).tobytes())
        assert tag_at > 0  # the constant sits in the object
        _put(entry, damage(data, tag_at))
    script, listing = tmp_path / "load_all.py", tmp_path / "sources.json"
    script.write_text(LOAD_ALL)
    listing.write_text(json.dumps(sources))
    done = subprocess.run(
        [sys.executable, str(script), str(listing)],
        env=_subprocess_env(cache),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert json.loads(done.stdout) == [101.0 + k for k in range(len(sources))]
    assert sorted(_entries(cache)) == sorted(_entry_of(cache, code) for code in sources)
    assert all(_is_valid_entry(e) for e in _entries(cache))


@settings(max_examples=300)
@given(data=st.data())
def test_the_seal_rejects_any_cut_or_changed_byte(data):
    """The check behind the test above, in-process (nothing is loaded): whatever the
    length an object is cut to and whichever byte is changed, or whichever key it is
    read for, its seal fails."""
    obj = data.draw(st.binary(min_size=1, max_size=300), label="object")
    sealed = _compiled._seal(obj, "a" * 32)
    assert _compiled._unseal(sealed, "a" * 32) == obj
    cut = data.draw(st.integers(0, len(sealed) - 1), label="cut")
    assert _compiled._unseal(sealed[:cut], "a" * 32) is None
    at = data.draw(st.integers(0, len(sealed) - 1), label="at")
    bits = data.draw(st.integers(1, 255), label="bits")
    changed = sealed[:at] + bytes([sealed[at] ^ bits]) + sealed[at + 1 :]
    assert _compiled._unseal(changed, "a" * 32) is None
    other = data.draw(st.text("0123456789abcdef", min_size=32, max_size=32), label="key")
    if other != "a" * 32:
        assert _compiled._unseal(sealed, other) is None


@pytest.mark.parametrize("backend", ["auto", "c"])
def test_a_truncated_kernel_of_a_loss_is_compiled_again(tmp_path, backend):
    """The issue's report: a real kernel's object cut to 4,000, 8,000 or 12,000
    bytes, under its own name with mode 0500, under auto and c: later runs give the
    same value, and the objects are whole again."""
    script = (
        "import numpy as np, symloss\n"
        "z = np.linspace(-2, 2, 70000)\n"  # over COMPILE_MIN_ELEMENTS: auto compiles too
        "print(repr(symloss.get('log_cosh').value_and_grad(z, np.zeros(70000))[0]))\n"
    )
    env = _subprocess_env(tmp_path, SYMLOSS_BACKEND=backend)

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
        return done.stdout

    first = run()
    objects = _entries(tmp_path)
    assert objects
    for size in (4000, 8000, 12000):
        for obj in objects:
            _put(obj, obj.read_bytes()[:size])
        assert run() == first, size
        assert _entries(tmp_path) == objects
        assert all(_is_valid_entry(o) for o in objects), size


# ============================================================================ odd entries
def _socket(entry: Path, ctx) -> None:
    # Bound under a short name (AF_UNIX paths are short), then renamed into place.
    short = Path("/tmp") / f"sl-{os.getpid()}-{threading.get_ident()}.sock"
    sock = socket.socket(socket.AF_UNIX)
    ctx["close"] = sock.close
    sock.bind(str(short))
    os.rename(short, entry)


#: What may sit under a kernel's name in the user's own cache, other than its object.
#: Each is compiled again into place (a regular file of this user's, mode 0500,
#: sealed for its name).  ctx holds: "own" (this kernel's sealed object), "other"
#: (another kernel's), "rows" (the row helpers'), "raw" (this kernel's object
#: unsealed, as cached before the seal existed), "away" (a directory outside).
ODD_ENTRIES = {
    "an empty file": lambda e, ctx: _put(e, b""),
    "junk": lambda e, ctx: _put(e, os.urandom(20000)),
    "junk sealed for this kernel": lambda e, ctx: _put(
        e, _compiled._seal(os.urandom(20000), _key(e))
    ),
    "an object without a seal (the old format)": lambda e, ctx: _put(e, ctx["raw"]),
    "another kernel's sealed object": lambda e, ctx: _put(e, ctx["other"]),
    "the row helpers' sealed object (no symloss_kernel)": lambda e, ctx: _put(e, ctx["rows"]),
    "an empty directory": lambda e, ctx: e.mkdir(),
    "a directory holding files": lambda e, ctx: (
        e.mkdir(),
        (e / "x.so").write_bytes(ctx["own"]),
        (e / "sub").mkdir(),
        (e / "sub" / "y").write_text("y"),
    ),
    "a link to this kernel's valid object": lambda e, ctx: (
        (ctx["away"] / "valid.so").write_bytes(ctx["own"]),
        e.symlink_to(ctx["away"] / "valid.so"),
    ),
    "a dangling link": lambda e, ctx: e.symlink_to(ctx["away"] / "nothing"),
    "a link to a directory": lambda e, ctx: e.symlink_to(ctx["away"]),
    "a named pipe": lambda e, ctx: os.mkfifo(e),
    "a socket": _socket,
    "this kernel's object, writable by its group": lambda e, ctx: _put(e, ctx["own"], 0o570),
    "this kernel's object, writable by anyone": lambda e, ctx: _put(e, ctx["own"], 0o777),
    "this kernel's object, of another user": pytest.param(
        lambda e, ctx: _put(e, ctx["own"], 0o500, OTHER), marks=needs_root
    ),
}


@pytest.mark.parametrize("make", ODD_ENTRIES.values(), ids=ODD_ENTRIES.keys())
def test_odd_entries_in_the_own_cache_are_compiled_again_into_place(tmp_path, monkeypatch, make):
    """Issue 19's odd cache states (a directory under a kernel's name raised
    IsADirectoryError, another kernel's object AttributeError or its values), and
    each other thing that may sit under the name: the kernel's own value, and its
    entry a valid object again."""
    cache, away = tmp_path / "cache", tmp_path / "away"
    away.mkdir()
    _fresh(monkeypatch, cache)
    code, other = _source(11.0), _source(22.0)
    ctx = {"away": away}
    for name, c in (("own", code), ("other", other), ("rows", _compiled._ROWS)):
        _compiled.build(c, "symloss_row_max" if c is _compiled._ROWS else "symloss_kernel")
        ctx[name] = _entry_of(cache, c).read_bytes()
    ctx["raw"] = ctx["own"][: -_compiled._SEAL.size]
    entry = _entry_of(cache, code)
    _remove(entry)
    try:
        make(entry, ctx)
        _fresh(monkeypatch, cache)
        fn = _within(60, lambda: _compiled.build(code))
    finally:
        ctx.get("close", lambda: None)()
    assert _call(fn, m=3) == 14.0
    assert _is_valid_entry(entry)
    assert {p.name for p in _entries(cache)} == {
        _entry_of(cache, c).name for c in (code, other, _compiled._ROWS)
    }  # nothing left aside: no temporaries, copies or moved directories
    assert list(away.glob("valid.so")) in ([], [away / "valid.so"])  # a link's target untouched


# ============================================================================ swapped files
#: When the entry is swapped for another file, between the cache's check and the
#: load: right after the entry is opened, or when it is checked (fstat).
MOMENTS = ["open", "fstat"]


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize(
    "swapped_in",
    [
        pytest.param("another user's library", marks=needs_root),
        "this user's library, not a kernel",
        "this kernel's object, freshly installed by another process",
    ],
)
def test_the_object_checked_is_the_object_loaded(tmp_path, monkeypatch, moment, swapped_in):
    """Issue 19 item 6: the object was checked on its descriptor, then loaded by its
    path, so a file swapped in meanwhile was loaded (its constructor ran), and
    8 processes building the same kernels saw "replaced while it was loaded".

    The swap is made at each moment of MOMENTS; the kernel must run its own code,
    the swapped-in library's constructor must never run, and a later load (in a
    process that starts afresh) must not run it either."""
    cache = tmp_path / "cache"
    _fresh(monkeypatch, cache)
    code = _source(33.0)
    _compiled.build(code)
    entry = _entry_of(cache, code)
    marker = tmp_path / "constructor-ran"
    intruder = tmp_path / "intruder.so"
    if swapped_in == "this kernel's object, freshly installed by another process":
        intruder.write_bytes(entry.read_bytes())
    else:
        intruder.write_bytes(_compiled._seal(_evil(tmp_path, marker), _key(entry)))
    intruder.chmod(0o500)
    if swapped_in == "another user's library":
        os.chown(intruder, OTHER, OTHER)
    swapped = []

    def swap():
        if not swapped:
            swapped.append(True)
            os.replace(intruder, entry)

    def is_entry(fd) -> bool:
        return isinstance(fd, int) and os.readlink(f"/proc/self/fd/{fd}").endswith(entry.name)

    real_open, real_fstat = os.open, os.fstat

    def spy_open(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if moment == "open" and str(path).endswith(entry.name):
            swap()
        return fd

    def spy_fstat(fd):
        if moment == "fstat" and is_entry(fd):
            swap()
        return real_fstat(fd)

    _fresh(monkeypatch, cache)
    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fstat", spy_fstat)
    fn = _compiled.build(code)
    monkeypatch.setattr(os, "open", real_open)
    monkeypatch.setattr(os, "fstat", real_fstat)
    assert swapped, "the swap never happened: the test no longer reaches the moment"
    assert _call(fn) == 34.0
    assert not marker.exists()
    if swapped_in == "this user's library, not a kernel":
        return  # now the entry, sealed by this user: trusted, as anything this user writes
    _fresh(monkeypatch, cache)  # the intruder is now the entry
    assert _call(_compiled.build(code)) == 34.0
    assert not marker.exists()
    assert _is_valid_entry(entry)


def test_a_rejected_object_is_never_loaded_and_its_replacement_is(tmp_path, monkeypatch):
    """After a rejection the kernel is compiled again and the new object loaded (the
    loader used to hand back the rejected library it had already mapped under that
    path): another kernel's object, rejected, then the right one, in one process."""
    cache = tmp_path / "cache"
    _fresh(monkeypatch, cache)
    code, other = _source(44.0), _source(55.0)
    for c in (code, other):
        _compiled.build(c)
    entry = _entry_of(cache, code)
    _put(entry, _entry_of(cache, other).read_bytes())
    for _ in range(3):  # and again, each time as a fresh start of the same process
        _fresh(monkeypatch, cache)
        assert _call(_compiled.build(code)) == 45.0
        _put(entry, _entry_of(cache, other).read_bytes())


# ============================================================================ directories
def _foreign(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, OTHER, OTHER)
    path.chmod(mode)
    return path


def _mode(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def _linked(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


#: Caches that are refused, by name: (how to make one under tmp, returning
#: SYMLOSS_CACHE_DIR; the message; whether SYMLOSS_TRUST_CACHE_PARENTS=1 accepts it).
#: The kernels directory itself is never trusted on the user's word; its parents are.
REFUSED = {
    "kernels of another user": pytest.param(
        lambda t: _foreign(t / "c" / "kernels", 0o700).parent,
        "kernels belongs to another user",
        False,
        marks=needs_root,
    ),
    "kernels writable by its group": (
        lambda t: _mode(t / "c" / "kernels", 0o770).parent,
        "kernels is writable by others",
        False,
    ),
    "kernels writable by anyone": (
        lambda t: _mode(t / "c" / "kernels", 0o777).parent,
        "kernels is writable by others",
        False,
    ),
    "kernels writable by anyone, sticky": (
        lambda t: _mode(t / "c" / "kernels", 0o1777).parent,
        "kernels is writable by others",
        False,
    ),
    "kernels a link to another user's directory": pytest.param(
        lambda t: _linked(t / "c" / "kernels", _foreign(t / "theirs", 0o700)).parent,
        "theirs belongs to another user",
        False,
        marks=needs_root,
    ),
    "kernels a link into a directory anyone may write": (
        lambda t: _linked(t / "c" / "kernels", _mode(_mode(t / "open", 0o777) / "k", 0o700)).parent,
        "open, above the kernel cache, is writable by others",
        True,
    ),
    "the cache directory of another user": pytest.param(
        lambda t: _foreign(t / "c"),
        "c, above the kernel cache, belongs to another user",
        True,
        marks=needs_root,
    ),
    "the cache directory writable by its group": (
        lambda t: _mode(t / "c", 0o775),
        "c, above the kernel cache, is writable by others",
        True,
    ),
    "a parent writable by anyone": (
        lambda t: _mode(t / "shared", 0o777) / "c",
        "shared, above the kernel cache, is writable by others",
        True,
    ),
    "a parent writable by its group": (
        lambda t: _mode(t / "shared", 0o770) / "c",
        "shared, above the kernel cache, is writable by others",
        True,
    ),
    "a sticky parent of another user": pytest.param(
        lambda t: _foreign(t / "shared", 0o1777) / "c",
        "shared, above the kernel cache, belongs to another user",
        True,
        marks=needs_root,
    ),
    "a grandparent of another user": pytest.param(
        lambda t: _mode(_foreign(t / "g") / "p", 0o700) / "c",
        "g, above the kernel cache, belongs to another user",
        True,
        marks=needs_root,
    ),
    "SYMLOSS_CACHE_DIR a link to another user's directory": pytest.param(
        lambda t: _linked(t / "link", _foreign(t / "theirs")),
        "theirs, above the kernel cache, belongs to another user",
        True,
        marks=needs_root,
    ),
}


def _refused_params():
    for name, case in REFUSED.items():
        values, marks = (case.values, case.marks) if hasattr(case, "values") else (case, ())
        yield pytest.param(*values, id=name, marks=marks)


@pytest.mark.parametrize("trust_parents", [False, True], ids=["checked", "parents trusted"])
@pytest.mark.parametrize("make, message, parental", list(_refused_params()))
def test_an_untrusted_cache_is_refused(
    tmp_path, monkeypatch, make, message, parental, trust_parents
):
    """Issue 19 item 6 and the odd cache states: a kernels directory, or a directory
    above it, that someone else could write (or swap), is refused with an
    UntrustedCache (a SymlossError) naming it, and nothing is written into it; a
    refused parent is accepted with SYMLOSS_TRUST_CACHE_PARENTS=1, a refused kernels
    directory never is."""
    base = make(tmp_path)
    _fresh(monkeypatch, base)
    if trust_parents:
        monkeypatch.setenv(TRUST, "1")
    code = _source(66.0)
    if trust_parents and parental:
        assert _call(_compiled.build(code)) == 67.0
        return
    with pytest.raises(_compiled.UntrustedCache, match=re.escape(message)) as info:
        _compiled.build(code)
    assert isinstance(info.value, SymlossError) and info.value.environment
    assert (TRUST in str(info.value)) == parental  # the way out is named where there is one
    assert not [
        p for p in tmp_path.rglob("*") if p.name.startswith(("k", ".tmp", ".load")) and p.is_file()
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda t: _mode(t / "sticky", 0o1777) / "c",  # as /tmp: only an entry's owner renames it
        lambda t: _linked(t / "c" / "kernels", _mode(t / "mine", 0o700)).parent,
        lambda t: _mode(t / "c", 0o755),  # readable by others is fine: nothing secret
        lambda t: _linked(t / "link", _mode(t / "real", 0o700)),
    ],
    ids=[
        "a sticky parent",
        "kernels a link to a private directory",
        "a readable parent",
        "SYMLOSS_CACHE_DIR a link to a private directory",
    ],
)
def test_a_private_cache_is_accepted(tmp_path, monkeypatch, make):
    base = make(tmp_path)
    _fresh(monkeypatch, base)
    assert _call(_compiled.build(_source(77.0))) == 78.0
    entry = _entry_of(Path(os.path.realpath(base)), _source(77.0))
    assert _is_valid_entry(Path(os.path.realpath(entry.parent)) / entry.name)


@needs_root
@pytest.mark.parametrize("backend", ["auto", "c"])
def test_a_refused_cache_is_a_warning_under_auto_and_an_error_under_c(
    tmp_path, monkeypatch, backend, configure
):
    """What the user sees: under auto the NumPy code runs, with one RuntimeWarning
    saying why; under c, a BackendError (a SymlossError) saying why."""
    _foreign(tmp_path / "c" / "kernels", 0o700)
    _fresh(monkeypatch, tmp_path / "c")
    configure(backend=backend)
    monkeypatch.setattr(rows, "_WARNED", set())
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    kernel = Kernel(sp.exp(sp.IndexedBase("y")[i]) * 5 + 1, [(i, n)])
    arrays = {"y": np.linspace(0, 1, 100_000)}
    if backend == "c":
        with pytest.raises(symloss.BackendError, match="belongs to another user") as info:
            kernel.evaluate(arrays, {n: 100_000})
        assert isinstance(info.value, SymlossError)
        return
    with pytest.warns(RuntimeWarning, match="NumPy code instead: .*belongs to another user"):
        got = kernel.evaluate(arrays, {n: 100_000})
    np.testing.assert_allclose(got, np.exp(arrays["y"]) * 5 + 1, rtol=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda t: (t / "c").mkdir() or (t / "c" / "kernels").write_text("") or t / "c",
        lambda t: (t / "file").write_text("") or t / "file" / "c",
    ],
    ids=["kernels a file", "a file in the path"],
)
def test_a_cache_path_that_is_not_directories_is_an_error(tmp_path, monkeypatch, make):
    _fresh(monkeypatch, make(tmp_path))
    with pytest.raises(_compiled.Unavailable, match="cannot open the kernel cache .*directory"):
        _compiled.build(_source(2.0))


@pytest.mark.parametrize("value", ["yes", "true", "2", "-1", "1 1"])
def test_the_trust_setting_takes_1_or_0(tmp_path, monkeypatch, value):
    _fresh(monkeypatch, tmp_path)
    monkeypatch.setenv(TRUST, value)
    with pytest.raises(_compiled.Unavailable, match=f"{TRUST}=.*expected 1"):
        _compiled.build(_source(1.0))


# ============================================================================ many processes
#: Waits for the start file, then builds and calls every source of argv[1] in the
#: order of argv[3]; prints the values in the sources' order.
RACE = """
import ctypes, json, os, sys, time
import numpy as np
from symloss.numeric import compiled as _compiled
sources = json.load(open(sys.argv[1]))
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
values = {}
for k in json.loads(sys.argv[3]):
    out = np.zeros(1)
    _compiled.build(sources[k])(0, 1, None, (ctypes.c_void_p * 1)(out.ctypes.data))
    values[k] = float(out[0])
print(json.dumps([values[k] for k in range(len(sources))]))
"""


@pytest.mark.parametrize(
    "reinstaller", [False, True], ids=["processes", "processes and reinstalls"]
)
def test_processes_building_the_same_kernels_at_once_all_succeed(tmp_path, reinstaller):
    """Issue 19: 8 processes compiling the same kernels, 1 of 48 got "replaced while
    it was loaded".  8 processes build the same 6 kernels into an empty cache, each
    in its own order; with reinstalls, this process meanwhile keeps renaming fresh
    copies of finished objects over them (as another process finishing its compile
    would).  Every process gets every value."""
    cache = tmp_path / "cache"
    sources = [_source(200.0 + k) for k in range(6)]
    (tmp_path / "sources.json").write_text(json.dumps(sources))
    (tmp_path / "race.py").write_text(RACE)
    go = tmp_path / "go"
    rng = np.random.default_rng(8)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "race.py"),
                str(tmp_path / "sources.json"),
                str(go),
                json.dumps(rng.permutation(6).tolist()),
            ],
            env=_subprocess_env(cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    time.sleep(1.0)  # let them import
    go.touch()
    reinstalls = 0
    while reinstaller and any(p.poll() is None for p in procs):
        for entry in (cache / "kernels").glob("k*.so") if (cache / "kernels").exists() else ():
            data = entry.read_bytes()
            if _compiled._unseal(data, _key(entry)) is None:
                continue
            fresh = entry.with_name(f".fresh-{reinstalls}")
            fresh.write_bytes(data)
            fresh.chmod(0o500)
            os.replace(fresh, entry)
            reinstalls += 1
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (out, err), code in results:
        assert code == 0, err[-2000:]
        assert json.loads(out) == [201.0 + k for k in range(6)]
    assert not reinstaller or reinstalls > 0
    assert sorted(_entries(cache)) == sorted(_entry_of(cache, c) for c in sources)


# ============================================================================ full disks
def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
    )
    return done.returncode == 0


def _fill(where: Path) -> None:
    with open(where / "filler", "wb") as f:
        try:
            while True:
                f.write(bytes(65536))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with contextlib.suppress(OSError):  # the last few blocks, smaller than a write
        for k in range(10_000):
            (where / f"f{k}").write_bytes(b"x" * 512)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs mount rights: root in CI; skips otherwise)."""
    where = tmp_path / "disk"
    if shutil.which("mount") is None or not _mount_tmpfs(where, "1m"):
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_reported_as_one_and_cached_kernels_still_load(tiny_disk, monkeypatch):
    """Issue 19: a full disk was reported as a compiler failure.  On a real full
    disk: a new kernel fails with "No space left on device", an environment cause
    (the NumPy code runs under auto), not "could not compile" nor "cannot build
    kernels here"; nothing half-written is left; a kernel cached before the disk
    filled still loads (from memory: its private copy cannot be written)."""
    cache = tiny_disk / "cache"
    _fresh(monkeypatch, cache)
    cached = _source(300.0)
    _compiled.build(cached)
    _fill(tiny_disk)
    _fresh(monkeypatch, cache)
    assert _call(_compiled.build(cached)) == 301.0
    with pytest.raises(_compiled.Unavailable, match="No space left on device") as info:
        _compiled.build(_source(400.0))
    said = str(info.value)
    assert said.startswith("cannot store a compiled kernel in ")
    assert "could not compile" not in said and "cannot build kernels here" not in said
    assert info.value.environment and not info.value.quiet
    assert [p.name for p in _entries(cache)] == [_entry_of(cache, cached).name]


#: Compilers that fail because their disk is full, as gcc, cc1 and ld say it.
FULL_COMPILERS = {
    "ld": "/usr/bin/ld: final link failed: No space left on device\n"
    "collect2: error: ld returned 1 exit status",
    "cc1": "cc1: fatal error: error writing to /tmp/ccX.s: No space left on device\n"
    "compilation terminated.",
    "as": "/tmp/ccY.s: Assembler messages:\n/tmp/ccY.s: Fatal error: can't write 5 bytes"
    " to section .text of /tmp/ccZ.o: 'No space left on device'",
    "quota": "/usr/bin/ld: final link failed: Disk quota exceeded\n"
    "collect2: error: ld returned 1 exit status",
}


@pytest.mark.parametrize("message", FULL_COMPILERS.values(), ids=FULL_COMPILERS.keys())
def test_a_compiler_out_of_disk_is_not_a_compiler_failure(tmp_path, monkeypatch, message):
    fake = tmp_path / "fake-cc"
    fake.write_text(f"#!/bin/sh\ncat >&2 <<'END'\n{message}\nEND\nexit 1\n")
    fake.chmod(0o755)
    _fresh(monkeypatch, tmp_path / "cache")
    monkeypatch.setattr(_compiled, "CC", str(fake))
    with pytest.raises(_compiled.Unavailable, match="disk full") as info:
        _compiled.build(_source(500.0))
    assert "cannot build kernels here" not in str(info.value)
    assert re.search("No space left on device|Disk quota exceeded", str(info.value))


#: Where writing may fail, by what it writes: (the function that writes, a test of
#: its arguments) -> with which errors; what the user sees.
WRITE_FAILURES = {
    "the source, before compiling": "source",
    "the object, into the cache": "install",
}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("where", WRITE_FAILURES.values(), ids=WRITE_FAILURES.keys())
def test_a_write_that_fails_says_why_and_leaves_nothing(tmp_path, monkeypatch, where, code):
    cache = tmp_path / "cache"
    _fresh(monkeypatch, cache)
    failure = OSError(code, os.strerror(code))
    if where == "source":
        real = Path.write_text

        def write_text(self, *args, **kwargs):
            if self.suffix == ".c":
                raise failure
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    else:
        real_new = _compiled._write_new

        def write_new(folder, name, data, durable=False):
            if durable:
                raise failure
            return real_new(folder, name, data, durable)

        monkeypatch.setattr(_compiled, "_write_new", write_new)
    with pytest.raises(_compiled.Unavailable, match=os.strerror(code)) as info:
        _compiled.build(_source(600.0))
    assert info.value.environment and "could not compile" not in str(info.value)
    assert _entries(cache) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_a_cache_that_takes_no_copy_still_loads_its_objects(tmp_path, monkeypatch, code):
    """The private copy that is loaded cannot be written (a full, read-only or
    unwritable disk): the checked bytes are loaded from memory instead."""
    cache = tmp_path / "cache"
    _fresh(monkeypatch, cache)
    codes = [_source(700.0 + k) for k in range(5)]
    for c in codes:
        _compiled.build(c)
    real_new = _compiled._write_new

    def write_new(folder, name, data, durable=False):
        if name.startswith(".load-"):
            raise OSError(code, os.strerror(code))
        return real_new(folder, name, data, durable)

    monkeypatch.setattr(_compiled, "_write_new", write_new)
    _fresh(monkeypatch, cache)
    pinned = len(_compiled._PINNED)
    assert [_call(_compiled.build(c)) for c in codes] == [701.0 + k for k in range(5)]
    assert len(_compiled._PINNED) == pinned + 5  # five names that are never reused


# ============================================================================ threads
#: The first calls of a fresh process, from 8 threads at once, with symloss.numeric.compiled's
#: first import made DELAY seconds longer (another thread then finds it in sys.modules,
#: half initialised).  argv: DELAY, the entry point, "warm" to derive the kernels
#: first with a small call (which runs NumPy's code: the compiled backend is first
#: used by the threads).  Prints the errors' count, then the first two.
FIRST_CALLS = """
import importlib.abc, importlib.machinery, sys, threading, time
DELAY, ENTRY, WARM = float(sys.argv[1]), sys.argv[2], sys.argv[3] == "warm"


class Slow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "symloss.numeric.compiled":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def slow(module):
            time.sleep(DELAY)
            run(module)

        spec.loader.exec_module = slow
        return spec


sys.meta_path.insert(0, Slow())
import numpy as np
import symloss
from symloss.numeric import blocks

z = np.linspace(-3, 3, 300_000)
t = (z > 0).astype(np.float64)
L = symloss.get("bce_logits")
CALLS = {
    "value_and_grad": lambda: L.value_and_grad(z, t),
    "grad": lambda: L.grad(z, t),
    "value": lambda: L(z, t),
    "hess": lambda: L.hess(z, t),
    "block_elements": blocks.block_elements,
}
if WARM:
    L.value_and_grad(z[:4], t[:4]), L.grad(z[:4], t[:4]), L(z[:4], t[:4]), L.hess(z[:4], t[:4])
errors, start = [], threading.Barrier(8)


def work():
    start.wait()
    try:
        CALLS[ENTRY]()
    except Exception as exc:
        errors.append(repr(exc))


threads = [threading.Thread(target=work) for _ in range(8)]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(len(errors), *errors[:2], sep="\\n")
"""


@pytest.mark.parametrize("warm", ["warm", "cold"])
@pytest.mark.parametrize("entry", ["value_and_grad", "grad", "value", "hess", "block_elements"])
def test_first_calls_from_many_threads_succeed(tmp_path, entry, warm):
    """Issue 19 item 7: "partially initialized module 'symloss.numeric.compiled' has no
    attribute '_STATE'" in 6 of 6 fresh processes.  Made certain here by a slow
    first import of symloss.numeric.compiled, for each entry point, with the kernels
    derived before (warm) or by the threads themselves (cold)."""
    (tmp_path / "first.py").write_text(FIRST_CALLS)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "first.py"), "0.5", entry, warm],
        env=_subprocess_env(tmp_path / "cache"),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "0", done.stdout


def test_first_calls_from_many_threads_in_six_fresh_processes(tmp_path):
    """The issue's own numbers, with no delay: 6 fresh processes, 8 threads each."""
    (tmp_path / "first.py").write_text(FIRST_CALLS)
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "first.py"), "0", "value_and_grad", "warm"],
            env=_subprocess_env(tmp_path / "cache"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (out, err), code in results:
        assert code == 0 and out.split("\n")[0] == "0", (out, err[-2000:])


def test_the_worker_pool_is_made_once(monkeypatch):
    """One-time initialisation: 8 threads asking for the pool at once get one pool."""
    made = []
    real = blocks.ThreadPoolExecutor

    def slow_pool(*args, **kwargs):
        time.sleep(0.05)  # wide open, had it no lock
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(blocks, "ThreadPoolExecutor", slow_pool)
    monkeypatch.setattr(blocks, "_POOL", None)
    start, got = threading.Barrier(8), []

    def ask():
        start.wait()
        got.append(blocks._pool(4))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert len(made) == 1 and all(p is made[0] for p in got)
    finally:
        for pool in made:
            pool.shutdown()


# ============================================================================ long rows
def _row_sum_kernel():
    x = sp.Symbol("x", real=True)
    kernel = _compiled.CompiledKernel(*_fused_statements([x * 3.0], [x]), 1)
    return lambda v: kernel(v, summed=(0,), length=v.shape[-1])[0] / 3.0


def _fused_statements(exprs, symbols):
    from symloss.numeric import fused as _fused

    return _fused.statements(*sp.cse(exprs), symbols)


def _row_statistic_kernel():
    """A row sum computed inside the loop, as a row statistic (the row program)."""
    i, j, k = sp.symbols("i j k", integer=True)
    n, m = sp.symbols("n m", integer=True, positive=True)
    y = sp.IndexedBase("y")
    kernel = Kernel(sp.Sum(y[i, k], (k, 1, m)) * 1.0, ((i, n), (j, m)))
    assert kernel._row_program is not None
    return lambda v: np.asarray(kernel.evaluate({"y": v}, {n: v.shape[0], m: v.shape[1]}))[:, 0]


#: The ways a row is summed in C: the row helper (softmax's sums), a kernel's output
#: summed in the loop, a row statistic of the row program.
SUMMERS = {
    "row helper": lambda: lambda v: _compiled.row_reduce(np.add, v),
    "summed output": _row_sum_kernel,
    "row statistic": _row_statistic_kernel,
}
#: Rows to sum: positive (no cancellation: the error is the summation's), around 1,
#: and of wide range.
ROWS = {
    "uniform": lambda rng, n: rng.random(n),
    "one plus noise": lambda rng, n: 1.0 + 1e-3 * rng.random(n),
    "exponentials": lambda rng, n: np.exp(rng.normal(scale=3.0, size=n)),
}


#: (kind of row, its length): every kind at lengths around and well above the chunk,
#: one at 10^7 (the issue's length; each takes seconds).
LONG_ROWS = [
    *[(kind, n) for kind in ROWS for n in (1025, 4099, 100_003, 1_000_000)],
    ("exponentials", 10_000_000),
]


@pytest.mark.parametrize("kind, n", LONG_ROWS, ids=[f"{k}-{n}" for k, n in LONG_ROWS])
@pytest.mark.parametrize("summer", SUMMERS.values(), ids=SUMMERS.keys())
def test_long_rows_are_summed_to_a_few_ulps(summer, kind, n):
    """Issue 19: one row of 10^7 summed lane by lane (the loop) or left to right (the
    row helper) was off by up to 666 eps x sum|v|.  Now within 2 eps x sum|v| of the
    exact sum (math.fsum), as NumPy's pairwise sum."""
    v = ROWS[kind](np.random.default_rng(n), n).reshape(1, n)
    got = float(summer()(v)[0])
    exact, scale = math.fsum(v[0]), math.fsum(np.abs(v[0]))
    assert abs(got - exact) <= 2 * EPS * scale, (got - exact) / (EPS * scale)


@pytest.mark.parametrize("summer", SUMMERS.values(), ids=SUMMERS.keys())
def test_long_rows_keep_the_special_values_of_a_sum(summer):
    """Chunked sums add the same values: a row of -0.0 sums to -0.0, an infinity
    in one chunk wins over finite values in others, +inf and -inf in two chunks
    give NaN, and so does a NaN."""
    n = 5 * _compiled.CHUNK + 3
    rows = np.ones((5, n))
    rows[0] = -0.0
    rows[1, 10] = np.inf
    rows[2, 10], rows[2, -1] = np.inf, -np.inf
    rows[3, 3 * _compiled.CHUNK] = np.nan
    rows[4, ::2] = -1.0
    fn = summer()
    with np.errstate(invalid="ignore"):
        got = np.array([fn(rows[k : k + 1])[0] for k in range(5)])
        want = np.sum(rows, axis=1)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.signbit(got[0])


@pytest.mark.parametrize("targets", ["one-hot", "uniform", "soft"])
def test_cce_logits_on_one_row_of_ten_million_is_accurate(targets, configure):
    """The issue's case: cce_logits on one row of 10^7 under c, against its exact
    value (math.fsum of the terms, NumPy's exp): 8.7e-12 relative error before."""
    configure(backend="c")
    rng = np.random.default_rng(7)
    m = 10**7
    z = rng.normal(scale=3.0, size=(1, m))
    t = {"one-hot": np.eye(1, m, 5), "uniform": np.full((1, m), 1.0 / m)}.get(targets)
    if t is None:
        t = rng.random((1, m))
        t /= t.sum()
    top = z.max()
    lse = top + math.log(math.fsum(np.exp(z - top)[0]))
    exact = math.fsum((t * (lse - z))[0])
    got = symloss.get("cce_logits")(z, t)
    assert abs(got - exact) <= 1e-15 * abs(exact), (got - exact) / exact


# ============================================================================ settings
#: (variable, lowest, highest accepted); values outside, or not written as digits,
#: are a SettingError naming the variable and the range.
SETTINGS = {
    "SYMLOSS_BLOCK_ELEMENTS": (0, 2**31),
    "SYMLOSS_NUM_THREADS": (1, 1024),
    "SYMLOSS_COMPILE_MIN_ELEMENTS": (0, 2**62),
    "SYMLOSS_COMPILE_AFTER_CALLS": (0, 2**62),
}
BAD_VALUES = ["-5", "-1", "1e5", "1.5", "0x10", "abc", "5 5", "1_000", "٣", "nan", "inf"]


@pytest.mark.parametrize("raw", BAD_VALUES)
@pytest.mark.parametrize("name", SETTINGS)
def test_a_bad_setting_names_the_variable_and_the_range(name, raw):
    low, high = SETTINGS[name]
    with pytest.raises(symloss.SettingError, match=re.escape(f"{name}={raw!r}")) as info:
        config.parse_count(name, raw, low, high)
    assert f"from {low:,} to {high:,}" in str(info.value)
    assert isinstance(info.value, SymlossError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", SETTINGS)
def test_settings_at_and_beyond_their_bounds(name):
    low, high = SETTINGS[name]
    for ok in (low, high, (low + high) // 2):
        assert config.parse_count(name, f" {ok} ", low, high) == ok
    for bad in (low - 1, high + 1, 10**30):
        with pytest.raises(symloss.SettingError):
            config.parse_count(name, str(bad), low, high)


@given(raw=st.text(max_size=12) | st.integers(-(2**70), 2**70).map(str))
def test_any_setting_text_is_a_number_in_range_or_a_setting_error(raw):
    for name, (low, high) in SETTINGS.items():
        try:
            value = config.parse_count(name, raw, low, high)
        except symloss.SettingError as exc:
            assert name in str(exc)
        else:
            assert low <= value <= high and str(value) == raw.strip().lstrip("0").rjust(1, "0")


@pytest.mark.parametrize(
    "name, raw",
    [
        ("SYMLOSS_BLOCK_ELEMENTS", "-5"),
        ("SYMLOSS_BLOCK_ELEMENTS", "1e5"),
        ("SYMLOSS_NUM_THREADS", "0"),
        ("SYMLOSS_COMPILE_MIN_ELEMENTS", "-1"),
    ],
)
def test_a_bad_setting_is_raised_at_the_first_evaluation(tmp_path, name, raw):
    """End to end, in a fresh process: importing symloss works (its symbolic side needs
    no setting); the first evaluation raises the SettingError, at once (-5 blocks
    took 67 s, and 1e5 was a raw ValueError)."""
    script = (
        "import numpy as np, symloss\n"
        "from symloss import SettingError\n"
        "try:\n"
        "    symloss.get('mse')(np.ones(3), np.zeros(3))\n"
        "except SettingError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_subprocess_env(tmp_path, **{name: raw}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"{name}={raw!r} is not accepted: give a whole number from")


# ============================================================================ the document
DOC = ROOT / "docs" / "cache-trust.md"


def test_the_trust_model_document_names_a_test_for_each_refusal_and_recovery():
    """docs/cache-trust.md's tables name, for each failure, the test that makes it
    happen: each named test exists here, and each test of this kind is named there."""
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", text))
    here = {name for name in globals() if name.startswith("test_")}
    assert named and named <= here, named - here
    cache_tests = {
        n
        for n in here
        if re.search(r"refused|compiled_again|disk|checked_is|copy|write|cache|trust|seal", n)
        and "document" not in n
    }
    assert cache_tests <= named, cache_tests - named
    for variable in (TRUST, "SYMLOSS_CACHE_DIR", "SYMLOSS_BACKEND"):
        assert variable in text
