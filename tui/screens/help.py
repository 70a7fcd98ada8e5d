"""Keys: generated from the bindings live when help was asked for (not a static text).

The registry's bindings (they have an id) come first, described in the app's language; the
widgets' own visible bindings follow with Textual's descriptions."""
from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..bindings import BY_ID, bindings, describe
from .i18n import t


def help_rows(live: list[tuple[str, Binding, object]], lang: str) -> list[tuple[str, str, str]]:
    ours, theirs, seen = [], [], set()
    for key, binding, node in live:
        ident = binding.id or f"{type(node).__name__}.{binding.action}"
        if ident in seen:
            continue
        seen.add(ident)
        display = binding.key_display or key
        if binding.id in BY_ID:
            ours.append((display, describe(binding, lang), ident))
        elif binding.show and binding.description:
            theirs.append((display, describe(binding, lang), ident))
    return ours + theirs


def help_table(live: list[tuple[str, Binding, object]], lang: str) -> Table:
    table = Table(title=t(lang, "help_title"), expand=True, box=None, title_style="bold")
    table.add_column(t(lang, "key"), style="cyan", no_wrap=True)
    table.add_column(t(lang, "action"))
    table.add_column(t(lang, "binding"), style="dim", no_wrap=True)
    for key, description, ident in help_rows(live, lang):
        table.add_row(key, description, ident)
    return table


class HelpScreen(ModalScreen):
    BINDINGS = bindings("help")

    def __init__(self, live: list[tuple[str, Binding, object]]):
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_table(self.live, self.app.lang), id="help-text")

    def on_mount(self) -> None:
        self.app.localize_screen(self)

    def action_close(self) -> None:
        self.dismiss()
