"""Dual capture: roles, connection matching through NAT and clock skew, per-RST verdicts."""
from __future__ import annotations

import pytest

from facts import dual
from facts.extract import extract
from tests.dual_builders import DualConversation


def _run(conv: DualConversation, tmp_path):
    client_path, server_path = conv.write(tmp_path)
    c, s = extract(client_path), extract(server_path)
    return c, s, dual.analyse(c.connections, c.rsts, s.connections, s.rsts)


def _idle_then(conv: DualConversation) -> None:
    conv.handshake()
    conv.send("client", "PA", b"hello", dt=0.1)
    conv.send("server", "A", dt=0.01)


def test_roles_and_skew_estimated(tmp_path):
    conv = DualConversation(skew=5.0)
    _idle_then(conv)
    conv.forge("client", "server", dt=3600.0)
    c, s, result = _run(conv, tmp_path)
    assert (result.local_role, result.peer_role) == ("client", "server")
    assert result.clock_offset_s == pytest.approx(5.0, abs=0.05)
    # swapped order: the server capture given first is recognised as the server side
    swapped = dual.analyse(s.connections, s.rsts, c.connections, c.rsts)
    assert (swapped.local_role, swapped.peer_role) == ("server", "client")


def test_forged_rst_never_sent_by_server_is_middle_injected(tmp_path):
    conv = DualConversation()
    _idle_then(conv)
    conv.forge("client", "server", dt=3600.0)
    c, s, result = _run(conv, tmp_path)
    [rst] = c.rsts
    ev = result.evidence[rst.id]
    assert ev.dual_peer_saw_connection is True
    assert ev.dual_peer_sent_rst is False
    assert ev.dual_peer_received_rst is False
    assert ev.observed_at == "client"


def test_rst_the_server_really_sent_is_endpoint(tmp_path):
    conv = DualConversation()
    _idle_then(conv)
    conv.send("server", "RA", dt=2.0)
    c, s, result = _run(conv, tmp_path)
    [rst] = c.rsts
    assert result.evidence[rst.id].dual_peer_sent_rst is True
    [srst] = s.rsts
    # at the server, the same RST left the capture host itself
    assert result.peer_evidence[srst.id].rst_from_capture_host is True


def test_device_resetting_both_ends(tmp_path):
    conv = DualConversation()
    _idle_then(conv)
    conv.forge("client", "server", dt=300.0)
    conv.forge("server", "client", ttl=252)
    c, s, result = _run(conv, tmp_path)
    [rst] = c.rsts
    ev = result.evidence[rst.id]
    assert ev.dual_peer_sent_rst is False and ev.dual_peer_received_rst is True
    [srst] = s.rsts
    pev = result.peer_evidence[srst.id]
    assert pev.dual_peer_sent_rst is False and pev.dual_peer_received_rst is True


def test_connection_blocked_before_the_server(tmp_path):
    conv = DualConversation()
    # Another connection that works, so roles and offset are known.
    conv.handshake()
    conv.send("client", "FA", dt=0.1)
    conv.send("server", "FA", dt=0.01)
    conv.send("client", "A", dt=0.01)
    blocked = DualConversation(client=("10.0.0.2", 50001), client_isn=7777, server_isn=8888)
    blocked.at_client.time = conv.at_client.time + 1
    blocked.at_client.send("client", "S")
    blocked.at_client.send("server", "RA", dt=0.002, ttl=254, forged=True)
    conv.at_client.records += blocked.at_client.records
    c, s, result = _run(conv, tmp_path)
    [rst] = c.rsts
    assert result.evidence[rst.id].dual_peer_saw_connection is False


def test_matched_through_nat_by_sequence_numbers(tmp_path):
    conv = DualConversation(nat=("192.0.2.77", 61000), skew=-3.0)
    _idle_then(conv)
    conv.forge("client", "server", dt=60.0)
    c, s, result = _run(conv, tmp_path)
    [match] = result.matches.values()
    assert match.how == "client_isn" and match.nat is True
    assert result.clock_offset_s == pytest.approx(-3.0, abs=0.05)
    [rst] = c.rsts
    assert result.evidence[rst.id].dual_nat_between is True
    assert result.evidence[rst.id].dual_peer_sent_rst is False


def test_matched_by_timing_when_sequence_numbers_are_rewritten(tmp_path):
    conv = DualConversation(skew=2.0)
    _idle_then(conv)
    c_path, s_path = conv.write(tmp_path)
    c = extract(c_path)
    s = extract(s_path)
    # a firewall that randomises ISNs: the server sees other sequence numbers
    for conn in s.connections:
        conn.client_isn, conn.server_isn = 123, 456
    matches, offset = dual.match_connections(c.connections, s.connections)
    [m] = matches.values()
    assert m.how == "timing"


def test_clock_offset_is_seen_from_each_capture(tmp_path):
    conv = DualConversation(skew=5.0)
    _idle_then(conv)
    conv.forge("client", "server", dt=60.0)
    conv.forge("server", "client", ttl=252)
    c, s, result = _run(conv, tmp_path)
    # "the other capture's clock minus this one's": +5 s at the client, -5 s at the server
    assert result.evidence[c.rsts[0].id].dual_clock_offset_s == pytest.approx(5.0, abs=0.05)
    assert result.peer_evidence[s.rsts[0].id].dual_clock_offset_s == pytest.approx(-5.0, abs=0.05)


def test_undecremented_reads_the_most_frequent_ttl():
    from facts.dual import _undecremented
    assert _undecremented({}) is None
    assert _undecremented({64: 3}) is True
    assert _undecremented({63: 5}) is False
    assert _undecremented({64: 1, 63: 5}) is False
    assert _undecremented({64: 5, 63: 1}) is True
