"""The guided interview behind ``rstsleuth ask`` and the TUI's Ask screen (UI-independent).

An :class:`Interview` holds the evidence (a capture's reset, answers, pastes), picks the next
question with :mod:`engine.interview_select` (the method is documented there: three-valued
look-ahead over the rules still possible, question value = the certainty its field can still
move, weighted by closeness to the top; stop when no single answer can change the origin or
the top diagnosis), and answers WHY / HOW / WHY-NOT from data. Front ends call
:meth:`Interview.handle` with what the user typed and show the :class:`Reply`; or they call
``answer`` / ``back`` / ``why`` / ``how`` / ``why_not`` directly.

After the diagnosis is settled, at most two *parameter* questions follow when the verdict's
fixes need them (the server port picks per-application fixes; the idle time sets the
keepalive and timeout numbers), again only when not already known.

API (shared by ``tui/commands/ask.py`` and the TUI)::

    iv = Interview(kb, reasoner, lang="en")            # or from_captures(kb, reasoner, pcap, peer,
                                                       #    reset=None, lang=, choose=None)
    iv.current      -> Question | None (None: finished); iv.phase: diagnosis | parameter | done
    iv.handle(line) -> Reply(kind, lines, step)        # answers and every command
    iv.answer(text, question=None) -> Step             # raises facts.answers.AnswerError
    iv.back() / iv.quit() / iv.why() -> WhyStep / iv.why_chain() / iv.how(x) / iv.why_not(id)
    iv.inference, iv.outlook, iv.ranked(), iv.evidence, iv.steps, iv.transcript()
    iv.verdict()    -> engine.interview_verdict.Verdict (rstsleuth.ask/1)
    engine.interview_text.question_lines(q, lang, n) / render_why / render_how / render_whynot
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

from facts.answers import UNKNOWN, AnswerError, parse_answer
from facts.fields import FIELDS

from .interview_select import Lookahead, Outlook, outcome_of
from .kb_model import Question, Text

Source = Literal["answer", "paste", "capture"]
PARAM_QUESTIONS = {"server_port": "conn_server_port", "app_name": "conn_server_port",
                   "idle_s": "idle_before_s", "idle_min": "idle_before_s"}


class Step(BaseModel):
    """One answered question."""

    question: str
    answer: str = Field(description="What was typed or pasted ('unknown' for unknown)")
    fields: dict[str, Any] = Field(default_factory=dict)
    source: Source = "answer"
    parser: Optional[str] = None

    @property
    def unknown(self) -> bool:
        return not self.fields


class KnownFact(BaseModel):
    """HOW a fact is known."""

    field: str
    value: Any = None
    known: bool
    source: Optional[Source] = None
    question: Optional[str] = None
    detail: Optional[str] = Field(None, description="The capture and reset, or the parser")


class WhyStep(BaseModel):
    """One level of WHY: the rule being pursued (level 1) or the rule it serves."""

    level: int
    rule_id: Optional[str] = None
    conclusion: Optional[str] = None
    title: Optional[Text] = None
    rationale: Optional[Text] = None
    needs: list[str] = Field(default_factory=list)
    goal: bool = Field(False, description="The top: the origin or a diagnosis itself")
    parameter: Optional[str] = Field(None, description="Parameter phase: the fix parameter")


class Reply(BaseModel):
    """What a front end shows after one line of input."""

    kind: Literal["answered", "why", "how", "why_not", "back", "help", "quit", "error", "done"]
    lines: list[str] = Field(default_factory=list)
    step: Optional[Step] = None


class Interview:
    def __init__(self, kb, reasoner, *, lang: str = "en",
                 base_evidence: Optional[dict[str, Any]] = None,
                 base_detail: Optional[str] = None, notes: Optional[list[str]] = None):
        self.kb, self.reasoner, self.lang = kb, reasoner, lang
        self.base = dict(base_evidence or {})
        self.base_detail = base_detail
        self.notes = list(notes or [])
        self.steps: list[Step] = []
        self.lookahead = Lookahead(reasoner)
        self._order = {qid: i for i, qid in enumerate(kb.questions)}
        self.stopped: Optional[Literal["settled", "quit"]] = None
        self._why_level = 0
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def evidence(self) -> dict[str, Any]:
        out = dict(self.base)
        for step in self.steps:
            out.update(step.fields)
        return out

    @property
    def unknown_fields(self) -> set[str]:
        return {self.kb.questions[s.question].sets for s in self.steps if s.unknown}

    def remaining(self) -> list[Question]:
        """Questions whose field nobody has settled yet (known, or answered unknown)."""
        known, unknown = self.evidence, self.unknown_fields
        asked = {s.question for s in self.steps}
        return [q for q in self.kb.questions.values()
                if q.sets not in known and q.sets not in unknown and q.id not in asked]

    def refresh(self) -> None:
        self._why_level = 0
        evidence = self.evidence
        self.inference = self.reasoner.infer(evidence)
        remaining = self.remaining()
        self.outlook: Outlook = self.lookahead.outlook(
            evidence, self.inference, {q.sets for q in remaining})
        self.current: Optional[Question] = None
        self.phase: Literal["diagnosis", "parameter", "done"] = "done"
        self.parameter: Optional[str] = None
        if self.stopped == "quit":
            return
        choice = self._choose(self.ranked(remaining), evidence)
        if choice is not None:
            self.current, self.phase = choice, "diagnosis"
            return
        param = self._parameter_question(remaining)
        if param is not None:
            self.current, self.phase = param, "parameter"
            return
        self.stopped = self.stopped or "settled"

    def ranked(self, remaining: Optional[list[Question]] = None) -> list[tuple[Question, float]]:
        """Remaining questions with a value, best first (ties in KB order)."""
        values = self.outlook.field_value
        rows = [(q, values.get(q.sets, 0.0)) for q in (remaining or self.remaining())]
        rows = [r for r in rows if r[1] > 1e-9]
        return sorted(rows, key=lambda r: (-r[1], self._order[r[0].id]))

    def _values_for(self, question: Question) -> list[Any]:
        spec = FIELDS.get(question.sets)
        choices = [c.value for q in self.kb.questions.values() if q.sets == question.sets
                   for c in q.choices]
        return self.lookahead.candidate_values(question.sets, spec.kind if spec else "str",
                                               choices or (spec.choices or () if spec else ()))

    def _choose(self, ranked, evidence) -> Optional[Question]:
        """The most valuable question that can change the origin, the timing pattern or the
        top diagnosis, alone or as one of the two answers a rule still needs to lift another
        diagnosis past the top; None when nothing can change the origin or the top diagnosis
        that way (the diagnosis is settled)."""
        inf = self.inference
        current = outcome_of(self.kb, inf)
        pattern = inf.pattern
        near = self.outlook.near
        choice, decisive, tried = None, bool(near), {}
        for question, _value in ranked:
            if question.sets in near:
                choice = choice or question
                if decisive:
                    return choice
                continue
            if question.sets not in tried:
                tried[question.sets] = self.lookahead.outcomes(
                    evidence, question.sets, self._values_for(question))
            outcomes = tried[question.sets]
            if any(o != current for o, _p in outcomes):
                decisive = True
                choice = choice or question
            elif choice is None and not current[2] and any(p != pattern for _o, p in outcomes):
                # a pattern leads to diagnoses: worth asking while none is confident
                choice = question
            if choice is not None and decisive:
                return choice
        return None

    def _parameter_question(self, remaining: list[Question]) -> Optional[Question]:
        from .report_build import MIN_FIX_CF, diagnoses_for
        inf = self.inference
        sources = [d.id for d in diagnoses_for(self.kb, inf, inf.origin, "en")
                   if d.confidence >= MIN_FIX_CF]
        if inf.pattern and not sources and inf.origin != "endpoint":
            sources.append(f"pattern.{inf.pattern}")
        wanted: list[str] = []
        for cid in sources:
            concl = self.kb.conclusions.get(cid)
            for fix in (self.kb.fixes.get(f) for f in (concl.fixes if concl else [])):
                if fix is None:
                    continue
                names = list(fix.params) + (["server_port"] if fix.ports else [])
                wanted += [PARAM_QUESTIONS[n] for n in names if n in PARAM_QUESTIONS]
        for name in dict.fromkeys(wanted):
            for q in remaining:
                if q.sets == name and q.answer != "text":
                    self.parameter = name
                    return q
        return None

    # ------------------------------------------------------------------ answers
    def alternates(self, question: Question) -> tuple[Question, ...]:
        return tuple(q for q in self.kb.questions.values()
                     if q.sets == question.sets and q.id != question.id and q.answer != "text")

    def answer(self, text: Any, question: Optional[Question] = None) -> Step:
        """Answer the current question (raises AnswerError and changes nothing when bad)."""
        question = question or self.current
        if question is None:
            raise AnswerError("the interview is over; nothing to answer")
        port = self.evidence.get("conn_server_port")
        parsed = parse_answer(question, text, lang=self.lang, port=port,
                              alternates=self.alternates(question))
        raw = ("yes" if text else "no") if isinstance(text, bool) else str(text)
        if parsed is UNKNOWN:
            step = Step(question=question.id, answer="unknown")
        else:
            known = self.evidence
            fields = {k: v for k, v in parsed.fields.items() if k not in known}
            fields.setdefault(question.sets, parsed.fields.get(question.sets))
            fields = {k: v for k, v in fields.items() if v is not None}
            step = Step(question=question.id, answer=raw.strip("\n"), fields=fields,
                        source=parsed.source, parser=parsed.parser)
        self.steps.append(step)
        self.refresh()
        return step

    def back(self) -> Optional[Step]:
        """Withdraw the last answer; its question is asked again (unless the look-ahead now
        prefers another). Returns the withdrawn step, None at the start."""
        if not self.steps:
            return None
        step = self.steps.pop()
        self.stopped = None
        self.refresh()
        return step

    def quit(self) -> None:
        self.stopped = "quit"
        self.current = None
        self.phase = "done"

    @property
    def finished(self) -> bool:
        return self.current is None

    def transcript(self) -> list[dict[str, str]]:
        return [{"question": s.question, "answer": s.answer} for s in self.steps]

    # ------------------------------------------------------------------ explanations
    def why(self) -> WhyStep:
        """The rule being pursued by the current question; each further call climbs one
        level: the rule that reads this rule's conclusion as a premise, up to the goal."""
        self._why_level += 1
        chain = self.why_chain()
        return chain[min(self._why_level, len(chain)) - 1]

    def why_chain(self) -> list[WhyStep]:
        question = self.current
        if question is None:
            return [WhyStep(level=1, goal=True)]
        if self.phase == "parameter":
            return [WhyStep(level=1, parameter=self.parameter, goal=True)]
        rules, outlook = self.kb.rules, self.outlook
        pending = [ro for ro in outlook.rules if ro.truth is None and ro.value > 0]
        best = max((ro for ro in pending if question.sets in ro.needs),
                   key=lambda ro: ro.value, default=None)
        chain: list[WhyStep] = []
        seen: set[int] = set()
        while best is not None and best.index not in seen:
            seen.add(best.index)
            rule = rules[best.index]
            concl = self.kb.conclusions.get(rule.conclude.id)
            chain.append(WhyStep(level=len(chain) + 1, rule_id=rule.id,
                                 conclusion=rule.conclude.id, title=rule.title,
                                 rationale=rule.rationale, needs=sorted(best.needs)))
            best = max((ro for ro in pending if rule.conclude.id in ro.waits_on),
                       key=lambda ro: ro.value, default=None)
            if best is None:
                kind = concl.kind if concl else "finding"
                chain.append(WhyStep(level=len(chain) + 1, conclusion=rule.conclude.id,
                                     title=concl.title if concl else None, goal=True,
                                     needs=[kind]))
        return chain or [WhyStep(level=1, goal=True)]

    def how_fact(self, name: str) -> KnownFact:
        evidence = self.evidence
        for step in reversed(self.steps):
            if name in step.fields:
                return KnownFact(field=name, value=step.fields[name], known=True,
                                 source=step.source, question=step.question,
                                 detail=step.parser)
            if step.unknown and self.kb.questions[step.question].sets == name:
                return KnownFact(field=name, known=False, source="answer",
                                 question=step.question)
        if name in self.base:
            return KnownFact(field=name, value=self.base[name], known=True, source="capture",
                             detail=self.base_detail)
        return KnownFact(field=name, value=evidence.get(name), known=name in evidence)

    def how(self, target: str):
        """A fact (field or question id): how it is known; a conclusion: its proof so far."""
        target = target.strip()
        if target in self.kb.questions:
            target = self.kb.questions[target].sets
        if target in FIELDS or target in self.evidence:
            return self.how_fact(target)
        if self.is_conclusion(target):
            return self.inference.how(target)
        raise AnswerError(f"how: {target!r} is neither a fact field nor a conclusion id")

    def is_conclusion(self, cid: str) -> bool:
        return cid in self.kb.conclusions or any(r.conclude.id == cid for r in self.kb.rules)

    def why_not(self, conclusion_id: str):
        conclusion_id = conclusion_id.strip()
        if not self.is_conclusion(conclusion_id):
            raise AnswerError(f"why-not: {conclusion_id!r} is not a conclusion id")
        return self.reasoner.why_not(self.evidence, conclusion_id)

    # ------------------------------------------------------------------ command line
    def handle(self, line: str) -> Reply:
        """Interpret one line: a command (why, how X, back, unknown, quit, help, why-not X)
        or an answer to the current question."""
        from .interview_text import render_how, render_whynot, render_why, help_lines, t
        stripped = line.strip()
        word, _, rest = stripped.partition(" ")
        word = word.lower()
        try:
            if word == "why" and not rest and not self.finished:
                return Reply(kind="why", lines=render_why(self, self.why()))
            if word == "how":
                if not rest:
                    raise AnswerError(t("how_usage", self.lang))
                return Reply(kind="how", lines=render_how(self, self.how(rest)))
            if word in ("why-not", "whynot", "why_not") or (word == "why" and rest.startswith("not ")):
                target = rest[4:] if word == "why" else rest
                if not target.strip():
                    raise AnswerError(t("whynot_usage", self.lang))
                return Reply(kind="why_not", lines=render_whynot(self, target.strip(),
                                                                 self.why_not(target)))
            if word == "back" and not rest:
                step = self.back()
                return Reply(kind="back", step=step, lines=[t("back_none" if step is None
                                                               else "back_done", self.lang)])
            if word in ("quit", "exit", "q") and not rest:
                self.quit()
                return Reply(kind="quit")
            if word in ("help", "h") and not rest:
                return Reply(kind="help", lines=help_lines(self))
            if self.finished:
                raise AnswerError(t("finished_commands", self.lang))
            step = self.answer(line)
            return Reply(kind="done" if self.finished else "answered", step=step)
        except AnswerError as exc:
            return Reply(kind="error", lines=[str(exc)])

    def verdict(self):
        from .interview_verdict import build_verdict
        return build_verdict(self)



def from_captures(kb, reasoner, capture: str, peer: Optional[str] = None, **options) -> Interview:
    """An interview starting from one reset's capture facts (see engine.interview_capture)."""
    from .interview_capture import from_captures as _from_captures
    return _from_captures(kb, reasoner, capture, peer, **options)
