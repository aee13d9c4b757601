"""Writing results: every output of a command checked before any computation, written to
temporaries, and renamed onto the destinations together at the end — all or nothing.

Rules (docs/outputs.md, "Output files"):

- a destination's parent directory must exist and be writable; parent directories are never
  created implicitly (a mistyped path fails at once instead of scattering results);
- a destination must not be a directory (except the options that name a directory: then the
  directory itself is created if its parent exists);
- a plot's file name ends in ``.png``; ``-`` means stdout where an option allows it;
- temporaries are hidden files next to their destination (``.NAME.<random>.tmp``), removed when
  the command fails; the renames happen only after every output was written;
- a destination that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a FIFO)
  is written into, never replaced: renaming onto it would destroy a device.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

from sim.errors import ParameterError

STDOUT = "-"


def _os_errors_as_parameter_errors(check):
    """Any OSError while checking a path (a name too long, a loop of links, ...) becomes a
    one-line ParameterError naming the option and the path."""
    def checked(option: str, value: str, *args, **kwargs):
        try:
            return check(option, value, *args, **kwargs)
        except OSError as exc:
            raise ParameterError(value, option, f"unusable path ({exc.strerror or exc})") from None
    checked.__doc__, checked.__name__ = check.__doc__, check.__name__
    return checked


@_os_errors_as_parameter_errors
def check_destination(option: str, value: str, suffix: str | None = None) -> Path:
    """``value`` as a writable file destination for ``option``: ParameterError (one line
    naming the option and the path) unless its parent is an existing, writable directory,
    it is not itself a directory, and it ends in ``suffix`` (when given)."""
    if not value or "\0" in value:
        raise ParameterError(value, option, "expected a file name")
    path = Path(value)
    if suffix and path.suffix.lower() != suffix:
        raise ParameterError(value, option, f"expected a {suffix} file name")
    if path.is_dir():
        raise ParameterError(value, option, "is a directory, expected a file name")
    _check_parent(option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise ParameterError(value, option, "exists and is not writable")
    return path


@_os_errors_as_parameter_errors
def check_directory(option: str, value: str) -> Path:
    """``value`` as an output directory: an existing writable directory, or a new one whose
    parent exists and is writable (it is created when the outputs are committed)."""
    if not value or "\0" in value:
        raise ParameterError(value, option, "expected a directory name")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ParameterError(value, option, "exists and is not a directory")
    if path.is_dir():
        _probe(option, path, value)
        return path
    _check_parent(option, path)
    return path


def _check_parent(option: str, path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        os.lstat(path)  # ENAMETOOLONG, ELOOP, ... surface here, before any computation
    except FileNotFoundError:
        pass  # the usual case: a new file
    if not parent.exists():
        raise ParameterError(str(path), option, f"directory {str(parent)!r} does not exist "
                             "(output directories are not created implicitly)")
    if not parent.is_dir():
        raise ParameterError(str(path), option, f"{str(parent)!r} is not a directory")
    _probe(option, parent, str(path))


def _probe(option: str, directory: Path, shown: str) -> None:
    """Create and remove a temporary file in ``directory``: permission bits do not tell
    (root may write anywhere by them, yet not into /proc or a read-only mount)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ParameterError(shown, option, f"directory {str(directory)!r} is not writable "
                             f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)


def is_special(path: str | os.PathLike) -> bool:
    """True when ``path`` exists and is not a regular file or directory (a device, a FIFO, a
    socket): it is written into, not replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _copy_into(tmp: Path, dest: Path) -> None:
    """Write the temporary's bytes into the special file ``dest``; ParameterError if it
    refuses them (``/dev/full``)."""
    try:
        with open(dest, "wb") as fh:
            fh.write(tmp.read_bytes())
    except OSError as exc:
        raise ParameterError(str(dest), "output", f"cannot write ({exc.strerror or exc})") from None


class Outputs:
    """The output files of one command, all or nothing.

    Check every destination first (:meth:`file`, :meth:`directory`), compute, then write each
    output to its temporary (:meth:`temp`, :meth:`text`, :meth:`json`, :meth:`csv`) and
    :meth:`commit`. Used as a context manager, it commits when the block succeeds and removes
    every temporary when it raises."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, destination)
        self._dirs: list[Path] = []
        self._stdout: list[str] = []

    # -- checks, before any computation ------------------------------------------------
    def file(self, option: str, value: str | None, suffix: str | None = None,
             stdout: bool = False) -> Path | str | None:
        """A checked file destination (None when the option is not given; ``"-"`` when
        ``stdout`` is allowed and asked for)."""
        if value is None:
            return None
        if value == STDOUT and stdout:
            return STDOUT
        return check_destination(option, value, suffix)

    def directory(self, option: str, value: str | None) -> Path | None:
        """A checked output directory (created at commit if missing)."""
        if value is None:
            return None
        path = check_directory(option, value)
        if not path.exists():
            self._dirs.append(path)
        return path

    # -- writing, after the computation -------------------------------------------------
    def temp(self, dest: str | os.PathLike) -> Path:
        """A temporary path that becomes ``dest`` at commit (its directory may be one this
        command creates)."""
        dest = Path(dest)
        parent = dest.parent
        if parent in self._dirs and not parent.exists():
            parent.mkdir()
        if is_special(dest):  # e.g. /dev/null: its directory is not ours to litter
            parent = None
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:80]}.", suffix=".tmp", dir=parent)
        os.close(fd)
        self._pending.append((Path(tmp), dest))
        return Path(tmp)

    def text(self, dest: str | os.PathLike, text: str) -> None:
        if str(dest) == STDOUT:
            self._stdout.append(text)
            return
        self.temp(dest).write_text(text)

    def json(self, dest: str | os.PathLike, obj: Any) -> None:
        self.text(dest, to_json_text(obj))

    def csv(self, dest: str | os.PathLike, rows: Iterable[dict], fieldnames: list[str] | None = None) -> None:
        self.text(dest, to_csv_text(rows, fieldnames))

    def commit(self) -> None:
        """Move every temporary onto its destination, then write what goes to stdout."""
        for d in self._dirs:
            d.mkdir(exist_ok=True)
        special = [(tmp, dest) for tmp, dest in self._pending if is_special(dest)]
        for tmp, dest in special:  # first: a device that refuses the bytes stops everything
            _copy_into(tmp, dest)
            os.unlink(tmp)
        for tmp, dest in self._pending:
            if (tmp, dest) in special:
                continue
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are normal shared files
            os.replace(tmp, dest)
        self._pending.clear()
        for text in self._stdout:
            sys.stdout.write(text)
        sys.stdout.flush()
        self._stdout.clear()

    def discard(self) -> None:
        """Remove every temporary (and directories this command created, if left empty)."""
        for tmp, _ in self._pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._pending.clear()
        for d in reversed(self._dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        self._stdout.clear()

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
        else:
            self.discard()


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = ""):
    """Yield a temporary path next to ``dest``; move it onto ``dest`` only on success.
    The parent directory must exist (it is not created)."""
    dest = Path(dest)
    special = is_special(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name[:80]}.", suffix=suffix or ".tmp",
                               dir=None if special else dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if special:
            _copy_into(Path(tmp), dest)
            os.unlink(tmp)
            return
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def to_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def to_csv_text(rows: Iterable[dict], fieldnames: list[str] | None = None) -> str:
    rows = list(rows)
    if fieldnames is None:
        fieldnames = []
        for row in rows:
            for key in row:
                if key not in fieldnames:
                    fieldnames.append(key)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def write_text(text: str, dest: str) -> None:
    """Write ``text`` to ``dest`` ('-' is stdout), atomically for files."""
    if dest == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def write_json(obj: Any, dest: str) -> None:
    write_text(to_json_text(obj), dest)


def write_csv(rows: Iterable[dict], dest: str, fieldnames: list[str] | None = None) -> None:
    write_text(to_csv_text(rows, fieldnames), dest)
