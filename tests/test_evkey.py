"""engine._evkey (the compiled normalize_evidence and Reasoner.run_key): exactly the Python
results, or None where only the Python code knows the answer."""
from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from engine import Reasoner, load_kb
from engine import conditions
from engine.analysis import gather
from engine.conditions import _normalize_each, normalize_evidence
from engine.run_class import _key_plan
from facts.errors import UserError
from leakcheck import growth

_evkey = conditions._evkey
pytestmark = pytest.mark.skipif(_evkey is None, reason="engine._evkey is not built")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reasoner():
    with Reasoner(load_kb()) as r:
        yield r


def _plan(reasoner):
    numeric, others = _key_plan(reasoner.compiled)
    return tuple((n, tuple(c)) for n, c in numeric), others


def _python_key(reasoner, normalized, monkeypatch):
    monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    try:
        return reasoner.run_key(normalized)
    finally:
        monkeypatch.delenv("RSTSLEUTH_NO_CEXT")


def _check(reasoner, evidence, monkeypatch) -> tuple[bool, bool]:
    """Compare both steps; returns whether C answered each (not None)."""
    normalized = _evkey.normalize(evidence)
    by_c = normalized is not None
    if by_c:
        slow = _normalize_each(evidence)
        assert normalized == slow and list(normalized) == list(slow)
        assert [type(v) for v in normalized.values()] == [type(v) for v in slow.values()]
    else:
        normalized = _normalize_each(evidence)
    numeric, others = _plan(reasoner)
    key = _evkey.run_key(normalized, numeric, others)
    if key is not None:
        assert key == _python_key(reasoner, normalized, monkeypatch), evidence
        # the types are part of the key: compare them element by element too
        assert key[2] == _python_key(reasoner, normalized, monkeypatch)[2]
    return by_c, key is not None


def _capture_evidence(kb):
    for path in sorted((ROOT / "examples").glob("*.pcap")) + \
            sorted((ROOT / "examples" / "lab_captures").rglob("*.pcap")):
        for _side, _rst, ev, _dual in gather(str(path), None, kb).jobs:
            yield ev


def test_same_as_python_on_the_kb_test_cases(reasoner, monkeypatch):
    answered = [0, 0]
    cases = [case.facts for rule in reasoner.kb.rules for case in rule.tests]
    for facts in cases:
        got = _check(reasoner, dict(facts), monkeypatch)
        answered = [a + g for a, g in zip(answered, got)]
    assert answered[0] > len(cases) * 0.9 and answered[1] > len(cases) * 0.5, answered


def test_same_as_python_on_capture_evidence(reasoner, monkeypatch):
    count = 0
    for ev in _capture_evidence(reasoner.kb):
        normalized_by_c, keyed_by_c = _check(reasoner, ev, monkeypatch)
        assert normalized_by_c  # evidence built from facts is plain
        count += 1
    assert count >= 10


def test_same_as_python_or_none_on_random_evidence(reasoner, monkeypatch):
    class Int(int):
        pass

    class Str(str):
        pass

    rng = random.Random(23)
    numeric, others = _plan(reasoner)
    names = [n for n, _ in numeric] + list(others)
    constants = [c for _, cs in numeric for c in cs]
    pool = [None, 0, 1, -3, 7.5, 1e300, -1e300, 2 ** 80, True, False, "x", "", [1, "a"], [],
            (1, 2), {3}, math.nan, math.inf, -math.inf, Int(5), Str("s"), [[1]], 3600.4, 253]
    answered = [0, 0]
    for _ in range(4000):
        evidence = {name: rng.choice(pool + constants)
                    for name in rng.sample(names, rng.randint(0, len(names)))}
        got = _check(reasoner, evidence, monkeypatch)
        answered = [a + g for a, g in zip(answered, got)]
    assert 0 < answered[0] < 4000 and 0 < answered[1] < 4000, answered


def test_the_switch_and_the_wiring(reasoner, monkeypatch):
    monkeypatch.delenv("RSTSLEUTH_NO_CEXT", raising=False)
    evidence = {"ttl": 253, "idle_before_s": 3600.4, "syn_seen": True, "gone": None}
    assert normalize_evidence(evidence) == {"ttl": 253, "idle_before_s": 3600.4, "syn_seen": True}
    calls = []
    monkeypatch.setattr(conditions._evkey, "normalize",
                        lambda ev: calls.append(ev) or _normalize_each(ev))
    normalize_evidence(evidence)
    assert len(calls) == 1
    monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    normalize_evidence(evidence)
    assert len(calls) == 1


def test_bad_arguments_raise_not_crash():
    with pytest.raises(TypeError):
        _evkey.run_key({}, (("ttl",),), ())
    with pytest.raises(TypeError):
        _evkey.run_key({}, [], ())
    assert _evkey.normalize([("a", 1)]) is None  # not a dict: Python's business
    # a comparison that raises propagates
    class Bad(float):
        def __lt__(self, other):
            raise ValueError("no")
    with pytest.raises(ValueError):
        _evkey.run_key({"x": 1.0}, (("x", (Bad(1.0),)),), ())


def test_no_leaks(reasoner):
    numeric, others = _plan(reasoner)
    evidence = {"ttl": 253, "idle_before_s": 3600.4, "syn_seen": True, "flags": "RST",
                "baseline_ttl_conn_values": [64, 63], "gone": None}

    def run(n):
        for _ in range(n):
            normalized = _evkey.normalize(evidence)
            _evkey.run_key(normalized, numeric, others)
            _evkey.run_key({"ttl": "x"}, numeric, others)  # the fallback path
    assert growth(run) < 20000


def test_merged_semantics():
    first = {"a": 1, "b": None, "skip": 2, "c": "x"}
    out = _evkey.merged(first, frozenset({"skip"}), {"d": None, "a": 9, "e": [1]}, {},
                        {"skip": 3})
    # skip applies to the first dict only; None is dropped; a key seen before keeps its place
    assert out == {"a": 9, "c": "x", "e": [1], "skip": 3}
    assert list(out) == ["a", "c", "e", "skip"]
    assert _evkey.merged({}, set()) == {}
    for bad in [(), ({},), ({}, {}), ({}, set(), [("a", 1)]), ([], set())]:
        with pytest.raises(TypeError):
            _evkey.merged(*bad)


def _gathered(monkeypatch, path: str, kb, env: str):
    if env:
        monkeypatch.setenv("RSTSLEUTH_NO_CEXT", env)
    else:
        monkeypatch.delenv("RSTSLEUTH_NO_CEXT", raising=False)
    return [(list(ev.items()), [type(v) for v in ev.values()])
            for _s, _r, ev, _d in gather(path, None, kb).jobs]


def test_gathered_evidence_equals_the_python_path(monkeypatch):
    kb = load_kb()
    paths = [str(p) for p in sorted((ROOT / "examples").glob("*.pcap"))
             + sorted((ROOT / "examples" / "lab_captures").rglob("*.pcap"))]
    corpus = ROOT.parent / "shared" / "corpus"
    if corpus.is_dir():
        paths += [str(p) for p in sorted(corpus.glob("*.pcap*"))[:12]]
    seen = 0
    for path in paths:
        try:
            fast = _gathered(monkeypatch, path, kb, "")
        except UserError:  # a capture the reader refuses is not this test's business
            continue
        assert fast == _gathered(monkeypatch, path, kb, "1"), path
        seen += len(fast)
    assert seen >= 20
