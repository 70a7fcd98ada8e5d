"""rstsleuth ask: guided diagnosis without (or on top of) a capture.

Questions come from the KB, chosen by ``engine.interview``; answers are typed, replayed from
``--answers FILE.yaml`` (question id -> answer, or a list of {question, answer}; a question
the file does not answer is asked on the terminal, or taken as unknown when stdin is not
one), or read line by line from a non-terminal stdin (EOF = quit, then the verdict with what
is known). After the verdict, ``how ID`` / ``why-not ID`` lines are still read.
Pasted output ends with a line holding a single ``.`` (or EOF). The dialogue goes to stdout,
or to stderr with ``--format json`` so that stdout is one JSON document.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

from facts.errors import UserError
from tui.output import write_output

FORMATS = ("text", "json", "markdown")
END_OF_PASTE = "."


def register(sub) -> None:
    p = sub.add_parser("ask", help="guided diagnosis by questions (no capture needed)",
                       description="Ask the questions that can still change the verdict (who "
                                   "sent the RST, which device, why), then give the verdict and "
                                   "the fixes. Type why, how X, back, unknown, quit or help at "
                                   "any question; how ID and why-not ID after the verdict.")
    p.add_argument("--capture", metavar="CAPTURE", help="start from a capture's facts")
    p.add_argument("--peer", metavar="CAPTURE", help="capture from the other end (with --capture)")
    p.add_argument("--reset", metavar="ID", help="which reset of the capture(s), e.g. 1:r3")
    p.add_argument("--answers", metavar="FILE", help="replay answers from a YAML file")
    p.add_argument("--transcript", metavar="FILE", help="save the answers given as such a file")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--output", "-o", metavar="FILE", help="write the verdict here")
    p.add_argument("--kb", metavar="DIR", help="knowledge base directory")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------- answers files
def load_answers(path: str, kb) -> list[tuple[str, Any]]:
    """(question id, answer) pairs from an answers file; every answer is checked against its
    question now, so a bad file fails before the first question (one line, exit 2)."""
    import yaml  # here, not at start-up: every command's parser is built from this module

    from facts.answers import AnswerError, check_answer
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise UserError(f"{path}: cannot read answers file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}") from None
    if isinstance(data, dict) and "answers" in data and len(data) == 1:
        data = data["answers"]
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        pairs = []
        for n, item in enumerate(data, 1):
            if not isinstance(item, dict) or "question" not in item or "answer" not in item \
                    or set(item) - {"question", "answer"}:
                raise UserError(f"{path}: entry {n} must be a mapping with 'question' and "
                                f"'answer' only")
            pairs.append((item["question"], item["answer"]))
    else:
        raise UserError(f"{path}: expected a mapping of question id to answer, or a list of "
                        f"{{question, answer}} entries")
    for qid, answer in pairs:
        question = kb.questions.get(str(qid))
        if question is None:
            raise UserError(f"{path}: unknown question id {qid!r}")
        if isinstance(answer, (dict, list)):
            raise UserError(f"{path}: {qid}: the answer must be a single value or text")
        try:
            check_answer(question, answer, alternates=tuple(
                q for q in kb.questions.values() if q.sets == question.sets and q.id != question.id
                and q.answer != "text"))
        except AnswerError as exc:
            raise UserError(f"{path}: {qid}: {exc}") from None
    return [(str(q), a) for q, a in pairs]


class Replay:
    """Answers from a file, looked up by question id, or by another question that sets the
    same field (a transcript made with an older KB still applies)."""

    def __init__(self, pairs: list[tuple[str, Any]], kb):
        self.kb = kb
        self.by_id: dict[str, Any] = {}
        for qid, answer in pairs:
            self.by_id[qid] = answer  # a later entry (after a 'back') wins
        self.used: set[str] = set()

    def take(self, question) -> tuple[Optional[str], Any]:
        if question.id in self.by_id and question.id not in self.used:
            self.used.add(question.id)
            return question.id, self.by_id[question.id]
        for qid, answer in self.by_id.items():
            other = self.kb.questions[qid]
            if qid not in self.used and other.sets == question.sets and other.answer == question.answer:
                self.used.add(qid)
                return qid, answer
        return None, None

    def unused(self) -> list[str]:
        return [q for q in self.by_id if q not in self.used]


# ---------------------------------------------------------------------- input
class Lines:
    """User input, one line at a time, from a terminal (with prompts) or a pipe."""

    def __init__(self, stream, out):
        self.stream, self.out = stream, out
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.eof = False

    def read(self, prompt: str = "> ") -> Optional[str]:
        if self.eof:
            return None
        if self.tty:
            try:
                return input(prompt)
            except EOFError:
                self.eof = True
                return None
        line = self.stream.readline()
        if not line:
            self.eof = True
            return None
        return line.rstrip("\r\n")

    def read_paste(self, first: str) -> str:
        lines = [first]
        while lines[-1].strip() != END_OF_PASTE:
            more = self.read("")
            if more is None:
                break
            lines.append(more)
        if lines and lines[-1].strip() == END_OF_PASTE:
            lines.pop()
        return "\n".join(lines)


# ---------------------------------------------------------------------- session
def _say(out, lines) -> None:
    for line in lines:
        print(line, file=out)
    out.flush()


def interview_loop(iv, lines: Lines, out, replay: Optional[Replay] = None,
                   replay_name: str = "") -> None:
    from engine.interview_text import question_lines
    shown = None
    while not iv.finished:
        question = iv.current
        if shown != (question.id, len(iv.steps)):  # after why/how only the prompt again
            shown = (question.id, len(iv.steps))
            _say(out, [""] + question_lines(question, iv.lang, len(iv.steps) + 1))
        if replay is not None:
            source, answer = replay.take(question)
            if source is not None:
                given = str(answer).strip().splitlines() or [""]
                _say(out, [f"> {given[0]}" + (" …" if len(given) > 1 else "")
                           + f"   [{replay_name}]"])
                reply = iv.handle(answer if isinstance(answer, str) else
                                  ("yes" if answer is True else "no" if answer is False
                                   else "unknown" if answer is None else str(answer)))
                if reply.kind == "error":  # checked at load; a paste may still not decide
                    _say(out, [f"{replay_name}: {question.id}: {reply.lines[0]}; taken as unknown"])
                    iv.notes.append(f"{replay_name}: {question.id}: {reply.lines[0]}")
                    iv.handle("unknown")
                continue
            if not lines.tty:  # the file is what the engineer knows; the rest is unknown
                _say(out, [f"> unknown   [not in {replay_name}]"])
                iv.handle("unknown")
                continue
        line = lines.read()
        if line is None:
            iv.quit()
            break
        if not lines.tty:
            _say(out, [f"> {line}"])
        word = line.strip().split(" ", 1)[0].lower()
        if question.answer == "text" and word not in ("why", "how", "back", "unknown", "quit",
                                                      "help", "?", "不知道"):
            line = lines.read_paste(line)
        reply = iv.handle(line)
        _say(out, reply.lines)


def after_verdict(iv, lines: Lines, out) -> None:
    while True:
        line = lines.read("> ")
        if line is None:
            return
        if not lines.tty:
            _say(out, [f"> {line}"])
        if not line.strip():
            continue
        word = line.strip().split(" ", 1)[0].lower()
        if word not in ("how", "why-not", "whynot", "why_not", "why", "quit", "exit", "q", "help",
                        "h"):
            from engine.interview_text import t
            _say(out, [t("finished_commands", iv.lang)])
            continue
        reply = iv.handle(line)
        if reply.kind == "quit":
            return
        _say(out, reply.lines)


def run(args) -> int:
    from engine import Reasoner, load_kb
    from engine.interview import Interview, from_captures

    if args.peer and not args.capture:
        raise UserError("--peer needs --capture (the capture from this end)")
    kb = load_kb(args.kb)
    replay = Replay(load_answers(args.answers, kb), kb) if args.answers else None
    dialogue = sys.stderr if args.format == "json" and not args.output else sys.stdout
    lines = Lines(sys.stdin, dialogue)
    with Reasoner(kb) as reasoner:
        if args.capture:
            choose = _chooser(lines, dialogue) if lines.tty and not args.reset else None
            iv = from_captures(kb, reasoner, args.capture, args.peer, reset=args.reset,
                               lang=args.lang, choose=choose)
        else:
            iv = Interview(kb, reasoner, lang=args.lang)
        _say(dialogue, iv.notes)
        try:
            interview_loop(iv, lines, dialogue, replay, args.answers or "")
        finally:
            if args.transcript:
                _write_transcript(args.transcript, iv.transcript())
        if replay is not None and replay.unused():
            iv.notes.append(f"{args.answers}: answers not used (not asked): "
                            + ", ".join(replay.unused()))
        verdict = iv.verdict()
        text = render_verdict(verdict, args.format, args.lang)
        write_output(text, args.output, "verdict")
        if iv.stopped != "quit" or not lines.eof:
            after_verdict(iv, lines, dialogue)
    return 0


def _chooser(lines: Lines, out):
    def choose(choices, default: int) -> int:
        _say(out, ["Resets in the capture(s):"] + [
            f"  {i}. {c.id}  {c.summary}  [{c.origin}]" for i, c in enumerate(choices, 1)])
        while True:
            line = lines.read(f"which one? [{default + 1}] ")
            if line is None or not line.strip():
                return default
            if line.strip().isdigit() and 1 <= int(line) <= len(choices):
                return int(line) - 1
            _say(out, [f"type a number from 1 to {len(choices)}"])
    return choose


def _write_transcript(path: str, entries: list[dict[str, str]]) -> None:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
    _Dumper.add_representer(str, _str)
    try:
        with open(path, "w", encoding="utf-8") as fh:
            yaml.dump(entries, fh, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
    except OSError as exc:
        raise UserError(f"{path}: cannot write transcript ({exc.strerror})") from None


# ---------------------------------------------------------------------- verdict rendering
def render_verdict(verdict, fmt: str, lang: str) -> str:
    if fmt == "json":
        return json.dumps(verdict.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    from ._ask_render import render_markdown, render_text
    return render_markdown(verdict, lang) if fmt == "markdown" else render_text(verdict, lang)
