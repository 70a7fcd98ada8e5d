"""Where a command's document goes: a file given with --output, else standard output."""
from __future__ import annotations

import sys

from facts.errors import UserError


def write_output(text: str, path: str | None, what: str = "report") -> None:
    if path:
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UserError(f"{path}: cannot write {what} ({exc.strerror})") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
