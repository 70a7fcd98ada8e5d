"""extract / iter_facts plumbing: order, progress, GC state, RST storms stay linear."""
from __future__ import annotations

import gc
import time

import pytest

from facts.errors import CaptureError
from facts.extract import extract, iter_facts
from tests.builders import Conversation, merge, to_pcap


def _two_connections(tmp_path):
    a = Conversation(client=("10.0.0.2", 50000), server=("10.0.0.1", 80))
    a.handshake()
    a.send("server", "RA", dt=0.5)
    b = Conversation(client=("10.0.0.3", 50001), server=("10.0.0.1", 80), start=1_700_000_000.2)
    b.handshake()
    b.send("client", "R", dt=0.1)
    b.send("client", "R", dt=0.1)
    path = tmp_path / "two.pcap"
    path.write_bytes(to_pcap(merge(a.records, b.records)))
    return path


def test_iter_facts_yields_each_connection_then_its_rsts(tmp_path):
    stream = iter_facts(_two_connections(tmp_path))
    assert stream.capture is None
    facts = list(stream)
    assert [(f.kind, f.id) for f in facts] == [
        ("connection", "c1"), ("rst", "r3"), ("connection", "c2"), ("rst", "r1"), ("rst", "r2")]
    assert stream.capture.rst_packets == 3 and stream.capture.tcp_packets == 9
    only_rsts = list(iter_facts(_two_connections(tmp_path), connections=False))
    assert [f.id for f in only_rsts] == ["r3", "r1", "r2"]


def test_extract_lists_rsts_in_capture_order(tmp_path):
    ex = extract(_two_connections(tmp_path))
    assert [r.id for r in ex.rsts] == ["r1", "r2", "r3"]
    assert [r.frame for r in ex.rsts] == sorted(r.frame for r in ex.rsts)
    assert ex.rsts[0].connection_id == "c2" and ex.rsts[0].rsts_in_connection == 2


def test_iter_facts_raises_at_once_for_a_bad_file(tmp_path):
    with pytest.raises(CaptureError, match="nope.pcap"):
        iter_facts(tmp_path / "nope.pcap")


def test_progress_reports_bytes_up_to_the_file_size(tmp_path):
    path = _two_connections(tmp_path)
    calls = []
    extract(path, progress=lambda done, total: calls.append((done, total)))
    size = path.stat().st_size
    assert calls and calls[-1] == (size, size)
    assert all(0 <= done <= total == size for done, total in calls)


def test_cyclic_gc_state_is_restored(tmp_path):
    path = _two_connections(tmp_path)
    assert gc.isenabled()
    extract(path)
    assert gc.isenabled()
    gc.disable()
    try:
        extract(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_rst_storm_in_one_connection_stays_linear(tmp_path):
    conv = Conversation()
    conv.handshake()
    for i in range(3000):
        conv.send("server", "R", dt=0.001, seq=conv.sides["server"].nxt + i * 1460,
                  forged=True, ttl=40 + i % 10)
    path = tmp_path / "storm.pcap"
    path.write_bytes(to_pcap(conv.records))
    start = time.perf_counter()
    ex = extract(path)
    elapsed = time.perf_counter() - start
    assert len(ex.rsts) == 3000 and ex.rsts[-1].rst_index_in_connection == 3000
    assert ex.rsts[1].rst_seq_change and ex.rsts[1].rst_seq_differ
    assert elapsed < 10, elapsed  # quadratic work would be ~9 million RST pairs


def test_capture_starting_with_a_rst_infers_roles_from_ports(tmp_path):
    conv = Conversation(client=("10.0.0.2", 51515), server=("203.0.113.5", 80))
    conv.send("server", "RA", payload=b"Diagnostic: reset by policy")
    path = tmp_path / "lonely.pcap"
    path.write_bytes(to_pcap(conv.records))
    (rst,) = extract(path).rsts
    assert rst.connection.roles_inferred and rst.claimed_sender == "server"
    assert rst.rst_payload_len == 27 and rst.idle_before_s is None
    assert rst.packets_before == 0 and rst.baseline_source == "none"
