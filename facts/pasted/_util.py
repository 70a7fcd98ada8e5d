"""Small helpers shared by the pasted-output parsers."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from facts.errors import UserError


class PastedModel(BaseModel):
    """Base for every parsed paste: typos in field names are bugs, so forbid extras."""

    model_config = ConfigDict(extra="forbid")


def lines_of(text: str) -> list[str]:
    """Split a paste into lines; tolerate CRLF, a BOM and full-width spaces from zh consoles."""
    if not isinstance(text, str):
        raise UserError(f"pasted text must be a string, got {type(text).__name__}")
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return [line.replace("\u3000", " ").rstrip() for line in text.split("\n")]


def fail(parser: str, expected: str) -> UserError:
    """One-line error naming the parser and what the paste should have looked like."""
    return UserError(f"pasted {parser}: not recognised as {expected}")
