"""The verdict of an interview (``rstsleuth.ask/1``): the same Diagnosis, FixOut, EvidenceItem
and HowTree objects ``analyze`` puts in its report, built by the same functions
(``report_build.diagnoses_for``, ``fixes_for``, ``evidence_items``, ``fixparams.compute``),
plus the interview's own record: every fact with how it is known, and the answers given."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from . import fixparams
from .report_build import diagnoses_for, evidence_items, fired_rules, fixes_for
from .report_model import (Diagnosis, EvidenceItem, FiredRule, FixOut, HowTree, KbInfo, Origin,
                           Pattern)

SCHEMA_ID = "rstsleuth.ask/1"


class _V(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactOut(_V):
    field: str
    value: Any
    source: Literal["answer", "paste", "capture"]
    question: Optional[str] = None
    detail: Optional[str] = None


class AnswerOut(_V):
    question: str
    answer: str
    fields: dict[str, Any] = Field(default_factory=dict)


class Verdict(_V):
    schema_: Literal["rstsleuth.ask/1"] = Field(SCHEMA_ID, alias="schema")
    tool: str = "rstsleuth"
    version: str
    lang: Literal["en", "zh"] = "en"
    kb: KbInfo
    stopped: Literal["settled", "quit"] = Field(description="settled: no remaining question "
                                                "could change the origin or the top diagnosis")
    capture: Optional[str] = Field(None, description="Capture (and reset) whose facts were used")
    origin: Origin
    origin_confidence: float = Field(ge=0, le=1)
    pattern: Optional[Pattern] = None
    top_diagnosis: Optional[Diagnosis] = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    fixes: list[FixOut] = Field(default_factory=list)
    evidence: list[EvidenceItem] = Field(default_factory=list)
    how: list[HowTree] = Field(default_factory=list)
    fired: list[FiredRule] = Field(default_factory=list)
    facts: list[FactOut] = Field(default_factory=list, description="Every known fact and its source")
    answers: list[AnswerOut] = Field(default_factory=list)
    questions_asked: int
    notes: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


def how_trees(inf, origin: str, pattern: Optional[str], top: Optional[Diagnosis]) -> list[HowTree]:
    trees = []
    targets = ([f"origin.{origin}"] if origin != "undetermined" else []) + \
        ([f"pattern.{pattern}"] if pattern else []) + ([top.id] if top else [])
    for cid in targets:
        if inf.cf(cid) > 0:
            node = inf.how(cid).model_dump()
            trees.append(HowTree(conclusion=node.get("conclusion", cid),
                                 title=str((node.get("title") or {}).get("en", cid)),
                                 cf=float(node.get("cf", 0)), supports=node.get("supports", [])))
    return trees


def build_verdict(interview) -> Verdict:
    from .analysis import VERSION
    kb, inf, lang = interview.kb, interview.inference, interview.lang
    evidence = interview.evidence
    origin = inf.origin
    origin_cf = max(0.0, inf.cf(f"origin.{origin}")) if origin != "undetermined" else 0.0
    diagnoses = diagnoses_for(kb, inf, origin, lang)
    params = fixparams.compute(evidence, kb)
    port = evidence.get("conn_server_port")
    port = port if isinstance(port, int) and not isinstance(port, bool) else 0
    fixes = fixes_for(kb, inf, origin, diagnoses, port, params, lang)
    facts = []
    for name in sorted(evidence):
        fact = interview.how_fact(name)
        if fact.known and fact.source:
            facts.append(FactOut(field=name, value=fact.value, source=fact.source,
                                 question=fact.question, detail=fact.detail))
    top = diagnoses[0] if diagnoses else None
    return Verdict(
        version=VERSION, lang=lang, kb=KbInfo(path=str(kb.path), rules=len(kb.rules)),
        stopped=interview.stopped or "quit", capture=interview.base_detail,
        origin=origin, origin_confidence=round(min(1.0, origin_cf), 3), pattern=inf.pattern,
        top_diagnosis=top, diagnoses=diagnoses, fixes=fixes,
        evidence=evidence_items(inf, origin, diagnoses, lang),
        how=how_trees(inf, origin, inf.pattern, top), fired=fired_rules(inf), facts=facts,
        answers=[AnswerOut(question=s.question, answer=s.answer, fields=s.fields)
                 for s in interview.steps],
        questions_asked=len(interview.steps), notes=list(interview.notes))


def verdict_json_schema() -> dict[str, Any]:
    schema = Verdict.model_json_schema(by_alias=True)
    schema["title"] = SCHEMA_ID
    return schema
