"""The embedded-case runner: pass, fail with reasons, Semgrep-like summary."""
from __future__ import annotations

from pathlib import Path

from engine.kb import KnowledgeBase
from engine.kb_model import Rule, Source
from engine.kbtest import run_cases


def make_rule(rule_id, when, conclude, tests, line=10):
    rule = Rule.model_validate({
        "id": rule_id, "rev": 1, "status": "stable", "title": {"en": "t", "zh": "t"},
        "rationale": {"en": "r", "zh": "r"}, "references": ["x"], "when": when,
        "conclude": {"id": conclude, "cf": 0.7}, "tests": tests})
    rule.source = Source(file="knowledge/t.yaml", line=line)
    return rule


KB = KnowledgeBase(path=Path("t"), rules=[
    make_rule("ttl.off", {"field": "ttl_matches_baseline", "op": "==", "value": False},
              "finding.ttl_off", [
                  {"name": "differs", "facts": {"ttl_matches_baseline": False}, "expect": "fires"},
                  {"name": "same", "facts": {"ttl_matches_baseline": True}, "expect": "does_not_fire"},
                  {"name": "wrong", "facts": {}, "expect": "fires"}]),
    make_rule("mid", {"all": [{"concluded": "finding.ttl_off", "min_cf": 0.5},
                              {"field": "ttl", "op": ">", "value": 200}]},
              "origin.middle_device", [
                  {"name": "given strong", "facts": {"ttl": 250}, "given": {"finding.ttl_off": 0.6},
                   "expect": "fires"},
                  {"name": "given weak", "facts": {"ttl": 250}, "given": {"finding.ttl_off": 0.4},
                   "expect": "does_not_fire"},
                  # isolation: the facts would let ttl.off conclude 0.7, but only 'given' counts
                  {"name": "not given", "facts": {"ttl": 250, "ttl_matches_baseline": False},
                   "expect": "does_not_fire"},
                  {"name": "wrongly fires", "facts": {"ttl": 250}, "given": {"finding.ttl_off": 0.9},
                   "expect": "does_not_fire"},
                  {"name": "weak given", "facts": {"ttl": 250}, "given": {"finding.ttl_off": 0.1},
                   "expect": "fires"}], line=20),
])


def test_report_counts_and_reasons():
    report = run_cases(KB)
    assert report.summary == "2 rules, 8 cases: 5 passed, 3 failed"
    assert not report.ok
    lines = report.lines()
    assert lines[-1] == report.summary
    by_case = {f.case: f for f in report.failures}
    assert set(by_case) == {"wrong", "wrongly fires", "weak given"}
    assert by_case["wrong"].file == "knowledge/t.yaml" and by_case["wrong"].line == 10
    assert "ttl_matches_baseline == false is not true (ttl_matches_baseline is unknown)" in \
        by_case["wrong"].why
    assert by_case["wrongly fires"].why.startswith("expected not to fire, fired on: ttl > 200")
    assert "concluded finding.ttl_off (cf 0.9)" in by_case["wrongly fires"].why
    assert "(given cf 0.1)" in by_case["weak given"].why
    assert str(by_case["wrong"]).startswith("knowledge/t.yaml:10 ttl.off [wrong]: ")


def test_all_passing():
    good = KnowledgeBase(path=Path("t"), rules=[KB.rules[0].model_copy(
        update={"tests": KB.rules[0].tests[:2]})])
    report = run_cases(good)
    assert report.ok and report.summary == "1 rules, 2 cases: 2 passed, 0 failed"
