"""The guided interview: the same engine and questions as ``rstsleuth ask``
(``engine.interview.Interview``), with why / how / back, and the verdict at the end.

Typed lines go to ``Interview.handle`` exactly as ``ask`` sends them; the keys for why, how
and back send the same commands. With a capture open, the interview starts from the selected
reset's evidence (what ``ask --capture --reset`` does)."""
from __future__ import annotations

from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, RichLog, Static, TextArea

from engine.interview import Interview
from engine.interview_text import question_lines

from ..bindings import bindings
from .i18n import t

PASTE_WORDS = ("why", "how", "back", "unknown", "quit", "help", "?", "不知道")


def new_interview(app) -> Interview:
    session = app.session
    reset = session.reset(app.selected)
    if reset is not None and reset.id in session.evidence:
        return Interview(session.kb, session.reasoner, lang=app.lang,
                         base_evidence=session.evidence[reset.id],
                         base_detail=f"{reset.capture} reset {reset.id}, frame {reset.frame}")
    return Interview(session.kb, session.reasoner, lang=app.lang)


class InterviewScreen(Screen):
    BINDINGS = bindings("interview")

    def __init__(self):
        super().__init__()
        self.iv: Optional[Interview] = None
        self._shown: Optional[tuple] = None
        self._based_on: Optional[str] = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="interview-body"):
            yield RichLog(id="interview-log", wrap=True, markup=False)
            yield Static(id="interview-question")
            yield Input(id="answer")
            yield TextArea(id="paste")
        yield Footer()

    def on_mount(self) -> None:
        self.app.steady(self)
        self.watch(self.app, "lang", self._lang_changed, init=False)
        self.watch(self.app, "kb_version", lambda _v: self.restart(replay=True), init=False)
        self.query_one("#paste", TextArea).display = False
        self.restart()

    def on_screen_resume(self) -> None:
        # a capture's interview follows the reset selected on the resets screen
        if self.app.selected != self._based_on and self.app.session.report is not None:
            self.restart()
        self._focus_input()

    # ------------------------------------------------------------------ state
    def restart(self, replay: bool = False) -> None:
        old = self.iv
        self.iv = new_interview(self.app)
        self._based_on = self.app.selected
        log = self.query_one("#interview-log", RichLog)
        log.clear()
        self._shown = None
        self.sub_title = t(self.app.lang, "interview")
        for note in self.iv.notes:
            log.write(Text(note, style="dim"))
        if self.iv.base_detail:
            log.write(Text(t(self.app.lang, "evidence_from", what=self.iv.base_detail), style="dim"))
        if replay and old is not None:
            # the KB changed: give the same answers again, as far as they still apply
            for step in old.steps:
                if self.iv.finished:
                    break
                self.iv.handle(step.answer)
        self.show_question()

    def show_question(self) -> None:
        iv, lang = self.iv, self.app.lang
        log = self.query_one("#interview-log", RichLog)
        question_box = self.query_one("#interview-question", Static)
        answer = self.query_one("#answer", Input)
        paste = self.query_one("#paste", TextArea)
        answer.placeholder = t(lang, "answer_placeholder")
        if iv.finished:
            from tui.commands._ask_render import render_text
            key = ("verdict", len(iv.steps))
            if self._shown != key:
                self._shown = key
                log.write(Text(render_text(iv.verdict(), lang).strip("\n"), style="green"))
            question_box.update(Text(t(lang, "verdict"), style="bold green"))
            paste.display = False
            return
        question = iv.current
        key = (question.id, len(iv.steps))
        question_box.update(Text("\n".join(question_lines(question, lang, len(iv.steps) + 1)),
                                 style="bold"))
        paste.display = question.answer == "text"
        self._shown = key

    def _focus_input(self) -> None:
        paste = self.query_one("#paste", TextArea)
        (paste if paste.display else self.query_one("#answer", Input)).focus()

    def _lang_changed(self, lang: str) -> None:
        if self.iv is not None:
            self.iv.lang = lang
            self._shown = None
            self.show_question()

    # ------------------------------------------------------------------ input
    def send(self, line: str) -> None:
        iv = self.iv
        log = self.query_one("#interview-log", RichLog)
        if not iv.finished:
            log.write(Text(f"[{len(iv.steps) + 1}] {question_lines(iv.current, iv.lang)[0]}",
                           style="bold"))
        shown = line.strip().splitlines() or [""]
        log.write(Text(f"> {shown[0]}" + (" …" if len(shown) > 1 else ""), style="cyan"))
        reply = iv.handle(line)
        style = "red" if reply.kind == "error" else ""
        for text in reply.lines:
            log.write(Text(text, style=style))
        self.show_question()
        self._focus_input()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "answer":
            return
        event.input.value = ""
        self.send(event.value)

    def action_submit_paste(self) -> None:
        paste = self.query_one("#paste", TextArea)
        if paste.display and paste.text.strip():
            text = paste.text
            paste.text = ""
            self.send(text)

    def action_why(self) -> None:
        self.send("why")

    def _how_target(self) -> str:
        typed = self.query_one("#answer", Input).value.strip()
        if typed:
            return typed
        inf = self.iv.inference
        ranked = inf.ranked("subtype")
        if ranked:
            return ranked[0][0]
        return f"origin.{inf.origin}" if inf.origin != "undetermined" else "origin.middle_device"

    def action_how(self) -> None:
        target = self._how_target()
        self.query_one("#answer", Input).value = ""
        self.send(f"how {target}")

    def action_back_question(self) -> None:
        self.send("back")

    def action_restart(self) -> None:
        self.restart()
