from pathlib import Path

import pytest

from facts.models import Connection, Endpoint, RstEvent
from facts.pasted.correlate import evidence_for_reset, match_log_to_resets
from facts.pasted.firewall_log import parse_firewall_log

DATA = Path(__file__).parent / "data" / "pasted"
T_102231 = 1773483751.0          # 2026-03-14 10:22:31 UTC


def make_rst(rid, time, client, server, start=None, ttl=62, roles_inferred=False,
             handshake="complete", claimed="server"):
    """A real RstEvent (the analyzer's type), built by hand."""
    conn = Connection(id="c" + rid, capture="t.pcap", ip_version=6 if ":" in client[0] else 4,
                      client=Endpoint(ip=client[0], port=client[1]),
                      server=Endpoint(ip=server[0], port=server[1]),
                      roles_inferred=roles_inferred, start=time - 60 if start is None else start,
                      end=time, handshake=handshake)
    initial = 64 if ttl <= 64 else 128 if ttl <= 128 else 255
    return RstEvent(id=rid, capture="t.pcap", frame=1, connection_id=conn.id, connection=conn,
                    claimed_sender=claimed, time=time, flags="RST", ip_version=conn.ip_version,
                    ttl=ttl, initial_ttl=initial, ttl_decrements=initial - ttl,
                    tracert_hop=initial - ttl + 1, window=0)


def entries(name):
    return parse_firewall_log((DATA / name).read_text(encoding="utf-8")).entries


def test_asa_idle_timeout_matches_reset_either_orientation():
    rst = make_rst("r1", T_102231 + 0.4, ("10.0.5.21", 51012), ("203.0.113.80", 443),
                   start=T_102231 - 3603)
    matches = match_log_to_resets(entries("fw_asa.log"), [rst])
    assert len(matches) == 1
    m = matches[0]
    assert (m.rst_id, m.quality, m.nat_seen, m.zone_offset_s) == ("r1", "tuple", False, 0)
    assert m.time_delta_s == pytest.approx(-0.4)
    assert m.duration_consistent is True and m.entry.reason == "idle_timeout"
    assert evidence_for_reset(matches, "r1") == {"firewall_log_reason": "idle_timeout",
                                                 "path_has_firewall": True}
    assert "rst" not in m.model_dump()


def test_time_outside_tolerance_or_wrong_duration_rejected():
    far = make_rst("r1", T_102231 + 5, ("10.0.5.21", 51012), ("203.0.113.80", 443),
                   start=T_102231 - 3603)
    assert match_log_to_resets(entries("fw_asa.log"), [far]) == []
    assert len(match_log_to_resets(entries("fw_asa.log"), [far], tolerance_s=6)) == 1
    young = make_rst("r2", T_102231, ("10.0.5.21", 51012), ("203.0.113.80", 443),
                     start=T_102231 - 100)            # log says 1:00:03, capture says 100 s
    assert match_log_to_resets(entries("fw_asa.log"), [young]) == []
    midflow = make_rst("r3", T_102231, ("10.0.5.21", 51012), ("203.0.113.80", 443),
                       start=T_102231 - 100, roles_inferred=True, handshake="none")
    assert match_log_to_resets(entries("fw_asa.log"), [midflow])[0].duration_consistent is True


def test_nat_columns_give_full_tuple_match():
    # captured outside the Palo Alto: the client appears as its SNAT address
    rst = make_rst("r1", T_102231 + 91.2, ("198.51.100.10", 40090), ("198.51.100.20", 443),
                   start=T_102231 + 79)
    m = match_log_to_resets(entries("fw_paloalto.log"), [rst])
    assert len(m) == 1 and m[0].quality == "tuple" and m[0].nat_seen
    assert m[0].entry.reason == "tcp_rst" and m[0].entry.reset_from == "server"
    assert evidence_for_reset(m, "r1")["path_has_nat"] is True


def test_one_side_match_when_nat_unknown():
    # the ASA logs real addresses only; a capture behind another NAT shows a different client
    rst = make_rst("r1", T_102231 + 1, ("192.0.2.50", 61000), ("203.0.113.80", 443),
                   start=T_102231 - 3602)
    m = match_log_to_resets(entries("fw_asa.log"), [rst])
    assert [(x.quality, x.matched_side) for x in m] == [("one_side", "server")]


def test_zone_less_local_time_matches_with_offset():
    # FortiGate line 3 has no tz: 10:25:10 printed; capture (UTC) saw the RST at 02:25:10.5
    rst = make_rst("r1", T_102231 + 159 - 8 * 3600 + 0.5, ("10.0.5.21", 51101),
                   ("198.51.100.20", 22))
    m = match_log_to_resets(entries("fw_fortigate.log"), [rst])
    assert len(m) == 1 and m[0].zone_offset_s == 8 * 3600
    assert m[0].time_delta_s == pytest.approx(-0.5)


def test_zoned_time_never_shifted():
    # FortiGate line 2 has tz="+0800": an 8 h mismatch is a real mismatch
    rst = make_rst("r1", T_102231 + 91 + 8 * 3600, ("10.0.5.21", 51090), ("198.51.100.20", 443),
                   start=T_102231 + 79 + 8 * 3600)
    assert match_log_to_resets(entries("fw_fortigate.log"), [rst]) == []


def test_year_less_syslog_line_borrows_the_reset_year():
    rst = make_rst("r1", T_102231 + 159.3, ("10.0.5.21", 51101), ("198.51.100.20", 22),
                   start=T_102231 + 129, handshake="syn")
    m = match_log_to_resets(entries("fw_asa.log"), [rst])
    assert len(m) == 1 and m[0].entry.reason_raw == "SYN Timeout"


def test_ipv6_and_unmatched_resets():
    v6 = make_rst("r6", T_102231 + 329, ("2001:db8:5::21", 51544), ("2001:db8:50::80", 443),
                  start=T_102231 + 329 - 600)
    other = make_rst("rx", T_102231, ("10.9.9.9", 1), ("10.8.8.8", 2))
    m = match_log_to_resets(entries("fw_asa.log"), [v6, other])
    assert [(x.rst_id, x.entry.reset_from) for x in m] == [("r6", "firewall")]
    assert evidence_for_reset(m, "rx") == {}
