"""Forked workers: a one-shot command hands part of its work to child processes.

The GIL keeps one Python process on one CPU; a big report's reset entries (about a hundred
microseconds of Python each) are built by several processes instead. A child is a ``fork``
of the caller, so it starts with everything read so far, and sends back bytes through an
in-memory file (Linux) or a pipe. Used only where it pays: no ``fork`` (Windows), other threads alive (a fork
copies only the calling thread, and a lock another thread held would stay locked), or one
usable CPU means no workers.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Callable, Optional, Union

if TYPE_CHECKING:
    import mmap


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def _widen(pipe: int) -> None:
    """A 1 MiB pipe instead of 64 KiB: a worker's 10 MB arrive in fewer switches between
    the two processes (Linux only; elsewhere, or over the user's limit, it stays as is)."""
    try:
        import fcntl
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (ImportError, AttributeError, OSError):
        pass


def write_all(fd: int, chunks: list) -> None:
    """Every chunk (bytes-like) to ``fd`` in order, by ``os.writev``: a big document goes
    out in a few system calls without being joined into one more copy first."""
    pending = [memoryview(c).cast("B") for c in chunks if len(c)]
    while pending:
        batch = pending[:1024]  # IOV_MAX on Linux
        try:
            written = os.writev(fd, batch)
        except BlockingIOError:  # a non-blocking descriptor that is full: wait, go on
            import select
            select.select([], [fd], [])
            continue
        done = 0
        for chunk in batch:
            if written < len(chunk):
                pending[done] = chunk[written:]
                break
            written -= len(chunk)
            done += 1
        del pending[:done]


def _shared_file() -> Optional[int]:
    """An anonymous in-memory file (Linux memfd), or None where there is none."""
    try:
        return os.memfd_create("rstsleuth-worker", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None


class Forked:
    """``make()`` run in a forked child; :meth:`result` gives the bytes it returned (or
    the concatenation of the chunks it returned, a list of bytes-like objects), or None
    when the child failed (it raised, was killed, or sent nothing). The child never returns
    into the caller's code: whatever happens it ends with ``os._exit``, without the caller's
    exit handlers or buffered output. Closing (or leaving the ``with`` block) before
    :meth:`result` kills the child.

    On Linux the child writes into an anonymous in-memory file that the caller maps once
    the child has exited: the child never waits for the caller to read (a pipe holds 1 MiB
    of a worker's 11 MB) and the caller copies nothing (reading the pipe took 0.02 s of a
    0.8 s analysis). Elsewhere the bytes come through a pipe."""

    def __init__(self, make: Callable[[], Union[bytes, list]]):
        shared = _shared_file()
        if shared is None:
            read_end, write_end = os.pipe()
            _widen(write_end)
        else:
            read_end = write_end = shared
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            if write_end != read_end:
                os.close(write_end)
            raise
        if pid == 0:  # the child
            code = 70  # EX_SOFTWARE, unless make() and the write succeed
            try:
                if write_end != read_end:
                    os.close(read_end)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # the parent reports Ctrl-C
                data = make()
                write_all(write_end, [data] if isinstance(data, bytes) else data)
                os.close(write_end)
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported by the parent's fallback
                if os.environ.get("RSTSLEUTH_DEBUG"):
                    import traceback
                    traceback.print_exception(exc, file=sys.stderr)
                    sys.stderr.flush()
            finally:
                os._exit(code)
        self.pid: Optional[int] = pid
        self._shared = shared is not None
        if self._shared:
            self._fd: Optional[int] = shared
        else:
            os.close(write_end)
            self._pipe = os.fdopen(read_end, "rb", buffering=0)

    def result(self) -> Union[bytes, "mmap.mmap", None]:
        """Waits for the child; what it wrote (bytes, or a read-only map of the in-memory
        file: bytes-like, sliceable, with ``find``), or None when it failed."""
        if self.pid is None:
            return None
        if not self._shared:
            with self._pipe:
                data = self._pipe.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            return None  # a failed child's file is not mapped (close() releases it)
        return self._mapped() if self._shared else data

    def _mapped(self):
        import mmap
        fd, self._fd = self._fd, None
        try:
            size = os.fstat(fd).st_size
            return mmap.mmap(fd, size, prot=mmap.PROT_READ) if size else b""
        finally:  # the map keeps the file
            os.close(fd)

    def close(self) -> None:
        if self._shared:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        else:
            self._pipe.close()
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self.pid = None

    def __enter__(self) -> "Forked":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
