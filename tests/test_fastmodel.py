"""facts.fastmodel.construct builds what pydantic's model_construct builds, and the facts and
reports built with it (no validation on the way) are exactly what validation would give."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel

from engine import Reasoner
from engine import report_model
from engine.analysis import analyze
from engine.report_model import Report, report_json_schema
from facts import evidence as evidence_mod
from facts import models as fact_models
from facts.extract import extract
from facts.fastmodel import construct, present
from facts.fields import _CONN_FIELDS, _RST_IDENTITY, _SERVER_PORT, evidence_from_rst

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted(str(p) for p in [*ROOT.glob("examples/*.pcap"),
                                   *ROOT.glob("examples/lab_captures/*/*.pcap")])


def _models(module) -> list[type[BaseModel]]:
    return [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseModel)
            and v.__module__ == module.__name__ and v.model_fields]


SAMPLE = {str: "x", int: 7, float: 1.5, bool: True}


def _sample(cls: type[BaseModel]) -> dict:
    out = {}
    for name, info in cls.model_fields.items():
        out[name] = SAMPLE.get(info.annotation, None)
    return out


@pytest.mark.parametrize("cls", _models(report_model) + _models(fact_models) + _models(evidence_mod),
                         ids=lambda c: c.__name__)
def test_construct_equals_model_construct(cls):
    full = _sample(cls)
    for values in (full, dict(list(full.items())[:2]), dict(reversed(list(full.items()))), {}):
        mine, theirs = construct(cls, **values), cls.model_construct(**values)
        assert mine.__dict__ == theirs.__dict__
        assert list(mine.__dict__) == list(theirs.__dict__)  # field order: JSON key order
        assert mine.model_fields_set == theirs.model_fields_set
        assert mine == theirs


def test_construct_rejects_unknown_fields_and_gives_fresh_defaults():
    with pytest.raises(TypeError, match="no_such_field"):
        construct(report_model.Reasoning, finding="f1", no_such_field=1)
    a, b = construct(report_model.Reasoning, finding="a"), construct(report_model.Reasoning, finding="b")
    a.fired.append("x")
    assert b.fired == []  # default_factory is called per object, never shared


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: Path(p).parent.name + "/" + Path(p).name)
def test_built_facts_are_what_validation_gives(path):
    ex = extract(path)
    assert ex.connections  # (the asymmetric client sees no RST at all)
    for fact in [*ex.connections, *ex.rsts]:
        validated = type(fact).model_validate(fact.model_dump())
        # JSON shows any type slip (an int where a float belongs prints without ".0")
        assert validated.model_dump_json() == fact.model_dump_json()


def _evidence_by_serializer(rst) -> dict:
    """What evidence_from_rst returned before it read the fields in place."""
    data = rst.model_dump(exclude=_RST_IDENTITY)
    conn = rst.connection
    for name in _CONN_FIELDS:
        data["conn_" + name] = getattr(conn, name)
    data[_SERVER_PORT] = conn.server.port
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: Path(p).parent.name + "/" + Path(p).name)
def test_evidence_in_place_equals_the_serializer(path):
    for rst in extract(path).rsts:
        mine, theirs = evidence_from_rst(rst), _evidence_by_serializer(rst)
        assert mine == theirs and list(mine) == list(theirs)


def test_present_equals_model_dump_without_none():
    dual = evidence_mod.DualEvidence(observed_at="client", dual_available=True,
                                     dual_peer_saw_connection=False, dual_clock_offset_s=0.25)
    cross = evidence_mod.CrossEvidence(cross_reconnect_cycle=True, cross_matched_devices=["ASA"])
    for model in (dual, cross, evidence_mod.CrossEvidence()):
        assert present(model) == model.model_dump(exclude_none=True)


@pytest.mark.parametrize("name", ["firewall_idle_timeout", "dpi_payload_match", "endpoint_port_closed"])
def test_report_round_trips_through_validation(kb, name):
    lab = ROOT / "examples" / "lab_captures" / name
    with Reasoner(kb) as reasoner:
        report = analyze(str(lab / "client.pcap"), str(lab / "server.pcap"), kb=kb,
                         reasoner=reasoner)
    assert report.resets
    text = report.to_json(2)
    data = json.loads(text)
    jsonschema.Draft202012Validator(report_json_schema()).validate(data)
    again = Report.model_validate_json(text)
    assert again.to_json(2) == text
    # shared sub-objects (the same RST source, fix or evidence item in many resets) serialise
    # like separate ones, and the old serializer gives the same document
    assert json.loads(json.dumps(report.to_json_dict())) == data


def _state(m: BaseModel) -> tuple:
    return (type(m), m.__dict__, list(m.__dict__), m.model_fields_set, m.__pydantic_extra__,
            m.__pydantic_private__)


def test_compiled_construct_builds_what_python_builds(monkeypatch):
    """construct's compiled common case (facts._ctrack.adopt_exact): the same object as the
    Python path for every report, evidence and fact model; None (so Python builds it) when
    the fields are not all given in declaration order."""
    from facts import fastmodel
    if fastmodel._adopt_exact is None:
        pytest.skip("facts._ctrack is not built or RSTSLEUTH_NO_CEXT is set")
    adopt = fastmodel._adopt_exact
    models = _models(report_model) + _models(evidence_mod) + _models(fact_models)
    assert len(models) > 15
    for cls in models:
        values = _sample(cls)
        names = tuple(cls.model_fields)
        fast = construct(cls, **values)
        monkeypatch.setattr(fastmodel, "_adopt_exact", None)
        slow = construct(cls, **values)
        monkeypatch.setattr(fastmodel, "_adopt_exact", adopt)
        assert _state(fast) == _state(slow), cls
        data = dict(values)
        made = adopt(cls, names, data)
        assert made.__dict__ is data  # adopted, not copied (as the Python path does)
        if len(names) > 1:
            assert adopt(cls, names, dict(reversed(list(values.items())))) is None
            assert adopt(cls, names, {k: values[k] for k in names[1:]}) is None
            assert adopt(cls, names, {**{k: values[k] for k in names[:-1]}, "other": 1}) is None
            # and construct still builds those the Python way
            assert _state(construct(cls, **dict(reversed(list(values.items()))))) == _state(slow)
    with pytest.raises(TypeError):
        adopt(report_model.Trigger, ["frame"], {})
    with pytest.raises(TypeError):
        adopt("Trigger", (), {})


def test_compiled_construct_does_not_leak():
    from facts import fastmodel
    from leakcheck import growth
    if fastmodel._adopt_exact is None:
        pytest.skip("facts._ctrack is not built or RSTSLEUTH_NO_CEXT is set")
    cls = report_model.Trigger
    values = _sample(cls)

    def run(n):
        for _ in range(n):
            construct(cls, **values)
            fastmodel._adopt_exact(cls, tuple(cls.model_fields), {"x": 1})
    assert growth(run) < 20000
