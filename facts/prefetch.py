"""Read captures on a background thread while the caller does something else.

``rstsleuth analyze`` must import the engine and load the knowledge base (about half a second)
before it can reason; the compiled pcap reader releases the GIL while it walks the file, so on
a machine with two CPUs the two overlap instead of adding up. Errors (a CaptureError for an unreadable file) are raised by
:meth:`Prefetch.result`, in the caller's thread, exactly as ``extract`` would have raised them.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

Progress = Callable[[int, int], None]


class Prefetch:
    """``extract`` of each path, in order, on one daemon thread (a daemon, so a caller that
    fails first, e.g. on a broken knowledge base, exits without waiting for the read)."""

    def __init__(self, paths: list[str], progress: Optional[Progress] = None):
        # The reader's Python side (pydantic, the models) is imported here, before the thread
        # starts: imported by the thread, it competed for the GIL with the caller's own
        # imports and made both slower (2.1-2.4 s against 2.6-3.0 s for the 1M benchmark).
        from . import extract  # noqa: F401
        self._paths = list(paths)
        self._progress = progress
        self._done: list[Any] = []
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="rstsleuth-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from . import ctrack
            from .capture import open_capture
            for path in self._paths:
                capture = open_capture(path)
                read = ctrack.read_pcap(capture, self._progress) if ctrack.usable(capture) else None
                from .extract import extract  # pydantic and the models: the GIL is needed now
                self._done.append(extract(capture, progress=self._progress, read=read))
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self) -> list:
        """The extractions (facts.extract.Extraction), one per path; re-raises the reader's
        error."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._done
