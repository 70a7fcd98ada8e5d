"""Each durable-rules 2.0.28 hazard guarded by engine.host, tested."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from engine.compile import compile_kb, unsafe_parts
from engine.host import MAX_LIVE_SESSIONS, EngineError, RulesetHost
from engine.kb import KnowledgeBase
from engine.kb_model import Rule
from engine.reasoner import Reasoner


def make_rule(rule_id, when, conclude, cf=0.8):
    return Rule.model_validate({
        "id": rule_id, "rev": 1, "status": "stable", "title": {"en": "t", "zh": "t"},
        "rationale": {"en": "r", "zh": "r"}, "references": ["test"], "when": when,
        "conclude": {"id": conclude, "cf": cf},
        "tests": [{"name": "a", "expect": "fires"}, {"name": "b", "expect": "does_not_fire"}]})


def small_kb(tag: str = "a") -> KnowledgeBase:
    return KnowledgeBase(path=Path(tag), rules=[
        make_rule("ttl.off", {"field": "ttl_matches_baseline", "op": "==", "value": False},
                  "finding.ttl_off", 0.8),
        make_rule("mid", {"all": [{"concluded": "finding.ttl_off", "min_cf": 0.5},
                                  {"field": "ttl", "op": ">", "value": 200}]},
                  "origin.middle_device", 0.9),
    ])


def test_three_thousand_inferences_never_exceed_the_session_limit():
    with Reasoner(small_kb()) as reasoner:
        for i in range(3000):
            inference = reasoner.infer({"ttl_matches_baseline": False, "ttl": 250, "frame": i})
            assert inference.cf("origin.middle_device") == pytest.approx(0.72)
        assert reasoner.host.live_sessions == 0


def test_session_guard_refuses_before_durable_would_fail():
    host = RulesetHost({"r": {"all": [{"e": {"t": "ev"}}]}})
    host._sessions.update({str(-i): None for i in range(MAX_LIVE_SESSIONS)})
    with pytest.raises(EngineError, match="too many live durable sessions"):
        with host.session(lambda name, facts: None):
            pass
    host._sessions.clear()
    host.close()


def test_compiled_ruleset_has_no_cross_fact_reference():
    compiled = compile_kb(small_kb())
    text = json.dumps(compiled.ruleset)
    assert unsafe_parts(compiled.ruleset) == []
    # durable spells a cross-fact reference as {"name": ..., "id": ...} or $l/$r arithmetic
    for marker in ('"$l"', '"$r"', '"$mt"', '"$imt"', '"$not"', '"name":'):
        assert marker not in text


def test_unsafe_parts_flags_a_cross_fact_comparison():
    ruleset = {"x": {"all": [{"a": {"t": "ev"}},
                             {"b": {"$and": [{"t": "c"}, {"$gt": {"cf": {"a": "ttl"}}}]}}]}}
    assert unsafe_parts(ruleset)
    assert unsafe_parts({"y": {"all": [{"a": {"$mt": {"x": "a+"}}}]}})


def test_identical_facts_in_one_session_are_all_kept():
    host = RulesetHost({"r": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}}]}})
    matches = []
    with host.session(lambda name, facts: matches.append(facts["e"]["uid"])) as session:
        for _ in range(5):
            assert session.assert_fact({"t": "ev", "n__ttl": 64})
        assert len([f for f in session.facts() if f["t"] == "ev"]) == 5
    assert len(set(matches)) == 5  # five distinct facts, none merged
    host.close()


def test_facts_persist_because_we_assert_instead_of_post():
    host = RulesetHost({"r": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}}]}})
    with host.session(lambda name, facts: None) as session:
        session.assert_fact({"t": "ev", "n__ttl": 64})
        # a posted event would be gone
        assert [f["n__ttl"] for f in session.facts() if f["t"] == "ev"] == [64]
    host.close()


def test_unmatched_fact_is_dropped_visibly_not_raised():
    host = RulesetHost({"r": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}}]}})
    with host.session(lambda name, facts: None) as session:
        assert session.assert_fact({"t": "ev", "n__ttl": 1}) is False
        assert session.dropped and session.dropped[0]["n__ttl"] == 1
    host.close()


DROP_ONLY = """
import sys
sys.path.insert(0, {root!r})
from engine.host import RulesetHost
host = RulesetHost({{"r": {{"all": [{{"e": {{"$and": [{{"t": "ev"}}, {{"n__ttl": 64}}]}}}}]}}}})
for _ in range(1500):
    with host.session(lambda name, facts: None) as session:
        assert session.assert_fact({{"t": "ev", "n__ttl": 1}}) is False
print("survived", host.live_sessions)
"""


def test_sessions_whose_facts_were_all_dropped_are_deleted_safely():
    """durable 2.0.28 segfaults deleting a session that holds only dropped facts; the
    anchor fact prevents it. In a subprocess, so a regression cannot kill the test run."""
    import subprocess
    import sys
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", DROP_ONLY.format(root=root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "survived 0"


def test_conclusion_facts_that_enable_nothing_are_not_asserted():
    with Reasoner(small_kb()) as reasoner:
        asserted = []
        original = reasoner.host.session

        def spying(on_match):
            manager = original(on_match)
            session = manager.__enter__()
            real = session.assert_fact
            session.assert_fact = lambda fact: asserted.append(fact) or real(fact)
            return _Reentered(manager, session)

        reasoner.host.session = spying
        reasoner.infer({"ttl_matches_baseline": True})
        assert [f["t"] for f in asserted] == ["ev"]  # finding.ttl_off at cf 0 enables nothing
        asserted.clear()
        reasoner.infer({"ttl_matches_baseline": False})
        assert [(f["t"], f.get("cf")) for f in asserted] == [("ev", None), ("c", 0.8)]


def test_evidence_matching_nothing_is_noted():
    with Reasoner(small_kb()) as reasoner:
        assert reasoner.infer({"window": 5}).notes == [
            "the evidence matched no rule's evidence pattern"]
        assert reasoner.infer({"ttl_matches_baseline": False}).notes == []


def test_a_dropped_conclusion_fact_a_rule_needs_is_an_engine_error():
    with Reasoner(small_kb()) as reasoner:
        # pretend a premise reads finding.ttl_off at cf >= 0.1: no pattern takes cf 0.05
        reasoner.compiled.thresholds["finding.ttl_off"] = (0.01, None)
        reasoner.kb.rules[0].conclude.cf = 0.05
        with pytest.raises(EngineError, match="dropped conclusion fact finding.ttl_off"):
            reasoner.infer({"ttl_matches_baseline": False})


class _Reentered:
    def __init__(self, manager, session):
        self.manager, self.session = manager, session

    def __enter__(self):
        return self.session

    def __exit__(self, *exc):
        return self.manager.__exit__(*exc)


def test_exception_in_action_raises_engine_error_naming_the_rule():
    with Reasoner(small_kb()) as reasoner:
        def boom(name, facts):
            raise ValueError("injected")
        with pytest.raises(EngineError, match=r"rule ttl\.off failed: ValueError: injected"):
            with reasoner.host.session(boom) as session:
                session.assert_fact(reasoner.compiled.evidence_fact({"ttl_matches_baseline": False}))
        assert reasoner.host.live_sessions == 0
        # the reasoner still works afterwards
        assert reasoner.infer({"ttl_matches_baseline": False}).cf("finding.ttl_off") == 0.8


def test_no_threads_are_started():
    before = set(threading.enumerate())
    with Reasoner(small_kb()) as reasoner:
        for _ in range(20):
            reasoner.infer({"ttl_matches_baseline": False, "ttl": 250})
        assert set(threading.enumerate()) == before


def test_two_reasoners_over_different_kbs_coexist_and_unload():
    first = Reasoner(small_kb("one"))
    other_kb = KnowledgeBase(path=Path("two"), rules=[
        make_rule("ttl.off", {"field": "ttl_matches_baseline", "op": "==", "value": False},
                  "finding.ttl_off", 0.3)])
    second = Reasoner(other_kb)
    assert first.host.name != second.host.name
    evidence = {"ttl_matches_baseline": False, "ttl": 250}
    assert first.infer(evidence).cf("finding.ttl_off") == 0.8
    assert second.infer(evidence).cf("finding.ttl_off") == 0.3
    first.close()
    with pytest.raises(EngineError, match="unloaded"):
        first.infer(evidence)
    assert second.infer(evidence).cf("finding.ttl_off") == 0.3  # unaffected
    second.close()
    # a reload of the same KB registers again without "already registered"
    with Reasoner(small_kb("one")) as again:
        assert again.infer(evidence).cf("origin.middle_device") == pytest.approx(0.72)


def test_an_exception_durable_swallowed_into_the_state_is_still_raised():
    from durable.engine import Promise
    host = RulesetHost({"r": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}}]}},
                       labels={"r": "rule.unwrapped"})
    # bypass our wrapper: the raw durable behaviour is to swallow this into the state
    host.host._ruleset_directory[host.name]._actions["r"] = Promise(lambda c: 1 / 0)
    with pytest.raises(EngineError, match="durable recorded an action failure.*division by zero"):
        with host.session(lambda name, facts: None) as session:
            session.assert_fact({"t": "ev", "n__ttl": 64})  # durable itself raises nothing
    assert host.live_sessions == 0
    host.close()


def test_post_would_consume_the_fact_we_rely_on():
    """Why the host never posts: a posted event is gone after its first match, so a rule
    joining it with a later conclusion fact could never fire."""
    definition = {"r": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}},
                                {"c": {"$and": [{"t": "c"}, {"id": "x"}]}}]},
                  "s": {"all": [{"e": {"$and": [{"t": "ev"}, {"n__ttl": 64}]}}]}}
    host = RulesetHost(definition)
    matched = []
    with host.session(lambda name, facts: matched.append(name)) as session:
        host.host.post(host.name, {"t": "ev", "n__ttl": 64, "sid": session.sid, "uid": 1})
        session.assert_fact({"t": "c", "id": "x"})
    assert "r" not in matched          # the event was consumed
    matched.clear()
    with host.session(lambda name, facts: matched.append(name)) as session:
        session.assert_fact({"t": "ev", "n__ttl": 64})
        session.assert_fact({"t": "c", "id": "x"})
    assert sorted(matched) == ["r", "s"]
    host.close()


def test_reasoning_from_several_threads_is_serialised_and_correct():
    from concurrent.futures import ThreadPoolExecutor
    evidences = [{"ttl_matches_baseline": i % 2 == 0, "ttl": 150 + i % 100} for i in range(400)]
    with Reasoner(small_kb()) as reasoner:
        expected = [reasoner.infer(e).summary() for e in evidences]
        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(lambda e: reasoner.infer(e).summary(), evidences))
        assert got == expected
        assert reasoner.host.live_sessions == 0
