"""Verdicts of ``rstsleuth analyze`` on the COMMITTED lab captures (examples/lab_captures).

The lab itself needs root and network namespaces (tests/test_lab.py); its captures do not, so
these tests run in every CI. They pin what the KB concludes from real kernel, netfilter and
HAProxy behaviour: origin, tracert hop, timing pattern and sub-type, with both captures (the
verdict expected.yaml records) and with one capture alone, where some questions honestly cannot
be decided:

- a firewall's and a NAT's idle expiry look the same from the client (both reset the first
  packet after the idle): tied until the dual capture shows whether addresses were translated;
- an iptables string match and an IPS signature leave the same packets: DPI and IPS stay tied;
- a full proxy (HAProxy) is the client's real TCP peer: one capture alone reads "endpoint",
  only the dual capture shows the server never sent the RST.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from examples.lab.check import check_folder, missing_resets
from examples.lab.expected import read_expected

ROOT = Path(__file__).resolve().parents[1] / "examples" / "lab_captures"

# scenario -> (origin, pattern, sub-type): stated here, not only read from expected.yaml, so
# that neither the KB nor the ground truth can drift without a test saying so.
VERDICTS = {
    "firewall_idle_timeout": ("middle_device", "idle_timeout", "firewall.idle_timeout"),
    "nat_table_expiry": ("middle_device", "idle_timeout", "nat.table_expiry"),
    "firewall_policy_block": ("middle_device", "syn_rejected", "firewall.policy_block"),
    "dpi_payload_match": ("middle_device", "payload_triggered", "firewall.dpi_payload_match"),
    "ids_rate_limit": ("middle_device", "syn_rejected", "ids_ips.rate_limit"),
    "asymmetric_routing": ("middle_device", "unpredictable", "routing.asymmetric"),
    "path_change": ("middle_device", "unpredictable", "routing.path_change"),
    "endpoint_abort": ("endpoint", "during_transfer", "endpoint.application_abort"),
    "endpoint_after_close": ("endpoint", "after_close", "endpoint.application_abort"),
    "endpoint_port_closed": ("endpoint", "syn_rejected", "endpoint.port_closed"),
    "lb_idle_timeout": ("middle_device", "idle_timeout", "load_balancer.session_timeout"),
    "lb_backend_down": ("middle_device", "unpredictable", "load_balancer.health_check_failure"),
}
# Sub-types that nothing in the packets can separate: the top tier is exactly this set.
HONEST_TIES = {
    "dpi_payload_match": {"firewall.dpi_payload_match", "ids_ips.signature_match"},
}


def _folder(name: str) -> Path:
    folder = ROOT / name
    if not (folder / "expected.yaml").is_file():
        pytest.skip(f"no committed lab capture for {name}")
    return folder


def _top(reset) -> set[str]:
    if not reset.diagnoses:
        return set()
    best = max(d.confidence for d in reset.diagnoses)
    return {d.id for d in reset.diagnoses if d.confidence == best}


def _resets(capture: Path, port: int, peer: Path | None = None):
    from engine.analysis import analyze
    report = analyze(str(capture), str(peer) if peer else None)
    return [r for r in report.resets if r.connection.server.port == port]


def test_every_committed_scenario_has_a_verdict_row():
    if not ROOT.is_dir():
        pytest.skip("no committed lab captures")
    with_rsts = {p.name for p in ROOT.iterdir()
                 if (p / "expected.yaml").is_file() and read_expected(p / "expected.yaml").rsts}
    assert with_rsts == set(VERDICTS)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_dual_capture_verdict(name):
    """Both captures, as ``lab check --strict``: every predicted reset is reported with the
    right origin, hop, pattern and sub-type."""
    folder = _folder(name)
    expected = read_expected(folder / "expected.yaml")
    origin, pattern, subtype = VERDICTS[name]
    assert (expected.origin, expected.pattern, expected.subtype) == (origin, pattern, subtype)
    rows = check_folder(folder)
    assert rows and not missing_resets(folder, rows)
    for row in rows:
        assert row.origin_ok, (row.capture, row.got_origin, row.got_hop)
        assert row.got_pattern == pattern, row.capture
        assert subtype in row.got_subtypes, (row.capture, row.got_subtypes)
        assert set(row.got_subtypes) == HONEST_TIES.get(name, {subtype}), row.capture


def test_keepalive_fix_has_no_reset():
    folder = _folder("keepalive_fix")
    port = read_expected(folder / "expected.yaml").endpoints.server_port
    assert not _resets(folder / "client.pcap", port, folder / "server.pcap")


@pytest.mark.parametrize("name,winner,loser", [
    ("firewall_idle_timeout", "firewall.idle_timeout", "nat.table_expiry"),
    ("nat_table_expiry", "nat.table_expiry", "firewall.idle_timeout"),
])
def test_idle_expiry_firewall_or_nat_is_decided_only_by_the_dual_capture(name, winner, loser):
    """A 3 s conntrack timeout after 4 s of idle: far below the KB's absolute idle rules, found
    as a silence out of the connection's rhythm. From the client alone firewall and NAT tie;
    the server's capture shows whether the addresses were translated."""
    folder = _folder(name)
    port = read_expected(folder / "expected.yaml").endpoints.server_port
    alone = _resets(folder / "client.pcap", port)
    assert len(alone) == 1
    r = alone[0]
    assert (r.origin, r.rst_source.tracert_hop, r.pattern) == ("middle_device", 2, "idle_timeout")
    assert _top(r) == {"firewall.idle_timeout", "nat.table_expiry"}
    both = _resets(folder / "client.pcap", port, folder / "server.pcap")
    conf = {d.id: d.confidence for d in both[0].diagnoses}
    assert _top(both[0]) == {winner}
    assert conf[winner] > conf.get(loser, 0.0)


@pytest.mark.parametrize("name", ["lb_idle_timeout", "lb_backend_down"])
def test_full_proxy_reads_as_endpoint_from_one_capture(name):
    """HAProxy terminates TCP: to the client alone its RST is the peer's own (same TTL as the
    SYN-ACK and data). Only the dual capture shows a middle device, and which one."""
    folder = _folder(name)
    port = read_expected(folder / "expected.yaml").endpoints.server_port
    for side in ("client", "server"):
        alone = _resets(folder / f"{side}.pcap", port)
        assert alone and all(r.origin == "endpoint" for r in alone), side
    both = _resets(folder / "client.pcap", port, folder / "server.pcap")
    assert both and all(r.origin == "middle_device" for r in both)
    assert all(_top(r) == {VERDICTS[name][2]} for r in both)


def test_lb_backend_down_shows_the_burst():
    folder = _folder("lb_backend_down")
    port = read_expected(folder / "expected.yaml").endpoints.server_port
    client = _resets(folder / "client.pcap", port, folder / "server.pcap")
    assert len({r.connection.id for r in client if r.observed_at == "client"}) >= 3
    times = [r.time for r in client if r.observed_at == "client"]
    assert max(times) - min(times) < 1.0


def test_asymmetric_routing_from_the_server_capture_alone():
    """The only capture holding the RSTs: 'the client' resets the server's SYN-ACK with the TTL
    of a device one router away (254), where the client's packets arrive with 61."""
    folder = _folder("asymmetric_routing")
    port = read_expected(folder / "expected.yaml").endpoints.server_port
    alone = _resets(folder / "server.pcap", port)
    assert len(alone) >= 2
    for r in alone:
        assert (r.origin, r.rst_source.tracert_hop, r.pattern) == ("middle_device", 2,
                                                                   "unpredictable")
        assert _top(r) == {"routing.asymmetric"}


def test_path_change_shows_in_the_ttl_of_normal_packets():
    """The detour adds one router (server's packets 125 -> 124) before fwb, one hop further
    than the device that carried the handshake, resets the next query (TTL 253, hop 3).
    Without that shift nothing tells this reset from a DPI block."""
    from facts.extract import extract
    folder = _folder("path_change")
    ex = extract(folder / "client.pcap")
    (rst,) = [r for r in ex.rsts if r.connection.server.port == 8080]
    assert rst.connection.server_ttl_changes == 1
    assert sorted(rst.connection.server_ttls) == [124, 125]
    assert (rst.ttl, rst.tracert_hop) == (253, 3)
    alone = _resets(folder / "client.pcap", 8080)
    assert alone[0].pattern == "unpredictable" and _top(alone[0]) == {"routing.path_change"}


def test_idle_silence_facts_on_the_lab_captures():
    from facts.extract import extract
    folder = _folder("firewall_idle_timeout")
    (rst,) = extract(folder / "client.pcap").rsts
    assert rst.idle_before_s < 0.01 and 3.9 < rst.idle_before_trigger_s < 4.2
    assert rst.idle_silence_s == rst.idle_before_trigger_s
    assert rst.earlier_gap_max_s < 0.1 and rst.idle_silence_ratio >= 10
    busy = extract(_folder("dpi_payload_match") / "client.pcap").rsts[0]
    assert busy.idle_silence_ratio < 10 and not busy.rst_answers_synack
    synack = extract(_folder("asymmetric_routing") / "server.pcap").rsts
    assert synack and all(r.rst_answers_synack and r.claimed_sender == "client" for r in synack)
