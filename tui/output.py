"""Where a command's document goes: a file given with --output, else standard output."""
from __future__ import annotations

import io
import sys

from facts.errors import UserError


def write_output(text: str | bytes | list, path: str | None, what: str = "report") -> None:
    """``bytes`` are UTF-8 already (a JSON document) and go out as they are; so does a list
    of bytes-like chunks (a big JSON report, written without joining it first)."""
    if path:
        try:
            if isinstance(text, list):
                with open(path, "wb", buffering=0) as raw:
                    _write_chunks(raw.fileno(), text)
            elif isinstance(text, bytes):
                with open(path, "wb") as fb:
                    fb.write(text)
            else:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
        except OSError as exc:
            raise UserError(f"{path}: cannot write {what} ({exc.strerror})") from None
    elif isinstance(text, (bytes, list)):
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stream (a test's StringIO)
            sys.stdout.write(_joined(text).decode("utf-8"))
            return
        out.flush()
        try:
            fd = out.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        if fd is None or not isinstance(text, list):
            out.write(_joined(text))
            out.flush()
        else:
            _write_chunks(fd, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _joined(text: bytes | list) -> bytes:
    return text if isinstance(text, bytes) else b"".join(text)


def _write_chunks(fd: int, chunks: list) -> None:
    from engine.workers import write_all
    write_all(fd, chunks)
