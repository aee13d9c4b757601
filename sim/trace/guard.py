"""Opening a trace without crashing or hanging on a bad file.

- :func:`check_path`: a missing path or a directory is named as such before HDF5 sees it.
- :func:`open_h5`: HDF5's open errors become one line (a file locked by a writer is said to
  be locked, not corrupt).
- :func:`bounded`: the first read of a file's metadata runs in a forked child process with a
  timeout. Corrupt HDF5 metadata can make the library loop (a global-heap object whose size
  field was damaged does) or crash, and a thread cannot stop C code that holds the GIL; a
  child can be killed. The child sends back the validated structure (pickled), or the error
  and the field it was reading, so the parent never reads the metadata twice. Nothing is cached
  between opens (file times are as coarse as the kernel's clock tick: an edit right after an
  open could not be told apart). Cost: docs/trace-format.md, "Speed".
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import gc
import math
import mmap
import os
import pickle
import select
import signal
import threading
import time
from pathlib import Path

from sim.errors import TraceFormatError
from sim.trace.limits import OPEN_TIMEOUT_ENV, open_timeout

_WHERE_BYTES = 512


def short(exc: BaseException) -> str:
    """First line of an exception's message (HDF5's can run over many), at most 200 chars."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def check_path(path: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise TraceFormatError(path, None, "is a directory, expected an HDF5 trace file")
    if not p.exists():
        raise TraceFormatError(path, None, "file does not exist")


def _lock_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)
            and "lock" in text) or "unable to lock file" in text


def open_error(path: str, exc: BaseException) -> TraceFormatError:
    """The one-line error for an exception raised while HDF5 opened ``path``."""
    text = str(exc).lower()
    if _lock_error(exc):
        return TraceFormatError(path, None, "is locked by another process (a writer holds it open: being written?); "
                                "try again when the writer has finished")
    if "already open for write" in text:
        return TraceFormatError(path, None, "is marked as open for writing (being written, or its writer died; "
                                "h5clear -s clears the mark of a finished file)")
    if isinstance(exc, PermissionError):
        return TraceFormatError(path, None, "permission denied")
    if isinstance(exc, IsADirectoryError):
        return TraceFormatError(path, None, "is a directory, expected an HDF5 trace file")
    return TraceFormatError(path, None, f"not a readable HDF5 file (truncated or corrupt?): {short(exc)}")


def open_h5(path: str, chunk_cache: int | None = None):
    """``h5py.File(path, "r")``, or TraceFormatError with one line saying why not.
    ``chunk_cache``: bytes of HDF5's chunk cache per dataset (None: HDF5's default, 1 MiB)."""
    import h5py

    check_path(path)
    try:
        return h5py.File(path, "r", **({} if chunk_cache is None else {"rdcc_nbytes": int(chunk_cache)}))
    except Exception as exc:  # h5py raises OSError, RuntimeError, ValueError, ... on bad files
        raise open_error(path, exc) from None


def bounded(path: str, read, timeout: float | None = None):
    """``read(path, where)`` (where(text) records the field being read), run in a forked child
    killed after ``timeout`` seconds (default :func:`~sim.trace.limits.open_timeout`); returns
    its result, which must pickle. Its TraceFormatError is raised here as it was raised there;
    a timeout or a crash of the child becomes a TraceFormatError naming the field it was
    reading. Without fork (or with a timeout of 0) ``read`` runs in this process."""
    check_path(path)
    timeout = open_timeout() if timeout is None else timeout
    if timeout <= 0 or not hasattr(os, "fork"):
        return read(path, lambda text: None)
    return _in_child(path, read, timeout)


def _in_child(path: str, read, timeout: float):
    from h5py._objects import phil  # h5py's global lock: no other thread is inside HDF5 at the fork

    where = mmap.mmap(-1, _WHERE_BYTES)

    def note(text: str) -> None:
        data = text.encode("utf-8", "replace")[:_WHERE_BYTES - 1]
        where[:len(data) + 1] = data + b"\0"

    r, w = os.pipe()
    with phil:
        pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            gc.disable()  # a collection would touch (and so copy) every page the parent holds
            faulthandler.disable()  # a crash here is reported by the parent, in one line
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            # the kernel ends this process after the timeout even if its parent is gone (killed
            # itself, say): a loop inside HDF5 never returns to Python, but SIGALRM's default
            # action needs no Python
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(math.ceil(timeout) + 1)
            os.close(r)
            try:
                payload = pickle.dumps(("ok", read(path, note)))
            except TraceFormatError as exc:
                payload = pickle.dumps(("error", (exc.file, exc.field, exc.message)))
            except BaseException as exc:  # noqa: BLE001 - everything must reach the parent as one line
                payload = pickle.dumps(("error", (path, _where(where),
                                                  f"cannot read the HDF5 metadata (corrupt file?): "
                                                  f"{type(exc).__name__}: {short(exc)}")))
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
            os.close(w)  # the parent has it all now, before this process is torn down
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline, timed_out = [], time.monotonic() + timeout, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if select.select([r], [], [], left)[0]:
                data = os.read(r, 1 << 20)
                if not data:  # the child closed its end: it has exited or is exiting
                    break
                chunks.append(data)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        elif chunks:
            try:
                kind, value = pickle.loads(b"".join(chunks))
            except Exception:  # noqa: BLE001 - a partial message: the child died writing it
                pass
            else:
                _reap(pid)  # tearing a child down takes milliseconds; nobody needs to wait for it
                pid = None
                if kind == "error":
                    raise TraceFormatError(*value)
                return value
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): its status is lost
            status = 0
        pid = None
    finally:
        os.close(r)
        if pid is not None:  # interrupted: leave no child behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    if timed_out:
        raise TraceFormatError(path, _where(where), f"the HDF5 library did not finish reading this within {timeout:g} s "
                               f"(corrupt metadata can make the HDF5 library loop; {OPEN_TIMEOUT_ENV}=SECONDS "
                               "changes the limit)")
    how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
    raise TraceFormatError(path, _where(where), f"the HDF5 library failed while reading the metadata ({how}; "
                           "corrupt file?)")


def _reap(pid: int) -> None:
    """Collect an exiting child without waiting for it (a daemon thread waits)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return
    if not done:
        threading.Thread(target=_wait_quietly, args=(pid,), daemon=True, name="trace-open-reaper").start()


def _wait_quietly(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _where(where: mmap.mmap) -> str | None:
    text = bytes(where[:]).split(b"\0", 1)[0].decode("utf-8", "replace")
    return text or None
