"""Errors that are the user's to fix: shown as one line, never as a traceback."""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input. ``str()`` is the whole one-line message."""

    exit_code = 2


class CaptureError(UserError):
    """A capture file that cannot be opened or read at all."""

    def __init__(self, path: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
