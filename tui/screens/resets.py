"""Resets and findings: every reset in a virtual table, sortable and filterable."""
from __future__ import annotations

import datetime as _dt
from typing import Callable, Optional

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from engine.report_model import Report, ResetOut

from ..bindings import bindings
from ..widgets.virtual_table import Column, VirtualTable
from .i18n import kb_text, t

# column index of the fields the filter reads
ORIGIN, PATTERN, SUBTYPE = 4, 6, 7
FILTER_DELAY_S = 0.15
FILTER_KEYS = {"origin": (ORIGIN,), "o": (ORIGIN,), "pattern": (PATTERN,), "p": (PATTERN,),
               "sub": (SUBTYPE,), "subtype": (SUBTYPE,), "s": (SUBTYPE,)}


def _f(v) -> str:
    return "" if v is None else f"{v:.2f}"


def _clock(value) -> str:
    if value is None:
        return ""
    return _dt.datetime.fromtimestamp(value, _dt.timezone.utc).strftime("%H:%M:%S.%f")[:12]


def columns(lang: str) -> list[Column]:
    # 117 cells with the separators: the table fits 120 columns with its scrollbar
    return [Column("id", t(lang, "reset"), 7),
            Column("time", t(lang, "time"), 12, _clock),
            Column("conn", t(lang, "conn"), 27),
            Column("claimed", t(lang, "claimed"), 7),
            Column("origin", t(lang, "origin"), 13),
            Column("conf", t(lang, "conf"), 4, _f, True),
            Column("pattern", t(lang, "pattern"), 13),
            Column("subtype", t(lang, "subtype"), 19),
            Column("ttl", t(lang, "ttl"), 3, align_right=True),
            Column("hop", t(lang, "hop"), 3, align_right=True)]


def row_of(r: ResetOut) -> tuple:
    c = r.connection
    top = r.diagnoses[0].id if r.diagnoses else None
    return (r.id, r.time, f"{c.client.ip} → {c.server.ip}:{c.server.port}",
            r.claimed_sender, r.origin, r.origin_confidence, r.pattern, top,
            r.rst_source.ttl, r.rst_source.tracert_hop)


def parse_filter(text: str) -> Optional[Callable[[tuple], bool]]:
    """``origin:middle pattern:idle sub:firewall word``: every term must match (substring,
    case-insensitive); a bare word matches origin, pattern or sub-type."""
    terms = []
    for word in text.lower().split():
        key, sep, value = word.partition(":")
        if sep and key in FILTER_KEYS and value:
            terms.append((FILTER_KEYS[key], value))
        else:
            terms.append(((ORIGIN, PATTERN, SUBTYPE), word))
    if not terms:
        return None

    def predicate(row: tuple) -> bool:
        # the filtered columns hold lower-case ids (or None): no conversion per row
        for cols, value in terms:
            for c in cols:
                cell = row[c]
                if cell is not None and value in cell:
                    break
            else:
                return False
        return True
    return predicate


def findings_text(report: Optional[Report], lang: str, kb=None) -> str:
    if report is None:
        return t(lang, "no_capture")
    if not report.resets:
        return t(lang, "no_resets")
    lines = []
    for f in report.findings[:4]:
        top = ""
        if f.top_diagnosis:
            concl = kb.conclusions.get(f.top_diagnosis.id) if kb is not None else None
            top = f" — {kb_text(concl.title, lang) if concl else f.top_diagnosis.title}"
        origin = t(lang, f.origin)
        lines.append(f"{f.id} ×{f.count}  {origin} ({f.origin_confidence:.2f})  "
                     f"{f.pattern or ''}  :{f.server_port} {f.application}{top}")
    if len(report.findings) > 4:
        lines.append(f"… {len(report.findings) - 4} {t(lang, 'more')}")
    return "\n".join(lines)


class ResetsScreen(Screen):
    BINDINGS = bindings("resets")
    _filter_timer = None
    _filter_words: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="resets-body"):
            yield Static(id="findings")
            yield Input(id="filter")
            yield VirtualTable(columns(self.app.lang), id="resets")
            yield Static(id="resets-status")
        yield Footer()

    def on_mount(self) -> None:
        self.app.steady(self)
        self.watch(self.app, "lang", self._lang_changed, init=False)
        self.watch(self.app, "kb_version", lambda _v: self.load(), init=False)
        self.load()
        self.query_one(VirtualTable).focus()

    @property
    def table(self) -> VirtualTable:
        return self.query_one(VirtualTable)

    def load(self) -> None:
        report = self.app.session.report
        resets = report.resets if report else []
        self.table.set_rows([r.id for r in resets], [row_of(r) for r in resets])
        if self.app.selected:
            self.table.move_to_key(self.app.selected)
        self._lang_changed(self.app.lang)

    def _lang_changed(self, lang: str) -> None:
        self.sub_title = t(lang, "reset_list")
        self.query_one("#filter", Input).placeholder = t(lang, "filter_placeholder")
        self.table.columns = columns(lang)
        self.table.refresh()
        self.query_one("#findings", Static).update(findings_text(self.app.session.report, lang,
                                                                   self.app.session.kb))
        self._status()

    def _status(self) -> None:
        table = self.table
        self.query_one("#resets-status", Static).update(
            t(self.app.lang, "shown", shown=len(table.view), total=len(table.rows)))

    def on_input_changed(self, event: Input.Changed) -> None:
        # filter once typing pauses, not per keystroke (100k rows take ~0.1 s a pass)
        if event.input.id == "filter":
            if self._filter_timer is not None:
                self._filter_timer.stop()
            self._filter_timer = self.set_timer(FILTER_DELAY_S, self._apply_filter)

    def _apply_filter(self) -> None:
        self._filter_timer = None
        text = self.query_one("#filter", Input).value
        if text.split() != self._filter_words:
            self._filter_words = text.split()
            self.table.set_filter(parse_filter(text))
        self._status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if self._filter_timer is not None:
                self._filter_timer.stop()
                self._apply_filter()
            self.table.focus()

    def on_virtual_table_row_highlighted(self, event: VirtualTable.RowHighlighted) -> None:
        if event.key is not None:
            self.app.selected = event.key

    def on_virtual_table_row_selected(self, event: VirtualTable.RowSelected) -> None:
        self.app.selected = event.key
        self.app.action_open_detail()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        self.query_one("#filter", Input).value = ""
        self._filter_words = []
        self.table.set_filter(None)
        self._status()

    def action_sort_next(self) -> None:
        table = self.table
        column = 0 if table.sort_column is None else (table.sort_column + 1) % len(table.columns)
        table.sort_by(column, False)

    def action_sort_reverse(self) -> None:
        table = self.table
        table.sort_by(table.sort_column if table.sort_column is not None else 0,
                      not table.sort_reverse)
