"""engine.json_writer / engine._jsonw: the compact JSON of report objects is pydantic-core's,
byte for byte, for every value the writer writes itself and every one it hands back."""
from __future__ import annotations

import math
import random
import struct
from typing import Any, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, computed_field, field_serializer

from engine import json_writer
from engine.json_writer import (ANY, FALLBACK, FLOAT, LIST, MODEL, OPTIONAL, STR, items_json,
                                spec_of)
from engine.report_model import (Baseline, ConnectionRef, DualOut, EndpointRef, EvidenceItem,
                                 FiredRule, FixOut, Reasoning, ResetOut, RstSource, Trigger)
from facts.fastmodel import construct

needs_c = pytest.mark.skipif(not json_writer.compiled(),
                             reason="engine._jsonw is not built (or RSTSLEUTH_NO_CEXT is set)")


def pydantic_items(values: list, cls) -> bytes:
    return TypeAdapter(list[cls]).serializer.to_json(values, by_alias=True, warnings=False)[1:-1]


def test_specs_follow_the_annotations():
    kind, (cls, fields), _ = spec_of(ResetOut)
    assert (kind, cls) == (MODEL, ResetOut)
    by_name = {name: spec for name, _, spec in fields}
    assert [name for name, _, _ in fields] == list(ResetOut.model_fields)
    assert fields[0][1] == b'{"id":' and fields[1][1] == b',"capture":'
    assert by_name["observed_at"][0] == STR  # a Literal of strings
    assert by_name["idle_before_s"][0] == OPTIONAL and by_name["idle_before_s"][1][0] == FLOAT
    assert by_name["diagnoses"][0] == LIST and by_name["diagnoses"][1][0] == MODEL
    assert spec_of(EvidenceItem)[1][1][1][2][0] == ANY
    assert spec_of(dict[str, Any])[0] == FALLBACK


class Aliased(BaseModel):
    name: str = Field(alias="other")


class Excluded(BaseModel):
    name: str
    secret: str = Field("x", exclude=True)


class Custom(BaseModel):
    name: str

    @field_serializer("name")
    def _upper(self, v: str) -> str:
        return v.upper()


class Computed(BaseModel):
    name: str

    @computed_field
    def twice(self) -> str:
        return self.name * 2


@pytest.mark.parametrize("cls", [Aliased, Excluded, Custom, Computed])
def test_models_pydantic_writes_otherwise_are_left_to_it(cls):
    assert spec_of(cls)[0] == FALLBACK


@needs_c
@pytest.mark.parametrize("cls", [Aliased, Excluded, Custom, Computed])
def test_left_to_pydantic_same_bytes(cls):
    values = [cls.model_validate({"other" if cls is Aliased else "name": "ab\n\u00e9"})]
    assert items_json(values, cls, {}) == pydantic_items(values, cls)


def random_float(rng: random.Random) -> float:
    pick = rng.random()
    if pick < 0.3:
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # nan and inf too
    if pick < 0.8:
        return rng.choice((1, -1)) * 10 ** rng.uniform(-8, 22)
    return rng.choice((0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 5e-324,
                       float("inf"), float("nan"), 1700000000.123456, 0.1 + 0.2))


def random_str(rng: random.Random) -> str:
    alphabet = ['"', "\\", "/", "\x00", "\x1f", "\x7f", "\b", "\f", "\n", "\r", "\t", "a", " ",
                "é", "中", "\u2028", "\ufeff", "😀", "\x80"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 8)))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    makers = [lambda: None, lambda: True, lambda: rng.getrandbits(rng.choice((8, 64, 100))) - 2 ** 40,
              lambda: random_float(rng), lambda: random_str(rng), lambda: False, lambda: 0,
              lambda: [random_value(rng, depth + 1) for _ in range(3)], lambda: {"k": 1}]
    return makers[rng.randrange(9 if depth < 2 else 7)]()


def random_entry(rng: random.Random, shared: dict) -> ResetOut:
    """A reset entry with fields of the right type mostly, and sometimes of another (an int
    in a float field, a bool in an int field, None where a value is required)."""
    def f(usual):
        return usual if rng.random() < 0.85 else random_value(rng)

    conn = construct(ConnectionRef, id=random_str(rng), client=construct(EndpointRef, ip="10.0.0.1",
                     port=f(rng.randrange(65536))), server=shared["server"], ip_version=f(4),
                     handshake=f("complete"), start=f(random_float(rng)), end=f(random_float(rng)),
                     application=f("SSH"), peer_connection_id=f(None))
    evidence = [construct(EvidenceItem, field="x", value=random_value(rng), text=random_str(rng))
                for _ in range(rng.randrange(4))] + [shared["item"]]
    return construct(
        ResetOut, id=f("1:r1"), capture=f(random_str(rng)), frame=f(rng.randrange(10 ** 6)),
        connection=conn, observed_at=f("client"), claimed_sender=f("server"),
        time=f(random_float(rng)), time_iso=f("2026-11-21T00:00:00.000000+00:00"), flags=f("R"),
        origin=f("middle_device"), origin_confidence=f(round(rng.random(), 3)),
        pattern=f(rng.choice((None, "idle_timeout"))), rst_source=shared["source"],
        baseline=shared["baseline"], idle_before_s=f(rng.choice((None, random_float(rng)))),
        measured_idle_s=f(None), idle_matches=f([random_str(rng)]),
        trigger=f(rng.choice((None, construct(Trigger, frame=3, length=f(5), delta_s=f(0.5),
                                               excerpt=f(random_str(rng)))))),
        dual=shared["dual"], diagnoses=shared["diagnoses"], fixes=f([shared["fix"]]),
        evidence=evidence, wireshark_filter=f(random_str(rng)),
        reasoning=construct(Reasoning, finding="", fired=shared["fired"]))


def shared_parts() -> dict:
    return {"server": construct(EndpointRef, ip="10.0.0.2", port=22),
            "item": construct(EvidenceItem, field="ttl", value=253, text="ttl = 253"),
            "source": construct(RstSource, ttl=253, initial_ttl=255, decrements=2, tracert_hop=3,
                                tracert_address=None, tracert_name="fw \"edge\""),
            "baseline": construct(Baseline, ttl=None, initial_ttl=None, decrements=None,
                                  source="none", values=[]),
            "dual": construct(DualOut, peer_saw_connection=None, peer_sent_rst=None,
                              peer_received_rst=None, clock_offset_s=None, nat_between=None,
                              verdict="no_peer_capture"),
            "diagnoses": [], "fix": construct(FixOut, id="f", title="t", text="KeepAliveTime 300000"),
            "fired": [construct(FiredRule, rule="r", rev=1, conclusion="c", cf=0.9)]}


def same_or_same_error(values: list, cls, cache) -> None:
    try:
        expected = pydantic_items(values, cls)
    except Exception as exc:  # noqa: BLE001 - e.g. a lone surrogate: both must refuse
        with pytest.raises(type(exc)):
            items_json(values, cls, cache)
        return
    assert items_json(values, cls, cache) == expected


@needs_c
def test_random_entries_same_bytes():
    rng = random.Random(5)
    shared = shared_parts()
    cache: dict = {}
    for _ in range(300):
        entries = [random_entry(rng, shared) for _ in range(5)]
        same_or_same_error(entries, ResetOut, cache)
        same_or_same_error(entries, ResetOut, None)
    # what several entries hold is kept once, with the object, so its address stays its own
    held = {id(obj): data for obj, data in cache.values()}
    assert id(shared["fired"]) in held and id(shared["source"]) in held
    assert all(key == id(obj) for key, (obj, _) in cache.items())


@needs_c
def test_scalars_of_every_kind_same_bytes():
    rng = random.Random(11)
    floats = [random_float(rng) for _ in range(20000)]
    values = [construct(EvidenceItem, field=random_str(rng), value=v, text="t") for v in floats]
    values += [construct(EvidenceItem, field="f", value=random_value(rng), text=random_str(rng))
               for _ in range(5000)]
    same_or_same_error(values, EvidenceItem, {})
    times = [construct(Trigger, frame=None, length=None, delta_s=v, excerpt=None) for v in floats]
    assert items_json(times, Trigger, {}) == pydantic_items(times, Trigger)
    assert any(b"e" in pydantic_items([t], Trigger) for t in times[:2000])  # exponents seen
    assert any(math.isnan(v) for v in floats) and any(math.isinf(v) for v in floats)


@needs_c
def test_lone_surrogate_is_refused_like_pydantic():
    item = construct(EvidenceItem, field="\ud800", value=1, text="t")
    with pytest.raises(Exception) as expected:
        pydantic_items([item], EvidenceItem)
    with pytest.raises(type(expected.value)):
        items_json([item], EvidenceItem, {})


class Sub(EndpointRef):
    pass


@needs_c
def test_subclasses_missing_and_extra_fields_go_to_pydantic():
    server = construct(EndpointRef, ip="10.0.0.2", port=1)
    made = [construct(ConnectionRef, id="c", client=Sub(ip="1.1.1.1", port=2), server=server,
                      ip_version=4, handshake="complete", start=1.0, end=2.0, application="x",
                      peer_connection_id=None),
            ConnectionRef.model_construct(id="d", client=server, server=server)]  # unset fields
    same_or_same_error(made, ConnectionRef, {})
    assert b'"client":{"ip":"1.1.1.1","port":2}' in items_json(made, ConnectionRef, {})


def test_without_the_compiled_writer_pydantic_writes(monkeypatch):
    shared = shared_parts()
    entries = [random_entry(random.Random(n), shared) for n in range(20)]
    monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    assert not json_writer.compiled()
    try:
        expected = pydantic_items(entries, ResetOut)
    except Exception:  # noqa: BLE001 - a random value pydantic refuses
        return
    assert items_json(entries, ResetOut, {}) == expected


def test_optional_plain_model_is_written_in_c():
    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        a: Optional[float] = None

    kind, (cls, fields), _ = spec_of(Inner)
    assert kind == MODEL and fields == (("a", b'{"a":', spec_of(Optional[float])),)


@needs_c
def test_cache_must_be_a_dict_or_none():
    from engine import _jsonw
    item = construct(EvidenceItem, field="f", value=1, text="t")
    with pytest.raises(TypeError, match="cache must be a dict or None"):
        _jsonw.write([item], spec_of(EvidenceItem), [])
    assert _jsonw.write([item], spec_of(EvidenceItem), None) == pydantic_items([item], EvidenceItem)
