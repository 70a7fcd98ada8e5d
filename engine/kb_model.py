"""Typed model of the knowledge base (the YAML files under ``knowledge/``).

One model per concept: Rule, Conclusion, Fix, Question, Tip, Symptom and the reference
tables. The loader attaches ``source`` (file, line) to every object so validators can report
``file:line:col field.path: message``.
"""
from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
Op = Literal["==", "!=", "<", "<=", ">", ">=", "in", "exists", "matches"]
Status = Literal["stable", "test", "experimental", "deprecated"]
ConclusionKind = Literal["origin", "pattern", "subtype", "finding"]


class _KB(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class Text(_KB):
    """A text in both product languages."""

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)


class Source(_KB):
    file: str
    line: int
    col: int = 1


class Test(_KB):
    """``field op value``; ``exists`` takes value true/false; ``matches`` a regular expression
    (Python ``re`` syntax, compiled and checked at load time, matched with ``search``)."""

    field: str
    op: Op
    value: Any = None


class Concluded(_KB):
    """True when another rule has concluded ``concluded`` with certainty ≥ ``min_cf``."""

    concluded: str
    min_cf: float = Field(0.2, gt=0, le=1)


class AllOf(_KB):
    all: list["Condition"] = Field(min_length=1)


class AnyOf(_KB):
    any: list["Condition"] = Field(min_length=1)


class NotOf(_KB):
    not_: "Condition" = Field(alias="not")


Condition = Union[Test, Concluded, AllOf, AnyOf, NotOf]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


class Conclude(_KB):
    id: str = Field(pattern=ID_PATTERN)
    cf: float = Field(ge=-1, le=1, description="MYCIN certainty factor; negative = evidence against")


class RuleCase(_KB):
    """An embedded test: the facts (and already-concluded ids with their cf) given to the
    engine, and whether this rule must fire on them."""

    name: str
    facts: dict[str, Any] = Field(default_factory=dict)
    given: dict[str, float] = Field(default_factory=dict, description="conclusion id -> cf")
    expect: Literal["fires", "does_not_fire"]


class Rule(_KB):
    id: str = Field(pattern=ID_PATTERN)
    rev: int = Field(ge=1)
    status: Status
    title: Text
    rationale: Text
    references: list[str] = Field(min_length=1)
    when: Condition
    conclude: Conclude
    tests: list[RuleCase] = Field(min_length=2)
    source: Optional[Source] = None


class Conclusion(_KB):
    """Something rules can conclude: an origin, a timing pattern, a sub-type (mind-map leaf)
    or an intermediate finding."""

    id: str = Field(pattern=ID_PATTERN)
    kind: ConclusionKind
    family: Optional[str] = Field(None, description="Mind-map branch for sub-types, e.g. firewall")
    title: Text
    description: Text
    mindmap: list[Text] = Field(default_factory=list, description="The mind map's leaf texts")
    checks: list[Text] = Field(default_factory=list, description="What to check next (flowchart)")
    fixes: list[str] = Field(default_factory=list)
    source: Optional[Source] = None


class Fix(_KB):
    """A remedy. ``steps`` may hold ``{name}`` placeholders filled from the computed
    parameters named in ``params`` (see engine.fixparams); nothing is evaluated."""

    id: str = Field(pattern=ID_PATTERN)
    title: Text
    steps: Text
    params: list[str] = Field(default_factory=list)
    ports: list[int] = Field(default_factory=list, description="Applies to these server ports "
                             "only (empty = any)")
    references: list[str] = Field(default_factory=list)
    source: Optional[Source] = None


AnswerType = Literal["yes_no", "number", "duration", "choice", "text"]


class Choice(_KB):
    value: Any
    label: Text


class Question(_KB):
    id: str = Field(pattern=ID_PATTERN)
    text: Text
    help: Optional[Text] = None
    answer: AnswerType
    unit: Optional[str] = None
    choices: list[Choice] = Field(default_factory=list)
    sets: str = Field(description="The fact field the answer sets")
    parser: Optional[str] = Field(None, description="For pasted text: parser name in facts.pasted")
    source: Optional[Source] = None


class Tip(_KB):
    id: str = Field(pattern=ID_PATTERN)
    text: Text
    related: list[str] = Field(default_factory=list)
    source: Optional[Source] = None


class Symptom(_KB):
    """A row of the scenario map's symptom table."""

    id: str = Field(pattern=ID_PATTERN)
    symptom: Text
    description: Text
    clue: Text
    question: Optional[str] = None
    related: list[str] = Field(default_factory=list)
    source: Optional[Source] = None


class InitialTtl(_KB):
    sender: str
    ttl: int = Field(ge=1, le=255)
    note: Optional[str] = None
    reference: str


class IdleTimeout(_KB):
    id: str = Field(pattern=ID_PATTERN)
    device: str
    family: str = Field(description="firewall | load_balancer | nat | host | proxy")
    seconds: Optional[float] = Field(None, description="None: no default idle timeout")
    sends_rst: str = Field(description="What happens at expiry")
    range: Optional[str] = None
    reference: str


class ReferenceTables(_KB):
    initial_ttls: list[InitialTtl] = Field(default_factory=list)
    idle_timeouts: list[IdleTimeout] = Field(default_factory=list)
    pitfalls: list[Tip] = Field(default_factory=list)
