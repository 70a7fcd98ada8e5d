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
