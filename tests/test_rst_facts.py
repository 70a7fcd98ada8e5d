"""RstEvent facts, end to end: dpkt-built pcaps → reader → decoder → tracker → RstEvent."""
from __future__ import annotations

import pytest

from facts.extract import extract
from tests.builders import Conversation, merge, to_pcap


def facts_of(tmp_path, *conversations, name="c.pcap"):
    path = tmp_path / name
    path.write_bytes(to_pcap(merge(*(c.records for c in conversations))))
    return extract(path)


def windows_server_conv(**kw):
    # Server TTL arrives as 118: Windows (128) ten routers away.
    return Conversation(client=("10.0.0.2", 51000), server=("192.0.2.10", 443),
                        client_ttl=64, server_ttl=118, **kw)


def test_forged_rst_from_firewall_after_idle(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("client", b"GET / HTTP/1.1\r\n\r\n", dt=0.1)
    conv.data("server", b"HTTP/1.1 200 OK\r\n\r\n", dt=0.02)
    conv.send("client", "A", dt=0.01)
    conv.data("client", b"\x16\x03\x01ping", dt=3600.4)
    conv.send("server", "RA", dt=0.002, ttl=253, forged=True)
    ex = facts_of(tmp_path, conv)
    (rst,) = ex.rsts
    assert rst.claimed_sender == "server" and rst.flags == "RST+ACK"
    assert (rst.ttl, rst.initial_ttl, rst.ttl_decrements, rst.tracert_hop) == (253, 255, 2, 3)
    assert rst.baseline_ttl_conn == 118 and rst.baseline_source == "connection"
    assert rst.baseline_initial_ttl == 128 and rst.baseline_decrements == 10
    assert rst.ttl_delta == 135 and rst.ttl_matches_baseline is False
    assert rst.initial_ttl_differs is True and rst.baseline_ttl_varies is False
    assert rst.ip_id_zero is True and rst.ip_id_in_sequence is False
    assert rst.idle_before_s == pytest.approx(0.002, abs=1e-5)
    assert rst.idle_before_trigger_s == pytest.approx(3600.4, abs=1e-3)
    assert rst.idle_sender_s == pytest.approx(3600.412, abs=1e-3)
    assert rst.trigger_len == 7 and rst.trigger_excerpt == "\\x16\\x03\\x01ping"
    assert rst.trigger_frame == 7 and rst.frame == 8
    assert rst.seq_position == "exact" and rst.ack_position == "exact"
    assert rst.handshake_completed and rst.syn_seen and rst.synack_seen
    assert rst.packets_before == 7 and rst.bytes_c2s_before == 25 and rst.bytes_s2c_before == 19
    assert rst.connection.largest_idle_gap_s == pytest.approx(3600.4, abs=1e-3)
    assert rst.connection.close == "rst" and rst.connection.server_ttls == {118: 2}


def test_endpoint_rst_matches_baseline_and_ip_id_sequence(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("client", b"hello", dt=0.1)
    conv.send("server", "RA", dt=0.05)
    (rst,) = facts_of(tmp_path, conv).rsts
    assert rst.ttl == 118 and rst.ttl_matches_baseline and rst.ttl_delta == 0
    assert rst.initial_ttl_differs is False and rst.tracert_hop == 11
    assert rst.ip_id_gap == 1 and rst.ip_id_in_sequence and not rst.ip_id_equals_other_last
    assert rst.seq_position == "exact" and rst.seq_offset == 0
    assert rst.ack_position == "exact" and rst.ack_offset == 0
    assert not rst.data_after_rst and not rst.rst_behind_data and not rst.rst_seq_change


def test_host_baseline_when_the_sender_has_no_packets_in_the_connection(tmp_path):
    first = windows_server_conv()
    first.handshake()
    first.close()
    second = windows_server_conv(client_isn=77_000, start=1_700_000_010.0)
    second.sides["client"].port = 51001
    second.send("client", "S")
    second.send("server", "RA", dt=0.01, ttl=120, forged=True, ack=77_001)
    lonely = Conversation(client=("10.0.0.2", 40000), server=("198.51.100.7", 25),
                          start=1_700_000_020.0)
    lonely.send("client", "S")
    lonely.send("server", "RA", dt=0.01, ttl=255)
    ex = facts_of(tmp_path, first, second, lonely)
    r_host, r_none = ex.rsts
    assert r_host.baseline_source == "host" and r_host.baseline_ttl_conn is None
    assert r_host.baseline_ttl_host == 118 and r_host.ttl_delta == 2
    assert r_host.rst_answers_syn and r_host.since_syn_s == pytest.approx(0.01, abs=1e-5)
    assert r_none.baseline_source == "none" and r_none.ttl_matches_baseline is None
    assert r_none.seq_position == "unknown" and r_none.ack_position == "exact"


def test_data_after_rst_is_patched_in(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("client", b"GET /blocked", dt=0.1)
    conv.send("server", "R", dt=0.001, ttl=50, forged=True)
    conv.data("server", b"HTTP/1.1 200 OK", dt=0.03)
    (rst,) = facts_of(tmp_path, conv).rsts
    assert rst.flags == "RST" and rst.ack_position == "none"
    assert rst.data_after_rst and rst.data_after_rst_s == pytest.approx(0.03, abs=1e-5)


def test_rst_behind_data_and_seq_change_and_both_directions(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("server", b"x" * 1000, dt=0.1)
    conv.send("client", "A", dt=0.01, ack=conv.sides["server"].nxt - 500)  # half acked
    behind = conv.sides["server"].nxt - 1000
    conv.send("server", "R", dt=0.01, seq=behind, forged=True)
    x = conv.sides["server"].nxt
    conv.send("server", "RA", dt=0.01, seq=x + 1460, forged=True)
    conv.send("server", "RA", dt=0.01, seq=x + 4380, forged=True)
    conv.send("client", "R", dt=0.01, forged=True)
    rsts = facts_of(tmp_path, conv).rsts
    assert [r.rst_index_in_connection for r in rsts] == [1, 2, 3, 4]
    assert all(r.rsts_in_connection == 4 and r.rst_both_directions for r in rsts)
    assert rsts[0].rst_behind_data and rsts[0].seq_offset == -1000
    assert rsts[0].seq_position == "outside"
    assert not rsts[0].rst_seq_change and rsts[1].rst_seq_change and rsts[2].rst_seq_change
    assert rsts[1].seq_position == "in_window" and rsts[1].seq_offset == 1460
    assert not rsts[1].rst_behind_data
    assert rsts[1].rst_seq_differ and rsts[1].rst_ack_differ
    assert rsts[3].claimed_sender == "client" and not rsts[3].rst_seq_differ


def test_rst_between_acked_and_sent_data_is_not_behind(tmp_path):
    # Linux resets with a seq between SND.UNA and SND.NXT (corpus 22): not DATA_SEQ_RST.
    conv = windows_server_conv()
    conv.handshake()
    conv.data("server", b"y" * 24, dt=0.1)
    conv.send("server", "FA", dt=0.001)
    unacked = conv.sides["server"].nxt - 25
    conv.send("server", "R", dt=0.001, seq=unacked)
    (rst,) = facts_of(tmp_path, conv).rsts
    assert rst.seq_offset == -25 and rst.seq_position == "outside"
    assert not rst.rst_behind_data


def test_rst_answering_syn_and_synack_after_rst(tmp_path):
    refused = Conversation(client=("10.0.0.2", 41000), server=("10.0.0.9", 81))
    refused.send("client", "S")
    refused.send("server", "RA", dt=0.001, seq=0)
    raced = Conversation(client=("10.0.0.2", 41001), server=("10.0.0.9", 82), server_ttl=49,
                         start=1_700_000_005.0)
    syn = raced.send("client", "S")
    raced.send("server", "RA", dt=0.2, seq=0, ack=raced.sides["client"].isn, ttl=46,
               ip_id=raced.sides["client"].ip_id - 1, forged=True, reserved=0xE)
    raced.send("server", "SA", dt=1.0)
    raced.send("client", "A", dt=0.01)
    assert syn
    a, b = facts_of(tmp_path, refused, raced).rsts
    assert a.rst_answers_syn and not a.synack_after_rst and a.handshake_completed is False
    assert a.ack_position == "exact" and a.idle_sender_s is None
    assert not b.rst_answers_syn and b.ack_position == "behind" and b.ack_offset == -1
    assert b.synack_after_rst and b.reserved_bits_set
    assert b.ip_id_equals_syn and b.ip_id_equals_other_last
    assert b.window_equals_other_last is False and b.connection.handshake == "complete"


def test_challenge_ack_after_inexact_rst(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("client", b"abc", dt=0.1)
    conv.send("server", "A", dt=0.01)
    conv.send("client", "R", dt=0.5, seq=conv.sides["client"].nxt + 100, forged=True)
    conv.send("server", "A", dt=0.02)  # duplicate ACK: RFC 5961 challenge
    (rst,) = facts_of(tmp_path, conv).rsts
    assert rst.seq_position == "in_window" and rst.challenge_ack_seen


def test_no_challenge_ack_for_exact_rst(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.send("client", "R", dt=0.5)
    conv.send("server", "A", dt=0.02)
    (rst,) = facts_of(tmp_path, conv).rsts
    assert rst.seq_position == "exact" and not rst.challenge_ack_seen


def test_ipv6_rst_uses_hop_limit_and_has_no_ip_id(tmp_path):
    conv = Conversation(client=("2001:db8::2", 40000), server=("2001:db8::1", 22),
                        client_ttl=64, server_ttl=57)
    conv.handshake()
    conv.data("server", b"SSH-2.0-x\r\n", dt=0.1)
    conv.send("server", "RA", dt=1.0, ttl=61, forged=True)
    ex = facts_of(tmp_path, conv)
    (rst,) = ex.rsts
    assert rst.ip_version == 6 and rst.ip_id is None and rst.ip_id_gap is None
    assert rst.ttl == 61 and rst.baseline_ttl_conn == 57 and rst.ttl_delta == 4
    assert rst.connection.client.ip == "2001:db8::2"


def test_capture_info_counts(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.send("server", "RA", dt=1.0)
    ex = facts_of(tmp_path, conv)
    info = ex.capture
    assert (info.format, info.records, info.tcp_packets, info.rst_packets) == ("pcap", 4, 4, 1)
    assert info.first_time == pytest.approx(1_700_000_000.0)
    assert info.last_time == pytest.approx(1_700_000_001.01)
    assert info.link_types == [1] and info.warnings == []
    assert [c.id for c in ex.connections] == ["c1"] and ex.rsts[0].id == "r1"


def test_snaplen_cut_trigger_keeps_its_real_length(tmp_path):
    conv = windows_server_conv()
    conv.handshake()
    conv.data("client", b"POST /upload HTTP/1.1\r\n" + b"A" * 1200, dt=0.1)
    conv.send("server", "RA", dt=0.01, ttl=250, forged=True)
    path = tmp_path / "cut.pcap"
    path.write_bytes(to_pcap(conv.records, snaplen=96))
    (rst,) = extract(path).rsts
    assert rst.trigger_len == 1223 and rst.largest_segment_before == 1223
    assert rst.trigger_excerpt.startswith("POST /upload HTTP/1.1\\x0d\\x0aAAA")
    assert rst.bytes_c2s_before == 1223 and rst.seq_position == "exact"
