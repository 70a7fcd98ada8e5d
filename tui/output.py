"""Where a command's document goes: a file given with --output, else standard output."""
from __future__ import annotations

import sys

from facts.errors import UserError


def write_output(text: str | bytes, path: str | None, what: str = "report") -> None:
    """``bytes`` are UTF-8 already (a JSON document) and go out as they are."""
    if path:
        try:
            if isinstance(text, bytes):
                with open(path, "wb") as fb:
                    fb.write(text)
            else:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
        except OSError as exc:
            raise UserError(f"{path}: cannot write {what} ({exc.strerror})") from None
    elif isinstance(text, bytes):
        sys.stdout.flush()
        out = getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stream (a test's StringIO)
            sys.stdout.write(text.decode("utf-8"))
        else:
            out.write(text)
            out.flush()
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
