"""Writing a site safely: atomic in-place writes into a directory symloss owns, and progress."""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from symloss.errors import UnsafeOutputError
from symloss.version import __version__

#: The marker file that says "symloss built this directory".
MARKER = ".symloss-site"

#: How to get the plots.
PLOT_HINT = 'pip install "symloss[plot]"'

ProgressSpec = bool | Callable[[int, int, str], None] | None


@dataclass
class SiteReport:
    """What :func:`build_site` did.

    Attributes
    ----------
    out_dir : Path
        The site's directory.
    pages : list of Path
        The index followed by the loss pages, in name order.
    written : list of Path
        Files created or changed by this build (unchanged files are not rewritten).
    removed : list of Path
        Files of an earlier build that this build no longer produces.
    notes : list of str
        Things the user should know, e.g. how to install matplotlib for the plots.
    """

    out_dir: Path
    pages: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ============================================================================ writing
class _Output:
    """Atomic, in-place writes into a directory that symloss owns (see :data:`MARKER`)."""

    def __init__(self, out_dir: Path, force: bool):
        self.root = Path(out_dir)
        if self.root.exists() and not self.root.is_dir():
            raise UnsafeOutputError(f"{self.root} exists and is not a directory")
        marker = self.root / MARKER
        self.previous: list[str] = []
        if marker.is_file():
            try:
                self.previous = list(json.loads(marker.read_text("utf-8")).get("files", []))
            except (ValueError, AttributeError):
                self.previous = []
        elif self.root.is_dir() and any(self.root.iterdir()) and not force:
            raise UnsafeOutputError(
                f"{self.root} is not empty and was not built by symloss "
                f"(no {MARKER} file); use force=True (--force) to write into it anyway"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def mark(self, files: Iterable[str], fmt: str) -> None:
        data = {"generator": f"symloss {__version__}", "format": fmt, "files": sorted(files)}
        self.write(MARKER, json.dumps(data, indent=1) + "\n", record=False)

    def write(self, rel: str, data: str | bytes, record: bool = True) -> Path:
        path = self.root / rel
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if path.is_file() and not path.is_symlink() and path.read_bytes() == raw:
            return path
        atomic_write(path, raw)
        if record:
            self.written.append(path)
        return path

    def remove_stale(self, keep: set[str]) -> list[Path]:
        removed = []
        root = self.root.resolve()
        for rel in self.previous:
            if rel in keep or rel == MARKER:
                continue
            path = self.root / rel
            inside = root in path.resolve().parents
            if inside and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(path)
                for parent in path.parents:  # drop directories that only held it
                    if parent == self.root or root not in parent.resolve().parents:
                        break
                    if any(parent.iterdir()):
                        break
                    parent.rmdir()
        return removed


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write *data* to *path* through a temporary file in the same directory.

    Readers see the old file or the new one, never a partial one.  The new file gets
    *mode*, or the usual permissions (``0o666`` less the umask), not a temporary
    file's ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_output(path: str | os.PathLike, data: bytes) -> None:
    """Write *data* to a file the user named (``symloss export -o FILE``).

    The usual command-line convention: an existing file is overwritten.  More exactly:

    - a new or existing regular file is replaced atomically (readers see the old text
      or the new one), and an existing file keeps its permission bits;
    - a symbolic link is followed: its target is written, the link stays;
    - a regular file with other hard links is rewritten in place, so that every link
      sees the new text (an atomic replace would detach this name from the others);
    - a character device, FIFO or socket (``/dev/null``, ``/dev/stdout``, a pipe) is
      written in place and never replaced by a regular file;
    - a directory is refused.

    Errors name *path*, never a temporary file.
    """
    shown = os.fspath(path)
    target = Path(os.path.realpath(path))  # follows symbolic links, even dangling ones
    try:
        try:
            info = os.stat(target)
        except FileNotFoundError:
            info = None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if info is not None and (not stat.S_ISREG(info.st_mode) or info.st_nlink > 1):
            with open(target, "wb") as f:  # in place: truncates a regular file
                f.write(data)
            return
        atomic_write(target, data, mode=None if info is None else stat.S_IMODE(info.st_mode))
    except OSError as exc:  # name the user's path, not the temporary file or the link target
        raise type(exc)(exc.errno, exc.strerror or str(exc), shown) from None


class _Progress:
    """``[ 3/35] name`` on one rewritten line of a terminal's stderr; silent otherwise."""

    def __init__(self, spec: ProgressSpec, total: int):
        self.total = total
        self.callback = spec if callable(spec) else None
        if spec is None:
            self.tty = _isatty(sys.stderr)
        else:
            self.tty = bool(spec) and self.callback is None
        self.width = 0

    def __call__(self, done: int, name: str) -> None:
        if self.callback is not None:
            self.callback(done, self.total, name)
        elif self.tty:
            text = f"[{done:>{len(str(self.total))}}/{self.total}] {name}"
            sys.stderr.write("\r" + text.ljust(self.width))
            sys.stderr.flush()
            self.width = len(text)

    def close(self, message: str) -> None:
        if self.tty:
            sys.stderr.write("\r" + message.ljust(self.width) + "\n")
            sys.stderr.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
