"""Capture text (payload excerpts, log lines) must never reach durable-rules' own JSON parser:
it rejected a TLS payload excerpt with ERR_PARSE_OBJECT (204). Strings are compared as tokens."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import Reasoner
from engine.kb import KnowledgeBase
from tests.test_engine_reasoner import make_rule

HOSTILE = ['\\x17\\x03\\x03\\x00\\x13\\xdf;o\\xadw\\xfee\\xc6}\\xeb', 'a"b', "back\\slash", "{}[]:,",
           "\x00nul", "\u4e2d\u6587 \U0001F600", "\ud800", "tab\tnew\nline", "", " " * 300,
           '\\u0000', "}" * 50]


@pytest.fixture(scope="module")
def reasoner():
    rules = [make_rule("eq", {"field": "trigger_excerpt", "op": "==", "value": HOSTILE[0]},
                       "finding.eq", 0.5),
             make_rule("neq", {"field": "trigger_excerpt", "op": "!=", "value": 'a"b'},
                       "finding.neq", 0.5),
             make_rule("in", {"field": "trigger_excerpt", "op": "in", "value": ["{}[]:,", "x"]},
                       "finding.in", 0.5),
             make_rule("ex", {"field": "trigger_excerpt", "op": "exists", "value": True},
                       "finding.ex", 0.5)]
    r = Reasoner(KnowledgeBase(path=Path("t"), rules=rules))
    yield r
    r.close()


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_compare_exactly(reasoner, text):
    inf = reasoner.infer({"trigger_excerpt": text})
    assert (inf.cf("finding.eq") > 0) == (text == HOSTILE[0])
    assert (inf.cf("finding.neq") > 0) == (text != 'a"b')
    assert (inf.cf("finding.in") > 0) == (text in ("{}[]:,", "x"))
    assert inf.cf("finding.ex") > 0
    # the durable path and the pure-Python evaluator agree
    assert reasoner.fire(inf.evidence)[0] == reasoner.fire_python(inf.evidence)[0]


# --- floats that durable's parser rejects ("5e-05") -----------------------------------------

@pytest.mark.parametrize("gap", [5e-05, 1e-07, 4.2e-06, -3e-05, 0.0, 1e17, 2.5e20])
def test_exponent_floats_are_safe(gap):
    rules = [make_rule("pos", {"field": "idle_before_s", "op": ">", "value": 0}, "finding.pos", 0.5),
             make_rule("small", {"field": "idle_before_s", "op": "<", "value": 0.001},
                       "finding.small", 0.5),
             make_rule("big", {"field": "idle_before_s", "op": ">=", "value": 1e16},
                       "finding.big", 0.5)]
    with Reasoner(KnowledgeBase(path=Path("t"), rules=rules)) as r:
        inf = r.infer({"idle_before_s": gap})
        assert (inf.cf("finding.pos") > 0) == (gap > 0)
        assert (inf.cf("finding.small") > 0) == (gap < 0.001)
        assert (inf.cf("finding.big") > 0) == (gap >= 1e16)
        assert r.fire(inf.evidence)[0] == r.fire_python(inf.evidence)[0]


def test_kb_constant_too_small_for_the_engine_is_a_kb_problem():
    from engine import KBError
    rule = make_rule("tiny", {"field": "idle_before_s", "op": "<", "value": 5e-05}, "finding.t", 0.5)
    with pytest.raises(KBError) as err:
        Reasoner(KnowledgeBase(path=Path("t"), rules=[rule]))
    assert "idle_before_s" in str(err.value.problems[0])
