"""Run the test cases embedded in every rule (``tests:`` next to the rule, Semgrep-style).

A case passes when the rule under test fires on the case's facts exactly when the case says
``fires``. ``given`` pre-asserts conclusions with their cf and isolates the rule: concluded
premises read exactly the given cfs (0 when absent), not what other rules would conclude.
Each case runs through durable-rules and through the pure-Python evaluator; a disagreement
between the two is reported as a failure too (it would be an engine bug).
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from .conditions import first_failure, normalize_evidence, render_lit, support
from .kb import KnowledgeBase


class CaseFailure(BaseModel):
    rule_id: str
    case: str
    file: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.rule_id} [{self.case}]: {self.why}"


class KbTestReport(BaseModel):
    rules: int
    cases: int
    passed: int
    failed: int
    failures: list[CaseFailure] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def summary(self) -> str:
        return (f"{self.rules} rules, {self.cases} cases: "
                f"{self.passed} passed, {self.failed} failed")

    def lines(self) -> list[str]:
        return [str(f) for f in self.failures] + [self.summary]


def case_outcome(reasoner, rule_index: int, case) -> tuple[bool, str | None]:
    """(passed, why it failed) for one embedded case of one rule."""
    evidence = normalize_evidence(case.facts)
    given = dict(case.given)
    durable_strengths, _order, _notes = reasoner.fire(evidence, given=given)
    python_strengths, _ = reasoner.fire_python(evidence, given=given)
    fired = rule_index in durable_strengths
    if fired != (rule_index in python_strengths):
        return False, (f"engine disagreement: durable-rules {'fired' if fired else 'did not fire'}"
                       f", the Python evaluator {'did not' if fired else 'did'}")
    expected = case.expect == "fires"
    if fired == expected:
        return True, None
    node = reasoner.compiled.nnf[rule_index]
    if expected:
        failure = first_failure(node, evidence, given)
        if failure is None:
            return False, "expected to fire, did not"
        if failure.field:
            actual = failure.actual
            return False, (f"expected to fire, did not: {failure.condition} is not true "
                           f"({failure.field} is {actual!r})" if actual != "unknown" else
                           f"expected to fire, did not: {failure.condition} is not true "
                           f"({failure.field} is unknown)")
        return False, (f"expected to fire, did not: {failure.condition} is not true "
                       f"(given cf {failure.cf:g})")
    proof = support(node, evidence, given)
    because = [render_lit(lit) for lit in (proof[1] if proof else [])]
    because += [f"concluded {cid} (cf {cf:g})" for cid, cf in (proof[2] if proof else [])]
    return False, "expected not to fire, fired on: " + ("; ".join(because) or "nothing")


def run_cases(kb: KnowledgeBase, reasoner=None) -> KbTestReport:
    """Every embedded case of every rule; ``reasoner`` defaults to a new one over ``kb``."""
    own = reasoner is None
    if own:
        from .reasoner import Reasoner
        reasoner = Reasoner(kb)
    try:
        failures: list[CaseFailure] = []
        cases = 0
        for index, rule in enumerate(kb.rules):
            for case in rule.tests:
                cases += 1
                passed, why = case_outcome(reasoner, index, case)
                if not passed:
                    src = rule.source
                    failures.append(CaseFailure(rule_id=rule.id, case=case.name,
                                                file=src.file if src else "<kb>",
                                                line=src.line if src else 0, why=why or ""))
        return KbTestReport(rules=len(kb.rules), cases=cases, passed=cases - len(failures),
                            failed=len(failures), failures=failures)
    finally:
        if own:
            reasoner.close()
