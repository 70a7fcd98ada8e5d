"""Typed interview answers: what an engineer types (or an answers file holds) -> fact values.

One entry point, :func:`parse_answer`, turns the text for one KB question into the fact fields
it sets. Accepted forms, by the question's answer type:

* ``yes_no``: yes/y/true/是/对/有 … and no/n/false/否/不是/没有 …;
* ``number``: ``1500``, ``7,200,000``, ``7200000 ms``; a question in ms also takes a duration
  with a unit (``5 min`` → 300000);
* ``duration`` (seconds): ``90``, ``90s``, ``30m``, ``1h30m``, ``1.5h``, ``500ms``, ``1:00:00``,
  ``4:00``, ``4 min``, ``1 小时``, ``30 分钟``;
* ``choice``: the 1-based number shown, the value, or the label text;
* ``text``: pasted command output, run through the question's ``facts.pasted`` parser; the
  fields come from ``facts.pasted.context.context_facts``. A one-line value that a question
  setting the same field directly would accept (``7200000`` for KeepAliveTime) is taken too.

Every answer type also accepts *unknown* (unknown/?/dk/不知道 …): :data:`UNKNOWN` is returned
and no field is set. A bad answer raises :class:`AnswerError` (a one-line ``UserError``).
"""
from __future__ import annotations

import math
import re
from typing import Any, Optional

from pydantic import BaseModel, Field

from .errors import UserError

YES = {"y", "yes", "true", "t", "1", "yeah", "yep", "是", "是的", "对", "有", "会", "能", "对的"}
NO = {"n", "no", "false", "f", "0", "nope", "否", "不是", "不", "没有", "无", "不会", "不能", "不对"}
UNKNOWN_WORDS = {"unknown", "u", "?", "dk", "dunno", "don't know", "dont know", "not sure",
                 "n/a", "na", "skip", "不知道", "不清楚", "不确定", "未知", "跳过"}

_UNIT_SECONDS = {
    "ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001, "毫秒": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "秒": 1, "秒钟": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60, "分": 60, "分钟": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "小时": 3600, "时": 3600,
    "d": 86400, "day": 86400, "days": 86400, "天": 86400,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z\u4e00-\u9fff]+)", re.IGNORECASE)
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


class AnswerError(UserError):
    """An answer that does not fit its question (shown in one line; the question is asked again)."""


class Unknown:
    """The engineer does not know: no field is set."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown()


class ParsedAnswer(BaseModel):
    """The fields one answer sets and how it was given."""

    fields: dict[str, Any] = Field(default_factory=dict)
    source: str = Field("answer", description="answer | paste")
    parser: Optional[str] = Field(None, description="facts.pasted parser used for a paste")


def _clean(text: str) -> str:
    return " ".join(str(text).strip().split()).strip("。.!！").strip()


def is_unknown(text: str) -> bool:
    return _clean(text).lower() in UNKNOWN_WORDS


def parse_yes_no(text: str) -> bool:
    word = _clean(text).lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise AnswerError(f"expected yes or no (是/否), or unknown; got {_short(text)}")


def _to_number(text: str) -> float:
    raw = text.replace(",", "").replace("_", "").strip()
    if not _NUMBER.match(raw):
        raise ValueError(raw)
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``1h30m``, ``1:00:00``, ``4 min``, ``500ms``, ``1 小时`` …"""
    raw = _clean(text).lower()
    if not raw:
        raise AnswerError("expected a duration such as 90s, 30m, 1h30m or 1:00:00; got nothing")
    try:
        return _check_duration(_to_number(raw), text)
    except ValueError:
        pass
    if re.fullmatch(r"\d+(?::\d{1,2}){1,2}(?:\.\d+)?", raw):
        parts = [float(p) for p in raw.split(":")]
        if any(p >= 60 for p in parts[1:]):
            raise AnswerError(f"minutes and seconds must be below 60 in {_short(text)}")
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + part
        return _check_duration(seconds, text)
    compact = raw.replace(" ", "")
    pos, total, seen = 0, 0.0, False
    for match in _PART.finditer(compact):
        unit = _UNIT_SECONDS.get(match.group(2))
        if match.start() != pos or unit is None:
            break
        total += float(match.group(1)) * unit
        pos, seen = match.end(), True
    if not seen or pos != len(compact):
        raise AnswerError(f"expected a duration such as 90s, 30m, 1h30m or 1:00:00; got "
                          f"{_short(text)}")
    return _check_duration(total, text)


def _check_duration(seconds: float, text: str) -> float:
    if seconds < 0 or not math.isfinite(seconds):
        raise AnswerError(f"a duration cannot be negative: {_short(text)}")
    return float(_whole(round(seconds, 3)))


_UNIT_RANGES = {"port": (1, 65535), "ttl": (1, 255), "ms": (0, None), "s": (0, None)}


def _in_range(value: int | float, unit: Optional[str], text: str) -> int | float:
    low, high = _UNIT_RANGES.get((unit or "").lower(), (None, None))
    whole_only = (unit or "").lower() in ("port", "ttl")
    if (whole_only and not isinstance(value, int)) or (low is not None and value < low) or \
            (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise AnswerError(f"a {unit} is a {'whole ' if whole_only else ''}number in {span}; got "
                          f"{_short(text)}")
    return value


def parse_number(text: str, unit: Optional[str] = None) -> int | float:
    raw = _clean(text)
    if unit and raw.lower().endswith(unit.lower()):
        raw = raw[: -len(unit)].strip()
    try:
        return _in_range(_whole(_to_number(raw)), unit, text)
    except ValueError:
        pass
    if unit and unit.lower() in ("ms", "s"):
        try:  # a KeepAliveTime in ms typed as "2h" or "5 min"
            seconds = parse_duration(raw)
        except AnswerError:
            pass
        else:
            return _in_range(_whole(round(seconds * (1000 if unit.lower() == "ms" else 1), 3)),
                             unit, text)
    hint = f" ({unit})" if unit else ""
    raise AnswerError(f"expected a number{hint}; got {_short(text)}")


def parse_choice(question, text: str, lang: str = "en") -> Any:
    raw = _clean(text)
    choices = question.choices
    if raw.isdigit() and 1 <= int(raw) <= len(choices):
        return choices[int(raw) - 1].value
    low = raw.lower()
    for choice in choices:
        if low == str(choice.value).lower() or low in (choice.label.en.lower(), choice.label.zh):
            return choice.value
    listing = ", ".join(f"{i}={c.value}" for i, c in enumerate(choices, 1))
    raise AnswerError(f"expected one of {listing}; got {_short(text)}")


def _short(text: str) -> str:
    one = " ".join(str(text).split())
    return repr(one if len(one) <= 40 else one[:37] + "...")


def parse_direct(question, text: str, lang: str = "en") -> Any:
    """The value of a non-paste answer (raises AnswerError)."""
    kind = question.answer
    if kind == "yes_no":
        return parse_yes_no(text)
    if kind == "number":
        return parse_number(text, question.unit)
    if kind == "duration":
        return parse_duration(text)
    if kind == "choice":
        return parse_choice(question, text, lang)
    raise AnswerError(f"question {question.id} takes pasted text")


def parse_paste(question, text: str, *, port: Optional[int] = None,
                alternates: tuple = ()) -> ParsedAnswer:
    """Pasted output through the question's parser; ``alternates`` are questions that set the
    same field directly (their typed form is accepted as a short answer)."""
    from .pasted import parse
    from .pasted.context import context_facts

    stripped = str(text).strip()
    if "\n" not in stripped:
        for alt in alternates:
            try:
                return ParsedAnswer(fields={alt.sets: parse_direct(alt, stripped)})
            except AnswerError:
                continue
    if not stripped:
        raise AnswerError("nothing was pasted (paste the output, then a line with a single '.')")
    model = parse(question.parser, stripped)  # UserError naming the parser when it does not fit
    fields = context_facts(question.parser, model, port=port)
    if not fields:
        raise AnswerError(f"the pasted {question.parser} output does not decide "
                          f"{question.sets}; answer unknown or paste more")
    return ParsedAnswer(fields=fields, source="paste", parser=question.parser)


def parse_answer(question, text: Any, *, lang: str = "en", port: Optional[int] = None,
                 alternates: tuple = ()) -> ParsedAnswer | Unknown:
    """The fields ``text`` sets for ``question``; :data:`UNKNOWN` for an unknown answer."""
    if text is None:
        return UNKNOWN
    if isinstance(text, bool):  # YAML turned yes/no into a boolean
        text = "yes" if text else "no"
    text = str(text)
    if is_unknown(text):
        return UNKNOWN
    if question.answer == "text":
        if not question.parser:
            raise AnswerError(f"question {question.id} has no parser for pasted text")
        try:
            return parse_paste(question, text, port=port, alternates=alternates)
        except AnswerError:
            raise
        except UserError as exc:
            raise AnswerError(str(exc)) from None
    return ParsedAnswer(fields={question.sets: parse_direct(question, text, lang)})


def check_answer(question, text: Any, *, alternates: tuple = ()) -> None:
    """Raise AnswerError when ``text`` can never answer ``question`` (answers files are checked
    before the interview starts). A paste is only checked for being that command's output:
    which fields it proves may depend on facts known later (netstat needs the server port)."""
    if question.answer != "text" or text is None or isinstance(text, bool) or is_unknown(str(text)):
        parse_answer(question, text, alternates=alternates)
        return
    from .pasted import parse
    stripped = str(text).strip()
    if "\n" not in stripped:
        for alt in alternates:
            try:
                parse_direct(alt, stripped)
                return
            except AnswerError:
                continue
    if not question.parser:
        raise AnswerError(f"question {question.id} has no parser for pasted text")
    try:
        parse(question.parser, stripped)
    except UserError as exc:
        raise AnswerError(str(exc)) from None


__all__ = ["AnswerError", "check_answer", "ParsedAnswer", "UNKNOWN", "Unknown", "parse_answer",
           "parse_direct", "parse_duration", "parse_number", "parse_yes_no", "parse_choice", "parse_paste",
           "is_unknown"]
