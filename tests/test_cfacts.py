"""The facts built in C (facts._ctrack, State.facts) against facts.rst on the Python pass.

tests/test_ctrack.py compares both passes on every capture we have; here a capture built to
reach every branch of facts.rst (baseline sources and ties, each sequence and ACK position,
RST_SEQ_CHANGE, DATA_SEQ_RST, answers to SYN and SYN-ACK, IP ID reflections, IPv6, excerpts
with unprintable bytes, the idle-gap floor) is compared fact by fact, as dumps and as JSON, and
the built models are checked to be what ``fastmodel.construct`` makes.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builders import Conversation, merge
from facts import ctrack
from facts.capture import open_capture
from facts.extract import FactStream, extract
from facts.fastmodel import construct, construct_dict, model_is_plain
from facts.models import Connection, Endpoint, RstEvent
from test_ctrack import same_results, write_pcap

ROOT = Path(__file__).resolve().parents[1]

needs_c = pytest.mark.skipif(not ctrack.facts_available(),
                             reason="facts._ctrack is not built or RSTSLEUTH_NO_CEXT is set")
T0 = 1_700_000_500.25


def branches():
    """(time, frame) records whose RSTs take every branch of facts.rst.rst_event."""
    convs = []
    # Host baseline: the server's TTL comes from another connection (none of its own
    # packets here), and an address seen nowhere else has no baseline at all.
    a = Conversation(("10.2.0.2", 41000), ("10.2.0.1", 80), start=T0, server_ttl=120)
    a.handshake()
    a.data("server", b"banner", dt=0.01)
    b = Conversation(("10.2.0.3", 41001), ("10.2.0.1", 80), start=T0 + 1)
    b.send("client", "S")
    b.send("server", "RA", dt=0.001, ttl=60)            # rst_answers_syn, source host
    c = Conversation(("10.2.0.3", 41002), ("10.2.0.99", 80), start=T0 + 1.5)
    c.send("client", "S")
    c.send("server", "RA", dt=0.002, ack=c.sides["client"].nxt + 9)   # source none
    # TTL ties: in one half (first seen wins) and across a host's connections.
    d = Conversation(("10.2.0.4", 41003), ("10.2.0.5", 443), start=T0 + 2)
    d.handshake()
    for ttl in (61, 60, 60, 61):
        d.data("server", b"t" * 10, dt=0.01, ttl=ttl)
    d.send("server", "R", dt=0.01, seq=d.sides["server"].nxt + 10)      # in_window
    e1 = Conversation(("10.2.0.6", 41004), ("10.2.0.7", 22), start=T0 + 3, server_ttl=50)
    e1.send("server", "A")
    e2 = Conversation(("10.2.0.6", 41005), ("10.2.0.7", 22), start=T0 + 3.1, server_ttl=51)
    e2.send("server", "A")
    e3 = Conversation(("10.2.0.6", 41006), ("10.2.0.7", 22), start=T0 + 3.2)
    e3.send("client", "S")
    e3.send("server", "R", dt=0.001)                     # host tie: 50, seen first
    # Sequence and ACK positions: unknown (big offset), outside (huge, and behind),
    # ACK behind / ahead; then a second RST whose seq jumps (RST_SEQ_CHANGE).
    f = Conversation(("10.2.0.8", 41007), ("10.2.0.1", 8080), start=T0 + 4,
                     server_window=1000)
    f.handshake()
    f.data("client", b"x" * 80, dt=0.01)
    f.data("server", b"\x00\x01GET \xff\r\n" + bytes(range(0x70, 0x90)) + b"y" * 80, dt=0.01)
    nxt = f.sides["client"].nxt
    f.send("client", "RA", dt=0.2, seq=nxt + 2000, ack=f.sides["server"].nxt - 7, forged=True)
    f.send("client", "RA", dt=0.3, seq=nxt + 100_000_000, ack=f.sides["server"].nxt + 3,
           forged=True)
    f.send("client", "RA", dt=0.05, seq=nxt + 10_000_000, forged=True)  # unknown: < 1000 << 14
    f.send("client", "R", dt=0.1, seq=nxt - 5, forged=True)   # behind acknowledged data
    f.send("client", "R", dt=5.0, seq=nxt + 50, forged=True)  # too late for a seq change
    # A RST answering the SYN-ACK; the server's IP ID reflected from the client's SYN.
    g = Conversation(("10.2.0.9", 41008), ("10.2.0.10", 25), start=T0 + 5)
    g.send("client", "S", ip_id=0x4242)
    g.send("server", "SA", dt=0.01)
    g.send("client", "R", dt=0.01)
    g.send("server", "RA", dt=0.01, ip_id=0x4242, forged=True)
    # Peer silent: sender's seq known, no packet of the other side (seq and ACK unknown).
    h = Conversation(("10.2.0.11", 41009), ("10.2.0.12", 80), start=T0 + 6)
    h.send("client", "S")
    h.send("client", "A", dt=0.001)
    h.send("client", "RA", dt=0.001, seq=h.sides["client"].nxt + 5)
    # Gaps below the 1 ms floor, then a long silence before the RST (ratio on the floor).
    k = Conversation(("10.2.0.13", 41010), ("10.2.0.14", 80), start=T0 + 7)
    k.handshake(rtt=0.0002)
    for i in range(4):
        k.data("client" if i % 2 else "server", b"k" * 5, dt=0.0001)
    k.send("server", "RA", dt=30.0)
    # IPv6: no IP ID; reserved bits on the RST.
    v6 = Conversation(("2001:db8:2::2", 41011), ("2001:db8:2::1", 443), start=T0 + 8)
    v6.handshake()
    v6.data("server", b"\x7f\x80 six", dt=0.01)
    v6.send("client", "RA", dt=0.5, reserved=2)
    for conv in (a, b, c, d, e1, e2, e3, f, g, h, k, v6):
        convs.append(conv.records)
    return merge(*convs)


@pytest.fixture(scope="module")
def branch_pcap(tmp_path_factory):
    return write_pcap(tmp_path_factory.mktemp("cfacts") / "branches.pcap", branches())


@needs_c
def test_every_branch_agrees(branch_pcap, monkeypatch):
    out = same_results(branch_pcap, monkeypatch)
    rsts = out["rsts"]
    seen = {(k, r[k]) for r in rsts for k in ("baseline_source", "seq_position", "ack_position",
                                               "rst_seq_change", "rst_behind_data",
                                               "rst_answers_syn", "rst_answers_synack",
                                               "ip_id_equals_syn", "reserved_bits_set")}
    for want in [("baseline_source", "host"), ("baseline_source", "none"),
                 ("baseline_source", "connection"), ("seq_position", "exact"),
                 ("seq_position", "in_window"), ("seq_position", "unknown"),
                 ("seq_position", "outside"), ("ack_position", "none"),
                 ("ack_position", "exact"), ("ack_position", "behind"),
                 ("ack_position", "ahead"), ("ack_position", "unknown"),
                 ("rst_seq_change", True), ("rst_seq_change", False),
                 ("rst_behind_data", True), ("rst_answers_syn", True),
                 ("rst_answers_synack", True), ("ip_id_equals_syn", True),
                 ("reserved_bits_set", True)]:
        assert want in seen, want
    by_port = {r["connection"]["client"]["port"]: r for r in rsts}
    assert by_port[41003]["baseline_ttl_conn"] == 61          # tie: first seen
    assert by_port[41003]["baseline_ttl_conn_values"] == [60, 61, 64]
    assert by_port[41006]["baseline_ttl_host"] == 50          # tie across connections
    assert by_port[41001]["baseline_ttl_host"] == 120
    assert by_port[41011]["ip_id"] is None and by_port[41011]["ip_version"] == 6
    assert any(r["trigger_excerpt"] and "\\x00\\x01GET \\xff" in r["trigger_excerpt"]
               for r in rsts)
    assert by_port[41010]["earlier_gap_max_s"] < 0.001
    assert by_port[41010]["idle_silence_ratio"] == by_port[41010]["idle_silence_s"] / 0.001
    assert any(r["seq_offset"] is not None and r["seq_offset"] < 0 for r in rsts)
    assert any(r["seq_position"] == "unknown" and r["seq_offset"] == 10_000_000 for r in rsts)


@needs_c
def test_stream_and_no_connections_agree(branch_pcap, monkeypatch):
    """rstsleuth facts' order (each connection, then its RSTs), with and without
    connections, and the capture line."""
    for with_conns in (True, False):
        streams = []
        for env in (None, "1"):
            if env:
                monkeypatch.setenv("RSTSLEUTH_NO_CEXT", env)
            stream = FactStream(branch_pcap, connections=with_conns)
            streams.append(([f.model_dump_json() for f in stream],
                            stream.capture.model_dump_json()))
            monkeypatch.delenv("RSTSLEUTH_NO_CEXT", raising=False)
        assert streams[0] == streams[1]
        assert any(line.startswith('{"kind":"connection"') for line in streams[0][0]) == with_conns


@needs_c
def test_models_are_built_like_construct(branch_pcap):
    """Each model: __dict__ in declaration order, a fresh set of every field, no extra and
    no private; the same object as the RSTs' connection; valid against the model."""
    x = extract(branch_pcap)
    conn_of = {c.id: c for c in x.connections}
    for m in (*x.connections, *x.rsts, x.connections[0].client):
        cls = type(m)
        assert tuple(m.__dict__) == tuple(cls.model_fields)
        assert type(m.__pydantic_fields_set__) is set
        assert m.__pydantic_fields_set__ == set(cls.model_fields)
        assert m.__pydantic_extra__ is None and m.__pydantic_private__ is None
        assert cls.model_validate(m.model_dump()) == m
    assert x.connections[0].__pydantic_fields_set__ is not x.connections[1].__pydantic_fields_set__
    for r in x.rsts:
        assert r.connection is conn_of[r.connection_id]
    c = x.connections[0]
    c.rst_count = 99  # assignment works like on any model (fields set, __dict__)
    assert c.model_dump()["rst_count"] == 99


def test_fact_fields_match_models():
    if not ctrack.available():
        pytest.skip("facts._ctrack is not built")
    conn, ep, rst = ctrack._ctrack.fact_fields()
    assert conn == tuple(Connection.model_fields)
    assert ep == tuple(Endpoint.model_fields)
    assert rst == tuple(RstEvent.model_fields)
    assert ctrack.facts_available() and ctrack.FACTS_MATCH


@needs_c
def test_walk_needs_no_models_and_facts_wait_for_them(branch_pcap):
    """A reader thread walks the file while the models (pydantic) are still being imported:
    importing facts.ctrack loads neither, and the compiled facts are refused until
    facts_available() has handed the models over."""
    code = ("import sys\n"
            "import facts.ctrack as c\n"
            "from facts.capture import open_capture\n"
            "assert 'pydantic' not in sys.modules and 'facts.models' not in sys.modules\n"
            f"state = c.read_pcap(open_capture({str(branch_pcap)!r}))\n"
            "try:\n"
            "    state.facts('x')\n"
            "except RuntimeError as exc:\n"
            "    print('refused:', exc)\n"
            "assert c.facts_available()\n"
            f"state = c.read_pcap(open_capture({str(branch_pcap)!r}))\n"
            "print('facts', sum(1 + len(r) for _, r in c.iter_facts(state, 'x')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "refused: _ctrack.setup() was not given the fact models" in proc.stdout
    assert "facts " in proc.stdout and "facts 0" not in proc.stdout


@needs_c
def test_mismatched_models_fall_back(branch_pcap, monkeypatch):
    """Models the C code does not match: facts.rst builds the facts from state.tracker()."""
    want = extract(branch_pcap).model_dump_json()
    monkeypatch.setattr(ctrack, "FACTS_MATCH", False)
    assert not ctrack.facts_available() and ctrack.available()
    assert extract(branch_pcap).model_dump_json() == want


@needs_c
def test_state_is_consumed_once(branch_pcap):
    state = ctrack.read_pcap(open_capture(branch_pcap))
    assert state.counts()[1] == 14
    it = state.facts("x")
    with pytest.raises(RuntimeError):
        state.facts("x")
    with pytest.raises(RuntimeError):
        state.tracker()
    assert len(list(it)) == 12
    assert list(it) == []
    with pytest.raises(RuntimeError):
        state.counts()
    with pytest.raises(TypeError):
        ctrack.read_pcap(open_capture(branch_pcap)).facts(b"x")
    tracker = ctrack.read_pcap(open_capture(branch_pcap))
    assert len(tracker.tracker().rsts) == 14


def test_construct_dict():
    data = {"ip": "10.0.0.1", "port": 80}
    m = construct_dict(Endpoint, data)
    assert m.__dict__ is data
    assert m == construct(Endpoint, ip="10.0.0.1", port=80)
    assert m.__pydantic_fields_set__ == {"ip", "port"}
    with pytest.raises(TypeError):
        construct_dict(Endpoint, {"port": 80, "ip": "10.0.0.1"})   # order
    with pytest.raises(TypeError):
        construct_dict(Endpoint, {"ip": "10.0.0.1"})               # missing
    assert model_is_plain(Connection) and model_is_plain(RstEvent)
