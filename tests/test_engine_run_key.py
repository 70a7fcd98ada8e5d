"""Reasoner.run_key: evidence sets in one class fire exactly the same rules with the same
strengths, so a capture with thousands of resets reasons once per class."""
from __future__ import annotations

import random

import pytest

from engine import Reasoner, load_kb
from engine.conditions import normalize_evidence


@pytest.fixture(scope="module")
def reasoner():
    with Reasoner(load_kb()) as r:
        yield r


def _cases(kb):
    for rule in kb.rules:
        for case in rule.tests:
            if not case.given:
                yield rule.id, case.facts


def _perturb(facts: dict, rng: random.Random) -> dict:
    out = dict(facts)
    for name, value in facts.items():
        if isinstance(value, float):
            out[name] = value * rng.choice([0.5, 0.99, 1.0, 1.01, 2.0, 10.0]) + rng.uniform(-1, 1)
        elif isinstance(value, int) and not isinstance(value, bool):
            out[name] = value + rng.choice([-100, -1, 0, 1, 100])
    return out


def test_same_run_key_means_same_firing(reasoner):
    rng = random.Random(7)
    same = differ = 0
    for rule_id, facts in _cases(reasoner.kb):
        base = normalize_evidence(facts)
        fired = reasoner.fire(base)[0]
        for _ in range(6):
            other = normalize_evidence(_perturb(facts, rng))
            if reasoner.run_key(other) == reasoner.run_key(base):
                assert reasoner.fire(other)[0] == fired, (rule_id, facts, other)
                same += 1
            else:
                differ += 1
    # the test exercised both outcomes
    assert same > 100 and differ > 100, (same, differ)


def test_interval_classes_split_at_kb_constants(reasoner):
    key = lambda **ev: reasoner.run_key(normalize_evidence(ev))  # noqa: E731
    # no rule draws a line between 3600.2 s and 3601.7 s, but 254 is a TTL rules test for
    assert key(idle_before_s=3600.2, ttl=253) == key(idle_before_s=3601.7, ttl=64)
    assert key(idle_before_s=3600.2, ttl=253) != key(idle_before_s=3600.2, ttl=254)
    assert key(idle_before_s=40.0) != key(idle_before_s=60.0)  # the 50 s idle rules


def test_infer_many_shares_runs_but_keeps_each_evidence(reasoner):
    evs = [{"idle_before_s": 3600.0 + i / 10, "ttl_matches_baseline": False} for i in range(50)]
    infs = reasoner.infer_many(evs)
    assert len({i.run_key for i in infs}) == 1
    assert [i.evidence["idle_before_s"] for i in infs] == [e["idle_before_s"] for e in evs]
    assert all(i.cfs == infs[0].cfs for i in infs)


def test_infer_many_shares_only_identical_evidence(reasoner):
    base = {"ttl": 253, "baseline_ttl_conn": 64, "idle_before_s": 3600.4, "syn_seen": True,
            "cross_matched_devices": ["Cisco ASA"], "server_ip": "192.0.2.1"}
    same = dict(base, cross_matched_devices=["Cisco ASA"])
    other_list = dict(base, cross_matched_devices=["Palo Alto"])
    int_not_bool = dict(base, syn_seen=1)
    other_ip = dict(base, server_ip="192.0.2.2")
    nested = dict(base, extra=[["a"], {"b": 1}])  # unhashable even as tuples: repr stands in
    results = reasoner.infer_many([base, same, other_list, int_not_bool, other_ip, nested,
                                   dict(nested)])
    assert results[0] is results[1]
    assert results[5] is results[6]
    distinct = {id(r) for r in results}
    assert len(distinct) == 5
    assert results[2].evidence["cross_matched_devices"] == ["Palo Alto"]
    assert results[3].evidence["syn_seen"] == 1 and results[3].evidence["syn_seen"] is not True
    # all of them one run class but the bool/int one: fields no rule reads do not split it
    assert results[0].run_key == results[2].run_key == results[4].run_key
    assert results[0].run_key != results[3].run_key


def test_infer_many_without_sharing_still_runs_once_per_class(reasoner, monkeypatch):
    base = {"ttl": 253, "baseline_ttl_conn": 64, "idle_before_s": 3600.4, "syn_seen": True}
    fired = []
    real = reasoner.fire
    monkeypatch.setattr(reasoner, "fire", lambda ev, given=None: fired.append(1) or real(ev, given))
    shared = reasoner.infer_many([base, dict(base)])
    own = reasoner.infer_many([base, dict(base), dict(base, idle_before_s=3601.0)], share=False)
    assert shared[0] is shared[1]
    assert len({id(i) for i in own}) == 3
    assert len(fired) == 2  # one run per call: all three sets are one class
    assert all(i.cfs == shared[0].cfs and i.run_key == shared[0].run_key for i in own)
    assert own[2].evidence["idle_before_s"] == 3601.0
