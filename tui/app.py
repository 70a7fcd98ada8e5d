"""The Textual app: resets and findings, reset detail, reasoning, interview, knowledge base.

``Session`` holds what the screens share (the KB and its Reasoner, the report and every
reset's evidence); the app owns navigation, the language, the KB reload (a reload that fails
keeps the previous KB in use; one that loads re-analyses the captures on a worker thread) and
the KB file watcher.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Optional

from textual.app import App
from textual.reactive import reactive

from engine import KBError, Reasoner, load_kb
from engine.kb import KnowledgeBase, Problem
from engine.report_model import Report, ResetOut
from facts.errors import UserError

from .actions import ActionsProvider
from .bindings import bindings

KB_POLL_S = 1.0


class Session:
    """The KB in use, the analysis of the open captures, and the evidence of every reset."""

    def __init__(self, capture: Optional[str] = None, peer: Optional[str] = None, *,
                 tracert: Optional[str] = None, kb_path: Optional[str] = None,
                 kb: Optional[KnowledgeBase] = None):
        self.capture, self.peer, self.tracert = capture, peer, tracert
        self.kb: KnowledgeBase = kb or load_kb(kb_path)
        self.kb_path: Path = Path(self.kb.path)
        self.reasoner = Reasoner(self.kb)
        self.report: Optional[Report] = None
        self.evidence: dict[str, dict[str, Any]] = {}
        self.problems: list[Problem] = []  # of the last reload that failed
        self.by_id: dict[str, ResetOut] = {}
        self.mtimes = self.kb_mtimes()

    @classmethod
    def from_report(cls, report: Report, evidence: dict[str, dict[str, Any]], *,
                    kb: Optional[KnowledgeBase] = None, kb_path: Optional[str] = None) -> "Session":
        """A session over an existing report (tests, and very large synthetic ones)."""
        session = cls(kb=kb, kb_path=kb_path)
        session.set_report(report, evidence)
        return session

    def set_report(self, report: Optional[Report], evidence: dict[str, dict[str, Any]]) -> None:
        self.report, self.evidence = report, evidence
        self.by_id = {r.id: r for r in report.resets} if report else {}

    def analyze(self, lang: str = "en", progress=None) -> None:
        if not self.capture:
            return
        self.set_report(*self.analysis(self.kb, self.reasoner, lang, progress))

    def analysis(self, kb: KnowledgeBase, reasoner: Reasoner, lang: str = "en", progress=None
                 ) -> tuple[Report, dict[str, dict[str, Any]]]:
        """The report over the session's captures with this KB, and each reset's evidence;
        changes nothing (the TUI runs it off the UI thread after a KB reload)."""
        from engine.analysis import analyze
        evidence: dict[str, dict[str, Any]] = {}
        report = analyze(self.capture, self.peer, tracert=self.tracert, kb=kb,
                         reasoner=reasoner, lang=lang, progress=progress,
                         evidence_out=evidence)
        return report, evidence

    def reset(self, reset_id: Optional[str]) -> Optional[ResetOut]:
        return self.by_id.get(reset_id or "")

    def kb_mtimes(self) -> dict[str, float]:
        from engine.loader import kb_files
        out = {}
        try:
            for path in kb_files(self.kb_path):
                try:
                    out[str(path)] = path.stat().st_mtime
                except OSError:
                    pass
        except OSError:
            pass
        return out

    def reload_kb(self) -> bool:
        """Load the KB again from disk. On errors keep the KB in use and remember them."""
        self.mtimes = self.kb_mtimes()
        try:
            kb = load_kb(self.kb_path)
            reasoner = Reasoner(kb)
        except KBError as exc:
            self.problems = list(exc.problems)
            return False
        old = self.reasoner
        self.kb, self.reasoner, self.problems = kb, reasoner, []
        old.close()
        return True

    def close(self) -> None:
        self.reasoner.close()


class RstSleuthApp(App):
    TITLE = "rstsleuth"
    CSS_PATH = "app.tcss"
    BINDINGS = bindings("app")
    COMMANDS = App.COMMANDS | {ActionsProvider}
    ENABLE_COMMAND_PALETTE = True

    lang: reactive[str] = reactive("en")
    kb_version: reactive[int] = reactive(0)  # bumped when the KB (and report) changed
    selected: reactive[Optional[str]] = reactive(None)

    def __init__(self, session: Session, *, lang: str = "en", watch_kb: bool = True,
                 start: Optional[str] = None, cursor_blink: bool = True):
        super().__init__()
        self.cursor_blink = cursor_blink  # off for snapshot tests
        self.session = session
        self.set_reactive(RstSleuthApp.lang, lang)
        self.watch_kb = watch_kb
        self._start = start or ("resets" if session.report is not None else "interview")
        if session.report is not None and session.report.resets:
            self.set_reactive(RstSleuthApp.selected, session.report.resets[0].id)

    def steady(self, screen) -> None:
        """Apply the app's cursor-blink setting and language to a newly mounted screen."""
        self.localize_screen(screen)
        for widget in screen.query("Input, TextArea"):
            widget.cursor_blink = self.cursor_blink

    def get_default_screen(self):
        from .screens.resets import ResetsScreen
        return ResetsScreen()

    def on_mount(self) -> None:
        from .screens.interview import InterviewScreen
        from .screens.kb import KbScreen
        self.install_screen(InterviewScreen(), "interview")
        self.install_screen(KbScreen(), "kb")
        self.set_interval(KB_POLL_S, self._poll_kb)
        from .bindings import localize
        localize(self, self.lang)
        if self._start == "interview":
            self.push_screen("interview")
        elif self._start == "kb":
            self.push_screen("kb")

    def on_unmount(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ navigation
    def _to_base(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) == 2:
            self.pop_screen()

    def action_show_resets(self) -> None:
        self._to_base()

    def _show_named(self, name: str) -> None:
        if self.screen is self.get_screen(name):
            return
        self._to_base()
        screen = self.get_screen(name)
        self.push_screen(screen)
        if screen.is_mounted:  # mounted before, maybe in the other language
            self.localize_screen(screen)

    def action_show_interview(self) -> None:
        self._show_named("interview")

    def action_show_kb(self) -> None:
        self._show_named("kb")

    def _need_reset(self) -> Optional[ResetOut]:
        reset = self.session.reset(self.selected)
        if reset is None:
            self.notify(self.t("nothing_selected"), severity="warning")
        return reset

    def action_open_detail(self) -> None:
        from .screens.detail import DetailScreen
        reset = self._need_reset()
        if reset is not None:
            self._to_base()
            self.push_screen(DetailScreen(reset.id))

    def action_open_reasoning(self) -> None:
        from .screens.reasoning import ReasoningScreen
        reset = self._need_reset()
        if reset is not None:
            if type(self.screen).__name__ != "DetailScreen":
                self._to_base()
            self.push_screen(ReasoningScreen(reset.id))

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        from .screens.help import HelpScreen
        if type(self.screen).__name__ == "HelpScreen":
            return
        live = [(key, active.binding, active.node) for key, active in self.active_bindings.items()]
        self.push_screen(HelpScreen(live))

    # ------------------------------------------------------------------ language
    def t(self, key: str, **values) -> str:
        from .screens.i18n import t
        return t(self.lang, key, **values)

    def action_toggle_lang(self) -> None:
        self.lang = "zh" if self.lang == "en" else "en"

    def watch_lang(self, lang: str) -> None:
        from .bindings import localize
        localize(self, lang)
        for screen in self.screen_stack:
            self.localize_screen(screen)

    def localize_screen(self, screen) -> None:
        """The footer's binding descriptions of a screen and its widgets in the language."""
        from .bindings import localize
        for node in (screen, *screen.walk_children()):
            localize(node, self.lang)
        screen.refresh_bindings()

    # ------------------------------------------------------------------ knowledge base
    def action_reload_kb(self) -> None:
        self.reload_kb()

    def reload_kb(self) -> bool:
        """Load the KB again; when it loads, analyse the captures again with it on a worker
        thread (a large capture takes seconds) and show the new report when that is done."""
        ok = self.session.reload_kb()
        if ok:
            if self.session.capture:
                self.run_worker(partial(self._reanalyse, self.session.kb, self.lang),
                                thread=True, exclusive=True, group="reanalyse",
                                exit_on_error=False)
            else:
                self.notify(self.t("kb_reloaded", rules=len(self.session.kb.rules)))
        else:
            self.notify(self.t("kb_errors", n=len(self.session.problems)), severity="error")
        self.kb_version += 1
        return ok

    def _reanalyse(self, kb: KnowledgeBase, lang: str) -> None:
        """Worker thread. Its own Reasoner: the UI thread keeps reasoning (why-not, what-if)
        with the session's, and a durable ruleset is used from one thread at a time."""
        try:
            with Reasoner(kb) as reasoner:
                report, evidence = self.session.analysis(kb, reasoner, lang)
        except UserError as exc:  # e.g. the capture was moved meanwhile: keep the old report
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self._show_reanalysed, kb, report, evidence)

    def _show_reanalysed(self, kb: KnowledgeBase, report: Report,
                         evidence: dict[str, dict[str, Any]]) -> None:
        if self.session.kb is not kb:  # a newer reload is on its way
            return
        self.session.set_report(report, evidence)
        self.notify(self.t("kb_reloaded", rules=len(kb.rules)))
        self.kb_version += 1

    def _poll_kb(self) -> None:
        if self.watch_kb and self.session.kb_mtimes() != self.session.mtimes:
            self.reload_kb()


def build_app(capture: Optional[str] = None, peer: Optional[str] = None, *,
              tracert: Optional[str] = None, kb_path: Optional[str] = None, lang: str = "en",
              progress=None, **kwargs) -> RstSleuthApp:
    """The app over one or two captures (analysed now), or, without one, the interview."""
    session = Session(capture, peer, tracert=tracert, kb_path=kb_path)
    try:
        session.analyze(lang, progress)
    except BaseException:
        session.close()
        raise
    return RstSleuthApp(session, lang=lang, **kwargs)
