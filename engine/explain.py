"""Explanations answered from data: HOW a conclusion was reached (down to observed facts),
WHY-NOT a conclusion was not reached (the first failing condition of each rule that could
have concluded it, nested through concluded premises), and WHAT-IF some evidence changed."""
from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, Field

from .conditions import first_failure, normalize_evidence
from .kb_model import Text


class FactPremise(BaseModel):
    """An observed (or answered) fact a rule relied on."""

    field: str
    op: str
    expected: Any = None
    actual: Any = None


class HowSupport(BaseModel):
    rule_id: str
    rationale: Text
    cf: float = Field(description="What this rule contributed")
    premises: list[Union[FactPremise, "HowNode"]] = Field(default_factory=list)


class HowNode(BaseModel):
    conclusion: str
    cf: float
    title: Optional[Text] = None
    supports: list[HowSupport] = Field(default_factory=list)


HowSupport.model_rebuild()


def how(inference, conclusion_id: str, _seen: frozenset = frozenset()) -> HowNode:
    """The proof tree of one conclusion (empty supports when nothing concluded it)."""
    kb = inference.kb
    declared = kb.conclusions.get(conclusion_id)
    node = HowNode(conclusion=conclusion_id, cf=inference.cf(conclusion_id),
                   title=declared.title if declared else None)
    state = inference.conclusions.get(conclusion_id)
    if state is None or conclusion_id in _seen:  # stratified KBs have no cycles; be safe
        return node
    seen = _seen | {conclusion_id}
    for just in state.supports:
        rule = kb.rule(just.rule_id)
        premises: list[Union[FactPremise, HowNode]] = [
            FactPremise(field=p.field, op=p.op, expected=p.value, actual=p.actual)
            for p in just.premises]
        premises += [how(inference, c.concluded, seen) for c in just.concluded]
        node.supports.append(HowSupport(rule_id=just.rule_id, rationale=rule.rationale,
                                        cf=just.cf, premises=premises))
    return node


class WhyNot(BaseModel):
    """Why one rule that could conclude something did (or did not) fire."""

    rule_id: str
    conclusion: str
    fired: bool
    condition: Optional[str] = Field(None, description="The first failing condition, rendered")
    field: Optional[str] = None
    actual: Any = Field(None, description="The field's value, or 'unknown'")
    concluded: Optional[str] = Field(None, description="The concluded premise that failed")
    concluded_cf: Optional[float] = None
    nested: list["WhyNot"] = Field(default_factory=list, description="Why-not of that premise")


def why_not(reasoner, inference, conclusion_id: str, _seen: frozenset = frozenset()) -> list[WhyNot]:
    cfs = {cid: state.cf for cid, state in inference.conclusions.items()}
    fired = {j.rule_id for j in inference.fired}
    out = []
    seen = _seen | {conclusion_id}
    for index, rule in enumerate(reasoner.kb.rules):
        if rule.conclude.id != conclusion_id:
            continue
        if rule.id in fired:
            out.append(WhyNot(rule_id=rule.id, conclusion=conclusion_id, fired=True))
            continue
        failure = first_failure(reasoner.compiled.nnf[index], inference.evidence, cfs)
        if failure is None:  # cannot happen when both paths agree; say so rather than guess
            out.append(WhyNot(rule_id=rule.id, conclusion=conclusion_id, fired=False,
                              condition="(condition holds, but the rule did not fire)"))
            continue
        nested = []
        # a premise that is too weak: explain it in turn (a negated one that is too strong
        # was concluded, and HOW explains that)
        if failure.concluded and failure.concluded not in seen and \
                not failure.condition.startswith("not "):
            nested = why_not(reasoner, inference, failure.concluded, seen)
        out.append(WhyNot(rule_id=rule.id, conclusion=conclusion_id, fired=False,
                          condition=failure.condition, field=failure.field,
                          actual=failure.actual if failure.field else None,
                          concluded=failure.concluded, concluded_cf=failure.cf, nested=nested))
    return out


class ConclusionChange(BaseModel):
    id: str
    before: float
    after: float


class InferenceSummary(BaseModel):
    origin: str
    pattern: Optional[str] = None
    conclusions: dict[str, float] = Field(default_factory=dict)


class WhatIf(BaseModel):
    changes: dict[str, Any]
    before: InferenceSummary
    after: InferenceSummary
    changed: list[ConclusionChange] = Field(default_factory=list)


def what_if(reasoner, evidence: dict[str, Any], changes: dict[str, Any]) -> WhatIf:
    """Reason before and after applying ``changes`` (a value of None removes the field:
    it becomes unknown) and list every conclusion whose cf moved."""
    changed_evidence = dict(normalize_evidence(evidence))
    for name, value in changes.items():
        if value is None:
            changed_evidence.pop(name, None)
        else:
            changed_evidence[name] = value
    before, after = reasoner.infer_many([evidence, changed_evidence])
    b, a = before.summary(), after.summary()
    moved = [ConclusionChange(id=cid, before=b["conclusions"].get(cid, 0.0),
                              after=a["conclusions"].get(cid, 0.0))
             for cid in sorted(set(b["conclusions"]) | set(a["conclusions"]))
             if abs(b["conclusions"].get(cid, 0.0) - a["conclusions"].get(cid, 0.0)) > 1e-9]
    return WhatIf(changes=changes, before=InferenceSummary(**b), after=InferenceSummary(**a),
                  changed=moved)
