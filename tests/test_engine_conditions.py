"""The reference semantics: Kleene logic over unknown fields, typed comparisons, MYCIN cf."""
from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from engine import certainty
from engine.conditions import evaluate, normalize_evidence, render, rule_levels
from engine.kb_model import Condition, Rule

COND = TypeAdapter(Condition)


def ev(cond: dict, evidence: dict, cfs: dict | None = None):
    return evaluate(COND.validate_python(cond), normalize_evidence(evidence), cfs or {})


def test_unknown_field_is_unknown_and_not_of_unknown_too():
    test = {"field": "ttl", "op": "==", "value": 64}
    assert ev(test, {}) is None
    assert ev({"not": test}, {}) is None
    assert ev({"not": test}, {"ttl": None}) is None
    assert ev({"not": test}, {"ttl": 63}) is True
    assert ev({"field": "ttl", "op": "!=", "value": 64}, {}) is None


def test_exists_is_the_only_test_for_absence():
    assert ev({"field": "ttl", "op": "exists", "value": False}, {}) is True
    assert ev({"field": "ttl", "op": "exists", "value": True}, {}) is False
    assert ev({"not": {"field": "ttl", "op": "exists", "value": True}}, {}) is True
    assert ev({"field": "ttl", "op": "exists", "value": True}, {"ttl": 0}) is True


def test_kleene_and_or():
    unknown = {"field": "ttl", "op": "==", "value": 64}
    true = {"field": "ip_version", "op": "==", "value": 4}
    false = {"field": "ip_version", "op": "==", "value": 6}
    facts = {"ip_version": 4}
    assert ev({"all": [unknown, false]}, facts) is False
    assert ev({"all": [unknown, true]}, facts) is None
    assert ev({"any": [unknown, true]}, facts) is True
    assert ev({"any": [unknown, false]}, facts) is None
    assert ev({"not": {"any": [unknown, false]}}, facts) is None
    assert ev({"not": {"all": [unknown, false]}}, facts) is True


@pytest.mark.parametrize("cond,value,expected", [
    ({"op": "==", "value": 1}, True, None),          # bool is not a number
    ({"op": "==", "value": "64"}, 64, None),         # nor is a string
    ({"op": "==", "value": 64}, 64.0, True),         # int and float are both numbers
    ({"op": "<", "value": 5}, "4", None),
    ({"op": "<", "value": "m"}, "a", True),
    ({"op": ">=", "value": 5}, True, None),
    ({"op": "in", "value": [1, 2]}, 2, True),
    ({"op": "in", "value": [1, 2]}, 3, False),
    ({"op": "in", "value": [1, "a"]}, "b", False),
    ({"op": "in", "value": [1, 2]}, "1", None),
    ({"op": "matches", "value": r"GET /\d+"}, "xx GET /12", True),  # search, not anchored
    ({"op": "matches", "value": r"^GET"}, "xx GET", False),
    ({"op": "matches", "value": "asa"}, ["f5", "asa-5500"], True),
    ({"op": "==", "value": 5}, ["a"], None),
])
def test_typed_comparisons(cond, value, expected):
    assert ev(dict(cond, field="x"), {"x": value}) is expected


def test_non_finite_numbers_are_unknown():
    assert ev({"field": "x", "op": ">", "value": 1}, {"x": float("nan")}) is None
    assert ev({"field": "x", "op": "exists", "value": True}, {"x": float("inf")}) is False


def test_concluded_threshold_and_negation():
    cond = {"concluded": "finding.a", "min_cf": 0.5}
    assert ev(cond, {}, {"finding.a": 0.5}) is True
    assert ev(cond, {}, {"finding.a": 0.49}) is False
    assert ev(cond, {}, {}) is False
    assert ev({"not": cond}, {}, {}) is True


def test_render_is_readable():
    cond = COND.validate_python({"all": [{"field": "ttl", "op": ">=", "value": 250},
                                         {"not": {"concluded": "finding.a", "min_cf": 0.3}}]})
    assert render(cond) == "(ttl >= 250 and not (concluded finding.a (cf >= 0.3)))"


def _rule(rid, when, conclude):
    return Rule.model_validate({
        "id": rid, "rev": 1, "status": "stable", "title": {"en": "t", "zh": "t"},
        "rationale": {"en": "r", "zh": "r"}, "references": ["x"], "when": when,
        "conclude": {"id": conclude, "cf": 0.5},
        "tests": [{"name": "a", "expect": "fires"}, {"name": "b", "expect": "does_not_fire"}]})


def test_levels_stratify_and_cycles_are_named():
    rules = [_rule("a", {"field": "ttl", "op": "exists", "value": True}, "finding.a"),
             _rule("b", {"concluded": "finding.a"}, "finding.b"),
             _rule("c", {"not": {"concluded": "finding.b"}}, "finding.c")]
    levels, conclusions = rule_levels(rules)
    assert levels == [0, 1, 2]
    assert conclusions == {"finding.a": 0, "finding.b": 1, "finding.c": 2}
    rules.append(_rule("d", {"concluded": "finding.c"}, "finding.a"))
    with pytest.raises(ValueError, match="cycle: finding.a -> finding.c -> finding.b -> finding.a|cycle"):
        rule_levels(rules)


@pytest.mark.parametrize("a,b,expected", [
    (0.6, 0.5, 0.8),                 # a + b(1 - a)
    (-0.6, -0.5, -0.8),              # a + b(1 + a)
    (0.6, -0.4, 0.2 / 0.6),          # (a + b) / (1 - min(|a|, |b|))
    (-0.6, 0.4, -0.2 / 0.6),
    (1.0, -1.0, 0.0),                # undefined: contradiction counts as nothing
    (1.0, 0.5, 1.0),
])
def test_mycin_combination(a, b, expected):
    assert certainty.combine(a, b) == pytest.approx(expected)


def test_combine_all_folds_in_order_and_rounds():
    assert certainty.combine_all([]) == 0.0
    assert certainty.combine_all([0.1, 0.1, 0.1]) == pytest.approx(0.271)
    assert certainty.contribution(0.9, 0.8) == 0.72
    # 0.1 * 3 reaches 0.3 exactly after rounding
    assert certainty.contribution(0.1, 3) >= 0.3


def test_normalize_fast_path_equals_the_loop():
    """normalize_evidence (its compiled common case, engine._evkey) gives exactly what the loop
    gives, types included, on random mixes of plain and unusual values."""
    import math
    import random

    from engine.conditions import _normalize_each
    rng = random.Random(11)
    pool = [None, 0, 1, -7, True, False, 0.5, 1e308, -1e308, math.inf, -math.inf, math.nan,
            "x", "", [1, 2], [], (1, 2), {3}, frozenset({4}), 2 ** 70]
    for _ in range(3000):
        evidence = {f"f{i}": rng.choice(pool) for i in range(rng.randint(0, 12))}
        fast, slow = normalize_evidence(evidence), _normalize_each(evidence)
        assert fast == slow, evidence
        assert [type(v) for v in fast.values()] == [type(v) for v in slow.values()], evidence
        assert list(fast) == list(slow)
        assert all(v is not None and not (isinstance(v, float) and not math.isfinite(v))
                   for v in fast.values())
        assert fast is not evidence
