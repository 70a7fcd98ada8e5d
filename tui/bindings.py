"""The key map: every binding has an id, a key, an action (by id, see ``tui.actions``) and a
scope (the screen or widget that owns it). Widgets build their ``BINDINGS`` from here and the
help screen is generated from the live bindings, looked up here by id for their description.
"""
from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

from .actions import ACTIONS


@dataclass(frozen=True)
class KeySpec:
    id: str
    key: str
    action_id: str
    scope: str
    show: bool = True
    priority: bool = False

    def description(self, lang: str = "en") -> str:
        return ACTIONS[self.action_id].title(lang)


KEYS: list[KeySpec] = [
    KeySpec("app.resets", "f2", "show_resets", "app"),
    KeySpec("app.interview", "f3", "show_interview", "app"),
    KeySpec("app.kb", "f4", "show_kb", "app"),
    KeySpec("app.reload_kb", "ctrl+r", "reload_kb", "app"),
    KeySpec("app.lang", "ctrl+l", "toggle_lang", "app"),
    KeySpec("app.help", "f1", "help", "app"),
    KeySpec("app.quit", "ctrl+q", "quit", "app", show=False, priority=True),
    KeySpec("app.back", "escape", "back", "app", show=False),
    KeySpec("resets.detail", "d", "open_detail", "resets"),
    KeySpec("resets.reasoning", "r", "open_reasoning", "resets"),
    KeySpec("resets.filter", "slash", "filter", "resets"),
    KeySpec("resets.clear_filter", "x", "clear_filter", "resets"),
    KeySpec("resets.sort_next", "s", "sort_next", "resets"),
    KeySpec("resets.sort_reverse", "S", "sort_reverse", "resets", show=False),
    KeySpec("table.up", "up", "cursor_up", "table", show=False),
    KeySpec("table.down", "down", "cursor_down", "table", show=False),
    KeySpec("table.page_up", "pageup", "page_up", "table", show=False),
    KeySpec("table.page_down", "pagedown", "page_down", "table", show=False),
    KeySpec("table.first", "home", "first_row", "table", show=False),
    KeySpec("table.last", "end", "last_row", "table", show=False),
    KeySpec("table.select", "enter", "select_row", "table"),
    KeySpec("detail.copy_fix", "c", "copy_fix", "detail"),
    KeySpec("detail.copy_filter", "w", "copy_filter", "detail"),
    KeySpec("detail.reasoning", "r", "open_reasoning", "detail"),
    KeySpec("reasoning.why_not", "n", "focus_why_not", "reasoning"),
    KeySpec("reasoning.what_if", "i", "focus_what_if", "reasoning"),
    KeySpec("interview.why", "f5", "why", "interview"),
    KeySpec("interview.how", "f6", "how", "interview"),
    KeySpec("interview.back", "f7", "back_question", "interview"),
    KeySpec("interview.restart", "f8", "restart", "interview"),
    KeySpec("interview.submit_paste", "ctrl+s", "submit_paste", "interview"),
    KeySpec("help.close", "escape", "close", "help"),
    KeySpec("help.close_f1", "f1", "close", "help", show=False),
    KeySpec("help.close_q", "q", "close", "help", show=False),
    KeySpec("kb.reload", "ctrl+r", "reload_kb", "kb"),
    KeySpec("kb.watch", "ctrl+t", "toggle_watch", "kb"),
]

BY_ID: dict[str, KeySpec] = {spec.id: spec for spec in KEYS}
if len(BY_ID) != len(KEYS):  # an id names one binding; a duplicate would hide another
    raise RuntimeError("duplicate binding id in tui.bindings.KEYS")


def bindings(scope: str) -> list[Binding]:
    """Textual bindings for one scope, each carrying its registry id."""
    out = []
    for spec in KEYS:
        if spec.scope != scope:
            continue
        action = ACTIONS[spec.action_id].action
        if scope != "app" and action.startswith("app."):
            pass  # an app action bound from a screen keeps its namespace
        elif scope == "app" and action.startswith("app."):
            action = action[4:]
        out.append(Binding(spec.key, action, spec.description("en"), show=spec.show,
                           priority=spec.priority, id=spec.id))
    return out


def describe(binding: Binding, lang: str) -> str:
    """A live binding's description in ``lang`` (the registry's when it has an id)."""
    spec = BY_ID.get(binding.id or "")
    return spec.description(lang) if spec else (binding.description or binding.action)


def localize(node, lang: str) -> None:
    """Give ``node``'s registry bindings their description in ``lang`` (the footer shows
    the live bindings' descriptions). Textual keeps one BindingsMap per node instance."""
    import dataclasses
    mapping = getattr(node, "_bindings", None)
    if mapping is None:
        return
    for key, items in mapping.key_to_bindings.items():
        mapping.key_to_bindings[key] = [
            dataclasses.replace(b, description=BY_ID[b.id].description(lang)) if b.id in BY_ID
            else b for b in items]
