"""One reset: summary, ladder diagram, evidence, and fixes whose commands can be copied."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Label, ListItem, ListView, Static

from engine import fixparams
from engine.report_build import diagnoses_for, evidence_items, fixes_for
from engine.report_model import Diagnosis, EvidenceItem, FixOut, ResetOut

from ..actions import action
from ..bindings import bindings
from ..render.common import baseline_line, dual_line, idle_line, source_line
from ..widgets.ladder import Ladder
from .i18n import t
from .live import LiveScreen


def localized(session, reset: ResetOut, lang: str
              ) -> tuple[list[Diagnosis], list[FixOut], list[EvidenceItem]]:
    """Diagnoses, fixes and evidence in ``lang``, reasoned again from the reset's evidence
    (the report holds them in the language it was made in)."""
    ev = session.evidence.get(reset.id)
    if ev is None or lang == getattr(session.report, "lang", lang):
        return reset.diagnoses, reset.fixes, reset.evidence
    kb = session.kb
    inf = session.reasoner.infer(ev)
    diagnoses = diagnoses_for(kb, inf, reset.origin, lang)
    fixes = fixes_for(kb, inf, reset.origin, diagnoses, reset.connection.server.port,
                      fixparams.compute(ev, kb), lang)
    return diagnoses, fixes, evidence_items(inf, reset.origin, diagnoses, lang)


def summary_text(reset: ResetOut, diagnoses: list[Diagnosis], lang: str) -> Text:
    c = reset.connection
    out = Text()
    style = {"middle_device": "bold red", "endpoint": "bold green"}.get(reset.origin, "bold yellow")
    out.append(f"{t(lang, 'reset')} {reset.id}  frame {reset.frame}  {reset.time_iso}\n")
    out.append(f"{t(lang, 'connection')}: {c.client.ip}:{c.client.port} → {c.server.ip}:"
               f"{c.server.port} ({c.application}), {reset.flags} "
               f"{t(lang, 'claimed')} {t(lang, reset.claimed_sender)}\n")
    out.append(f"{t(lang, 'origin')}: ")
    out.append(f"{t(lang, reset.origin)} ({reset.origin_confidence:.2f})", style=style)
    out.append(f"   {t(lang, 'pattern')}: {reset.pattern or t(lang, 'none')}\n")
    out.append(f"{t(lang, 'rst_source')}: {source_line(reset, lang)}\n")
    out.append(f"{t(lang, 'baseline')}: {baseline_line(reset, lang)}\n")
    for key, line in (("measured_idle", idle_line(reset, lang)), ("dual", dual_line(reset, lang))):
        if line:
            out.append(f"{t(lang, key)}: {line}\n")
    if diagnoses:
        out.append(f"{t(lang, 'diagnoses')}:\n", style="bold")
        for d in diagnoses:
            out.append(f"  {d.confidence:.2f}  {d.id:<36} {d.title}\n")
    out.append(f"{t(lang, 'wireshark')}: {reset.wireshark_filter}\n", style="dim")
    return out


def evidence_text(items: list[EvidenceItem], lang: str) -> Text:
    out = Text(f"{t(lang, 'evidence')}\n", style="bold")
    for item in items or []:
        out.append(f"  • {item.text}\n")
    if not items:
        out.append(f"  {t(lang, 'none')}\n")
    return out


class DetailScreen(LiveScreen):
    BINDINGS = bindings("detail")

    def __init__(self, reset_id: str):
        super().__init__()
        self.reset_id = reset_id
        self.fixes: list[FixOut] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-summary")
            yield Ladder(id="ladder")
            yield Static(id="detail-evidence")
            yield Static(id="fixes-title")
            yield ListView(id="fixes")
        yield Footer()

    def focus_first(self) -> None:
        # focus the page, not the list: focusing the list would scroll past the ladder
        self.query_one("#detail-body").focus()

    @property
    def reset(self) -> ResetOut | None:
        return self.app.session.reset(self.reset_id)

    def show(self) -> None:
        lang, reset = self.app.lang, self.reset
        if reset is None:  # gone after a reload
            self.query_one("#detail-summary", Static).update(t(lang, "nothing_selected"))
            return
        self.sub_title = f"{t(lang, 'reset')} {reset.id}"
        diagnoses, self.fixes, evidence = localized(self.app.session, reset, lang)
        self.query_one("#detail-summary", Static).update(summary_text(reset, diagnoses, lang))
        self.query_one(Ladder).show(reset, lang)
        self.query_one("#detail-evidence", Static).update(evidence_text(evidence, lang))
        self.query_one("#fixes-title", Static).update(
            Text(f"{t(lang, 'fixes')}  [c] {action('copy_fix').title(lang)}  "
                 f"[w] {action('copy_filter').title(lang)}", style="bold"))
        fixes = self.query_one("#fixes", ListView)
        index = fixes.index or 0
        fixes.clear()
        for n, fix in enumerate(self.fixes, 1):
            fixes.append(ListItem(Label(Text(f"{n}. {fix.title}\n", style="bold") +
                                        Text(fix.text)), name=fix.id))
        if self.fixes:
            fixes.index = min(index, len(self.fixes) - 1)

    def action_copy_fix(self) -> None:
        fixes = self.query_one("#fixes", ListView)
        if not self.fixes:
            return
        fix = self.fixes[fixes.index or 0]
        self.app.copy_to_clipboard(fix.text)
        self.notify(f"{fix.title}: {t(self.app.lang, 'copied')}")

    def action_copy_filter(self) -> None:
        reset = self.reset
        if reset is not None:
            self.app.copy_to_clipboard(reset.wireshark_filter)
            self.notify(f"{t(self.app.lang, 'wireshark')}: {t(self.app.lang, 'copied')}")
