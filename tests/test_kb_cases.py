"""Every embedded rule case of the shipped knowledge base, each its own pytest item, run
through the engine (durable-rules and the Python evaluator must agree, and the case's
expectation must hold)."""
from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("engine.loader") is None:
    pytest.skip("engine.loader does not exist yet: no shipped KB to test", allow_module_level=True)

from engine.kbtest import case_outcome  # noqa: E402
from engine.loader import load_kb  # noqa: E402
from engine.reasoner import Reasoner  # noqa: E402


def _cases():
    try:
        kb = load_kb()
    except Exception as exc:  # collection must not crash: report it as one failing item
        return [pytest.param(None, None, exc, id="kb-load")]
    return [pytest.param(index, case_index, None,
                         id=f"{rule.id}[{case.name}]")
            for index, rule in enumerate(kb.rules) for case_index, case in enumerate(rule.tests)]


@pytest.fixture(scope="module")
def shipped():
    kb = load_kb()
    reasoner = Reasoner(kb)
    yield kb, reasoner
    reasoner.close()


@pytest.mark.parametrize("rule_index,case_index,load_error", _cases())
def test_embedded_case(rule_index, case_index, load_error, request):
    if load_error is not None:
        pytest.fail(f"the shipped KB does not load: {load_error}")
    kb, reasoner = request.getfixturevalue("shipped")
    rule = kb.rules[rule_index]
    case = rule.tests[case_index]
    passed, why = case_outcome(reasoner, rule_index, case)
    src = f"{rule.source.file}:{rule.source.line}" if rule.source else "<kb>"
    assert passed, f"{src} {rule.id} [{case.name}]: {why}"
