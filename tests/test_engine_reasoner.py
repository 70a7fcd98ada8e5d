"""Reasoner behaviour on a small hand-made KB: chaining, certainty, origin/pattern
thresholds, HOW, WHY-NOT, WHAT-IF, infer_many."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import KBError, Reasoner
from engine.explain import FactPremise, HowNode
from engine.kb import KnowledgeBase
from engine.kb_model import Conclusion, Rule


def make_rule(rule_id, when, conclude, cf):
    return Rule.model_validate({
        "id": rule_id, "rev": 2, "status": "stable", "title": {"en": rule_id, "zh": rule_id},
        "rationale": {"en": f"why {rule_id}", "zh": f"为何 {rule_id}"}, "references": ["test"],
        "when": when, "conclude": {"id": conclude, "cf": cf},
        "tests": [{"name": "a", "expect": "fires"}, {"name": "b", "expect": "does_not_fire"}]})


RULES = [
    make_rule("ttl.off", {"field": "ttl_matches_baseline", "op": "==", "value": False},
              "finding.ttl_off", 0.8),
    make_rule("ipid.off", {"all": [{"field": "ip_id_in_sequence", "op": "==", "value": False},
                                   {"field": "ip_id_zero", "op": "==", "value": True}]},
              "finding.ttl_off", 0.5),
    make_rule("mid.ttl", {"concluded": "finding.ttl_off", "min_cf": 0.6},
              "origin.middle_device", 0.9),
    make_rule("mid.dual", {"field": "dual_peer_sent_rst", "op": "==", "value": False},
              "origin.middle_device", 0.95),
    make_rule("end.dual", {"field": "dual_peer_sent_rst", "op": "==", "value": True},
              "origin.endpoint", 0.95),
    make_rule("end.default", {"not": {"concluded": "origin.middle_device", "min_cf": 0.2}},
              "origin.endpoint", 0.25),
    make_rule("idle", {"all": [{"field": "idle_before_s", "op": ">=", "value": 300},
                               {"concluded": "origin.middle_device", "min_cf": 0.5}]},
              "pattern.idle_timeout", 0.7),
    make_rule("idle.fw", {"all": [{"concluded": "pattern.idle_timeout", "min_cf": 0.3},
                                  {"field": "firewall_log_reason", "op": "matches",
                                   "value": "idle"}]},
              "subtype.firewall_idle", 0.6),
    make_rule("not.idle", {"field": "idle_before_s", "op": "<", "value": 5},
              "pattern.idle_timeout", -0.5),
]
CONCLUSIONS = {
    "origin.middle_device": Conclusion.model_validate({
        "id": "origin.middle_device", "kind": "origin", "title": {"en": "A middle device", "zh": "中间设备"},
        "description": {"en": "d", "zh": "d"}}),
}
MIDDLE_IDLE = {"ttl_matches_baseline": False, "ip_id_in_sequence": False, "ip_id_zero": True,
               "idle_before_s": 3600.2, "firewall_log_reason": "idle_timeout"}


@pytest.fixture(scope="module")
def reasoner():
    r = Reasoner(KnowledgeBase(path=Path("t"), rules=RULES, conclusions=CONCLUSIONS))
    yield r
    r.close()


def test_chaining_and_certainty(reasoner):
    inf = reasoner.infer(MIDDLE_IDLE)
    assert inf.cf("finding.ttl_off") == pytest.approx(0.9)        # 0.8 + 0.5 * 0.2
    assert inf.cf("origin.middle_device") == pytest.approx(0.81)  # 0.9 * 0.9
    assert inf.cf("pattern.idle_timeout") == pytest.approx(0.567)  # 0.7 * min(0.81)
    assert inf.cf("subtype.firewall_idle") == pytest.approx(0.3402)  # 0.6 * 0.567
    assert inf.cf("origin.endpoint") == 0.0
    assert inf.origin == "middle_device"
    assert inf.pattern == "idle_timeout"
    assert inf.ranked("subtype") == [("subtype.firewall_idle", pytest.approx(0.3402))]
    assert [j.rule_id for j in inf.fired] == ["ttl.off", "ipid.off", "mid.ttl", "idle", "idle.fw"]
    assert len(inf.trace) == 5 and inf.trace[0].startswith("1. ttl.off r2 -> finding.ttl_off +0.80")
    state = inf.conclusions["origin.middle_device"]
    assert state.kind == "origin" and state.supports[0].concluded[0].concluded == "finding.ttl_off"
    just = inf.conclusions["finding.ttl_off"].supports[1]
    assert {(p.field, p.op, p.value, p.actual) for p in just.premises} == {
        ("ip_id_in_sequence", "==", False, False), ("ip_id_zero", "==", True, True)}


def test_weak_premise_blocks_chain(reasoner):
    inf = reasoner.infer({"ip_id_in_sequence": False, "ip_id_zero": True, "idle_before_s": 400})
    assert inf.cf("finding.ttl_off") == 0.5  # below mid.ttl's 0.6
    assert inf.cf("origin.middle_device") == 0.0
    assert inf.cf("origin.endpoint") == 0.25
    assert inf.origin == "undetermined"  # 0.25 is below the 0.3 an origin needs


def test_origin_needs_margin_and_threshold(reasoner):
    # dual says the peer did send it (endpoint 0.95) and TTL says middle (0.72): margin 0.23
    inf = reasoner.infer({"dual_peer_sent_rst": True, "ttl_matches_baseline": False})
    assert inf.origin == "endpoint"
    # add IP ID evidence: middle 0.81 against endpoint 0.95 is a margin of 0.14: too close
    close = reasoner.infer({"dual_peer_sent_rst": True, "ttl_matches_baseline": False,
                            "ip_id_in_sequence": False, "ip_id_zero": True})
    assert close.cf("origin.middle_device") == pytest.approx(0.81)
    assert close.origin == "undetermined"
    # endpoint 0.25 alone is below 0.3
    assert reasoner.infer({}).origin == "undetermined"
    assert reasoner.infer({}).pattern is None


def test_negative_evidence_combines(reasoner):
    inf = reasoner.infer({"dual_peer_sent_rst": False, "idle_before_s": 3})
    assert inf.cf("pattern.idle_timeout") == pytest.approx(-0.5)
    assert inf.pattern is None and inf.ranked("pattern") == []


def test_how_goes_down_to_observed_facts(reasoner):
    tree = reasoner.infer(MIDDLE_IDLE).how("subtype.firewall_idle")
    assert isinstance(tree, HowNode) and tree.cf == pytest.approx(0.3402)
    support = tree.supports[0]
    assert support.rule_id == "idle.fw" and support.rationale.zh == "为何 idle.fw"
    facts = [p for p in support.premises if isinstance(p, FactPremise)]
    assert facts[0].field == "firewall_log_reason" and facts[0].actual == "idle_timeout"
    pattern = next(p for p in support.premises if isinstance(p, HowNode))
    assert pattern.conclusion == "pattern.idle_timeout"
    origin = next(p for p in pattern.supports[0].premises if isinstance(p, HowNode))
    assert origin.title.en == "A middle device"
    ttl = next(p for p in origin.supports[0].premises if isinstance(p, HowNode))
    assert {s.rule_id for s in ttl.supports} == {"ttl.off", "ipid.off"}
    assert all(isinstance(p, FactPremise) for s in ttl.supports for p in s.premises)
    assert reasoner.infer({}).how("subtype.firewall_idle").supports == []


def test_why_not_names_first_failure_and_nests(reasoner):
    answers = reasoner.why_not({"ttl_matches_baseline": True, "idle_before_s": 600},
                               "pattern.idle_timeout")
    by_rule = {a.rule_id: a for a in answers}
    idle = by_rule["idle"]
    assert not idle.fired and idle.concluded == "origin.middle_device"
    assert idle.concluded_cf == 0.0
    nested = {n.rule_id: n for n in idle.nested}
    assert nested["mid.dual"].field == "dual_peer_sent_rst" and nested["mid.dual"].actual == "unknown"
    deeper = {n.rule_id: n for n in nested["mid.ttl"].nested}
    assert deeper["ttl.off"].condition == "ttl_matches_baseline == false"
    assert deeper["ttl.off"].actual is True
    assert by_rule["not.idle"].condition == "idle_before_s < 5" and by_rule["not.idle"].actual == 600
    fired = reasoner.why_not(MIDDLE_IDLE, "pattern.idle_timeout")
    assert {a.rule_id: a.fired for a in fired} == {"idle": True, "not.idle": False}
    assert reasoner.why_not({}, "no.such") == []


def test_what_if_reports_changes(reasoner):
    result = reasoner.what_if({"ttl_matches_baseline": True}, {"ttl_matches_baseline": False})
    assert result.before.origin == "undetermined" and result.after.origin == "middle_device"
    changed = {c.id: (c.before, c.after) for c in result.changed}
    assert changed["origin.middle_device"] == (0.0, pytest.approx(0.72))
    assert changed["origin.endpoint"] == (0.25, 0.0)
    removed = reasoner.what_if(MIDDLE_IDLE, {"firewall_log_reason": None})
    assert [c.id for c in removed.changed] == ["subtype.firewall_idle"]


def test_infer_many_reasons_once_per_distinct_evidence(reasoner, monkeypatch):
    calls = []
    original = reasoner.fire
    monkeypatch.setattr(reasoner, "fire", lambda ev, given=None: calls.append(ev) or original(ev))
    evidences = [dict(MIDDLE_IDLE), {"idle_before_s": 3}, dict(MIDDLE_IDLE, ttl=None),
                 {"dual_peer_sent_rst": True}, {"dual_peer_sent_rst": 1}]
    out = reasoner.infer_many(evidences)
    assert len(out) == 5 and out[0] is out[2]          # None is unknown: same evidence
    assert out[3] is not out[4]                        # True and 1 are different evidence
    assert len(calls) == 4
    assert out[3].origin == "endpoint" and out[4].cf("origin.endpoint") == 0.25


def test_infer_many_shares_runs_but_not_foreign_evidence(reasoner, monkeypatch):
    calls = []
    original = reasoner.fire
    monkeypatch.setattr(reasoner, "fire", lambda ev, given=None: calls.append(ev) or original(ev))
    a, b, c = reasoner.infer_many([dict(MIDDLE_IDLE, server_ip="10.0.0.1"),
                                   dict(MIDDLE_IDLE, server_ip="10.0.0.2"),
                                   dict(MIDDLE_IDLE, server_ip="10.0.0.1")])
    assert len(calls) == 1                              # server_ip is read by no rule
    assert a is c and a is not b
    assert (a.evidence["server_ip"], b.evidence["server_ip"]) == ("10.0.0.1", "10.0.0.2")
    assert a.summary() == b.summary()


def test_ten_thousand_events_of_twenty_stories_within_a_second(reasoner):
    import time
    stories = [dict(MIDDLE_IDLE, idle_before_s=300.0 + i * 7) for i in range(20)]
    events = [dict(stories[i % 20], server_ip=f"10.0.{i % 20}.1") for i in range(10_000)]
    started = time.perf_counter()
    out = reasoner.infer_many(events)
    elapsed = time.perf_counter() - started
    assert len({id(x) for x in out}) == 20 and out[0].origin == "middle_device"
    assert elapsed <= 1.0, f"10 000 events took {elapsed:.2f} s"


def test_durable_and_python_paths_agree(reasoner):
    from engine.conditions import normalize_evidence
    for evidence in (MIDDLE_IDLE, {}, {"dual_peer_sent_rst": False, "idle_before_s": 3}):
        ev = normalize_evidence(evidence)
        assert reasoner.fire(ev)[0] == reasoner.fire_python(ev)[0]


def test_cycle_is_a_kb_error():
    rules = [make_rule("a", {"concluded": "finding.b"}, "finding.a", 0.5),
             make_rule("b", {"concluded": "finding.a"}, "finding.b", 0.5)]
    with pytest.raises(KBError, match="cycle"):
        Reasoner(KnowledgeBase(path=Path("c"), rules=rules))


def test_unknown_extra_keys_are_fine(reasoner):
    inf = reasoner.infer(dict(MIDDLE_IDLE, server_ip="10.0.0.1", client_ip="10.0.0.2",
                              cross_matched_devices=["asa"]))
    assert inf.origin == "middle_device"


@pytest.mark.parametrize("middle,endpoint,expected", [
    (0.7, 0.5, "middle_device"),   # margin exactly 0.2 (0.19999999999999996 in floats)
    (0.7, 0.51, "undetermined"),
    (0.3, -0.4, "middle_device"),  # a negative other origin counts as 0
    (0.29, 0.0, "undetermined"),
    (0.2, 0.6, "endpoint"),
])
def test_origin_threshold_boundaries(middle, endpoint, expected):
    rules = [make_rule("m", {"field": "ttl", "op": "exists", "value": True}, "origin.middle_device", middle),
             make_rule("e", {"field": "ttl", "op": "exists", "value": True}, "origin.endpoint", endpoint),
             make_rule("u", {"field": "ttl", "op": "exists", "value": True}, "origin.undetermined", 0.9)]
    with Reasoner(KnowledgeBase(path=Path("o"), rules=rules)) as reasoner:
        assert reasoner.infer({"ttl": 64}).origin == expected
