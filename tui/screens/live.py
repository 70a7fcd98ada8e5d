"""Screens that redraw themselves when the language or the knowledge base changes."""
from __future__ import annotations

from textual.screen import Screen


class LiveScreen(Screen):
    """``show()`` runs on mount and again whenever ``app.lang`` or ``app.kb_version`` moves;
    subclasses implement ``show`` and may override ``focus_first``."""

    def on_mount(self) -> None:
        self.app.steady(self)
        self.watch(self.app, "lang", lambda _l: self.show(), init=False)
        self.watch(self.app, "kb_version", lambda _v: self.show(), init=False)
        self.show()
        self.focus_first()

    def show(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def focus_first(self) -> None:
        """Nothing by default."""
