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
        # Only the reader and the compiled walk are imported before the thread starts, not
        # pydantic and the models (0.1 s): the walk runs without the GIL while the caller
        # imports them with the engine, and the thread builds the facts with the models the
        # caller has imported by then (on the 1M benchmark the facts were ready after
        # 0.45-0.68 s instead of 0.65-0.78 s with the models imported first).
        from . import ctrack  # noqa: F401
        from .capture import open_capture  # noqa: F401
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
