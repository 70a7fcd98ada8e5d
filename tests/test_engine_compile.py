"""The shape of the durable compilation: typed keys, `in` as `$or`, regexes decided in
Python, negations pushed to the leaves, disjuncts only where premises mix."""
from __future__ import annotations

import json
from pathlib import Path

from engine.compile import compile_kb, durable_value
from engine.kb import KnowledgeBase
from engine.kb_model import Rule


def make_rule(rule_id, when, conclude="finding.x"):
    return Rule.model_validate({
        "id": rule_id, "rev": 1, "status": "stable", "title": {"en": "t", "zh": "t"},
        "rationale": {"en": "r", "zh": "r"}, "references": ["x"], "when": when,
        "conclude": {"id": conclude, "cf": 0.5},
        "tests": [{"name": "a", "expect": "fires"}, {"name": "b", "expect": "does_not_fire"}]})


def compiled(*rules):
    return compile_kb(KnowledgeBase(path=Path("c"), rules=list(rules)))


def test_in_becomes_or_of_typed_equalities():
    c = compiled(make_rule("a", {"field": "firewall_log_reason", "op": "in",
                                 "value": ["idle_timeout", "policy_deny"]}))
    pattern = c.ruleset["r0d0"]["all"][0]["e"]
    assert pattern == {"$and": [{"t": "ev"}, {"$or": [
        {"s__firewall_log_reason": durable_value("idle_timeout")},
        {"s__firewall_log_reason": durable_value("policy_deny")}]}]}


def test_matches_is_decided_in_python_never_by_durable_regex():
    c = compiled(make_rule("a", {"field": "trigger_excerpt", "op": "matches", "value": r"GET /\d+"}))
    text = json.dumps(c.ruleset)
    assert "$mt" not in text and "$imt" not in text and '"d__0": true' in text
    assert c.evidence_fact({"trigger_excerpt": "x GET /1"})["d__0"] is True
    assert c.evidence_fact({"trigger_excerpt": "x GET /"})["d__0"] is False
    assert "d__0" not in c.evidence_fact({})  # unknown stays absent


def test_negation_is_pushed_to_typed_leaves_with_existence_guard():
    c = compiled(make_rule("a", {"not": {"any": [{"field": "ttl", "op": "<", "value": 64},
                                                 {"field": "dual_available", "op": "==", "value": True}]}}))
    body = c.ruleset["r0d0"]["all"][0]["e"]["$and"][1]
    assert body == {"$and": [{"$gte": {"n__ttl": 64}},
                             {"$and": [{"$ex": {"b__dual_available": 1}},
                                       {"$neq": {"b__dual_available": True}}]}]}


def test_evidence_fact_carries_only_what_patterns_read_under_typed_keys():
    c = compiled(make_rule("a", {"all": [{"field": "ttl", "op": "==", "value": 64},
                                         {"field": "path_mtu", "op": "exists", "value": False}]}))
    fact = c.evidence_fact({"ttl": "64", "path_mtu": 1400, "window": 5})
    # "64" cannot equal 64; strings reach durable only as tokens
    assert fact == {"t": "ev", "s__ttl": durable_value("64"), "e__path_mtu": 1}


def test_concluded_premises_split_only_where_mixed_with_evidence():
    c = compiled(
        make_rule("a", {"field": "ttl", "op": "exists", "value": True}, "finding.a"),
        make_rule("b", {"all": [{"field": "ttl", "op": ">", "value": 1},
                                {"any": [{"concluded": "finding.a", "min_cf": 0.4},
                                         {"field": "window", "op": "==", "value": 0}]},
                                {"not": {"concluded": "finding.a", "min_cf": 0.9}}]}, "finding.b"))
    names = sorted(n for n, d in c.disjuncts.items() if d.rule_index == 1)
    assert names == ["r1d0", "r1d1"]
    first = c.ruleset["r1d0"]["all"]
    assert first[1] == {"c0": {"$and": [{"t": "c"}, {"id": "finding.a"},
                                         {"$gte": {"cf": 0.4}}, {"$lt": {"cf": 0.9}}]}}
    assert c.referenced == [["finding.a"]]
    assert c.thresholds["finding.a"] == (0.4, 0.9)


def test_contradictory_thresholds_compile_to_no_durable_rule():
    c = compiled(make_rule("a", {"all": [{"concluded": "finding.z", "min_cf": 0.8},
                                         {"not": {"concluded": "finding.z", "min_cf": 0.5}}]}))
    assert c.ruleset == {} and c.disjuncts == {}
    from engine.reasoner import Reasoner
    kb = KnowledgeBase(path=Path("e"), rules=c.rules)
    with Reasoner(kb) as reasoner:  # an empty ruleset still registers and reasons
        assert reasoner.infer({"ttl": 1}).fired == []


def test_bad_regex_and_every_broken_rule_reported_at_once():
    import pytest
    from engine.kb import KBError
    from engine.kb_model import Source
    bad = make_rule("bad.re", {"field": "trigger_excerpt", "op": "matches", "value": "GET (["})
    bad.source = Source(file="knowledge/x.yaml", line=7)
    worse = make_rule("bad.re2", {"field": "trigger_excerpt", "op": "matches", "value": "*"})
    with pytest.raises(KBError) as caught:
        compiled(bad, worse)
    assert [p.line for p in caught.value.problems] == [7, 1]
    assert str(caught.value.problems[0]).startswith("knowledge/x.yaml:7:1 rules[bad.re].when: bad regular")
