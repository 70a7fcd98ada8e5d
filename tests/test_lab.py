"""The real lab: every scenario run in network namespaces with real kernels and netfilter, then
its two captures read back with ``facts.extract`` and checked against ``expected.yaml`` (which
the lab derives from the topology it built, not from the captures) and against this file's own
table of what each scenario must show.

Needs root, iproute2, iptables, tcpdump (and HAProxy for the lb_* scenarios); skips with the
reason otherwise. Scenarios run one after another, each in a few seconds.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from examples.lab import SCENARIOS, lab_unavailable_reason, read_expected, run
from examples.lab.netns import Lab

REPO = Path(__file__).resolve().parents[1]

# What each scenario must show, stated independently of the lab code:
# (capture holding the RST, claimed sender, initial TTL, tracert hop seen from that capture's
#  host, client program errors). None: no RST at all.
MUST_SHOW = {
    "firewall_idle_timeout": ("client", "server", 255, 2, ["ECONNRESET"]),
    "firewall_policy_block": ("client", "server", 255, 2, ["ECONNREFUSED"]),
    "dpi_payload_match": ("client", "server", 255, 2, ["ECONNRESET"]),
    "ids_rate_limit": ("client", "server", 255, 2, ["ECONNREFUSED", "ECONNREFUSED"]),
    "nat_table_expiry": ("client", "server", 255, 2, ["ECONNRESET"]),
    "asymmetric_routing": ("server", "client", 255, 2, ["TIMEOUT"]),
    "path_change": ("client", "server", 255, 3, ["ECONNRESET"]),
    "endpoint_abort": ("client", "server", 128, 4, ["ECONNRESET"]),
    "endpoint_port_closed": ("client", "server", 128, 4, ["ECONNREFUSED"]),
    "endpoint_after_close": ("client", "server", 128, 4, ["EOF"]),
    "keepalive_fix": (None, None, None, None, []),
    "lb_idle_timeout": ("client", "server", 255, 2, ["EOF"]),
    "lb_backend_down": ("client", "server", 255, 2, ["EOF"] * 5),  # five sessions shut at once
}


def _skip_reason(name: str = "") -> str | None:
    reason = lab_unavailable_reason()
    if reason:
        return reason
    if name.startswith("lb_") and shutil.which("haproxy") is None:
        return "HAProxy is not installed"
    return None


def _extract(path: Path):
    # Imported here so collection works on a checkout without the extractor.
    from facts.extract import extract
    return extract(path)


def _scenario_rsts(extraction, port: int):
    """RSTs on the scenario's service port (HAProxy's health checks use another port)."""
    return [r for r in extraction.rsts if r.connection.server.port == port]


def test_every_scenario_has_a_must_show_row():
    assert set(MUST_SHOW) == set(SCENARIOS)


def test_scenario_truth_uses_knowledge_base_ids():
    """origin, pattern and sub-type of every scenario are conclusions the KB can reach."""
    import yaml
    kinds: dict[str, str] = {}
    for path in sorted((REPO / "knowledge").glob("*.yaml")):
        for conclusion in (yaml.safe_load(path.read_text()) or {}).get("conclusions", []):
            kinds[conclusion["id"]] = conclusion["kind"]
    if not kinds:
        pytest.skip("knowledge base has no conclusions yet")
    for scenario in SCENARIOS.values():
        assert kinds.get(f"origin.{scenario.origin}") == "origin", scenario.name
        assert kinds.get(f"pattern.{scenario.pattern}") == "pattern", scenario.name
        assert kinds.get(scenario.subtype) == "subtype", scenario.name


# Each scenario in its own address family, plus a few in the other one.
RUNS = [(name, None) for name in MUST_SHOW] + [
    ("firewall_idle_timeout", 6), ("nat_table_expiry", 6), ("lb_idle_timeout", 6),
    ("firewall_policy_block", 4), ("endpoint_port_closed", 4)]


@pytest.mark.lab
@pytest.mark.parametrize("name,family", RUNS, ids=[f"{n}-v{f or 'default'}" for n, f in RUNS])
def test_scenario_captures_show_what_really_happened(name, family, tmp_path):
    reason = _skip_reason(name)
    if reason:
        pytest.skip(reason)
    expected = run(name, tmp_path, family)
    assert read_expected(tmp_path / "expected.yaml") == expected
    caps = {side: _extract(tmp_path / f"{side}.pcap") for side in ("client", "server")}
    family = family or SCENARIOS[name].family
    assert expected.endpoints.family == family
    assert {c.ip_version for side in caps for c in caps[side].connections} == {family}
    port = expected.endpoints.server_port
    rsts = {side: _scenario_rsts(caps[side], port) for side in caps}
    where, claimed, initial, hop, errors = MUST_SHOW[name]

    assert expected.client_errors == errors
    assert expected.survives == (where is None)
    if where is None:
        assert caps["client"].capture.rst_packets == 0 and caps["server"].capture.rst_packets == 0
        assert expected.connections_ok >= 1
    else:
        assert rsts[where], f"{name}: no RST in {where}.pcap"
        first = rsts[where][0]
        assert (first.claimed_sender, first.initial_ttl, first.tracert_hop) == (claimed, initial,
                                                                                hop)

    # Every expected RST is in its capture, with the TTL arithmetic of the topology.
    for exp in expected.rsts:
        found = [r for r in rsts[exp.capture] if r.claimed_sender == exp.claimed_sender]
        assert len(found) >= exp.min_count, f"{exp.capture}.pcap: RSTs {found}"
        for rst in found:
            assert rst.ttl == exp.ttl
            assert rst.initial_ttl == exp.initial_ttl
            assert rst.ttl_decrements == exp.ttl_decrements
            assert rst.tracert_hop == exp.tracert_hop == exp.ttl_decrements + 1
            if exp.answers_syn:
                assert rst.rst_answers_syn and not rst.handshake_completed
    # ... and nothing else: every RST on the service port is one the scenario predicts.
    for side in caps:
        predicted = {(e.claimed_sender, e.ttl) for e in expected.rsts if e.capture == side}
        assert {(r.claimed_sender, r.ttl) for r in rsts[side]} <= predicted

    # The end that is blamed never sent it (middle devices), or did (endpoint controls).
    for side in expected.no_rst_from:
        assert not [r for r in rsts[side] if r.claimed_sender == side], \
            f"{side}.pcap shows {side} sending a RST"
    for side in expected.rst_sent_by_capture_host:
        own = [r for r in rsts[side] if r.claimed_sender == side]
        assert own and all(r.ttl_decrements == 0 for r in own)
    if expected.origin == "middle_device" and where is not None and claimed in expected.no_rst_from:
        assert not [r for r in rsts[claimed] if r.claimed_sender == claimed]

    # Baselines: the claimed sender's own packets, and whether the RST's TTL matches them.
    for base in expected.baselines:
        conns = [c for c in caps[base.capture].connections
                 if (c.server_ttls if base.sender == "server" else c.client_ttls)]
        ttls = {t for c in conns for t in (c.server_ttls if base.sender == "server"
                                           else c.client_ttls)}
        assert base.ttl in ttls, f"{base.capture}.pcap: {base.sender} TTLs {ttls}"
        for rst in rsts[base.capture]:
            if rst.claimed_sender == base.sender:
                assert rst.baseline_ttl_host == base.ttl
                assert rst.ttl_matches_baseline == (rst.ttl == base.ttl)

    # Who talks to whom in each capture (NAT and the proxy change the server's view).
    ends = expected.endpoints
    assert any(c.client.ip == ends.client_ip and c.server.ip == ends.server_ip
               for c in caps["client"].connections)
    for conn in caps["server"].connections:
        if conn.server.port == port:
            assert (conn.client.ip, conn.server.ip) == (ends.server_sees_client_ip,
                                                        ends.server_sees_server_ip)

    # Idle: the RST comes after the configured timeout, and the gap is what the client measured.
    if expected.idle is not None:
        conn = caps["client"].connections[0]
        timeout = expected.idle.configured_timeout_s
        if expected.survives:
            assert conn.largest_idle_gap_s < timeout, "keepalive should keep gaps short"
        else:
            assert timeout - 0.05 <= conn.largest_idle_gap_s <= timeout + 2.5
            assert abs(conn.largest_idle_gap_s - expected.idle.measured_idle_s) < 0.3
            rst = rsts["client"][0]
            assert rst.time - conn.start >= timeout

    # rstsleuth analyze on both captures: the origin and the tracert hop must be right.
    _assert_analyze_origin(tmp_path)


def _assert_analyze_origin(folder: Path) -> None:
    """The verdict on freshly made captures: origin, tracert hop, timing pattern and top
    sub-type with both captures; and the origin from the client capture alone wherever that
    capture can tell (a forged RST reached the client from a device that is not a full proxy)."""
    from engine.analysis import analyze
    from examples.lab import read_expected
    from examples.lab.check import check_folder, missing_resets
    rows = check_folder(folder, _kb())
    assert not missing_resets(folder, rows)
    for row in rows:
        assert row.origin_ok, row
        assert row.pattern_ok, row
        assert row.subtype_ok, row
    expected = read_expected(folder / "expected.yaml")
    at_client = [e for e in expected.rsts if e.capture == "client"]
    if at_client and all(e.sent_by_role == "middle_device" for e in at_client):
        alone = analyze(str(folder / "client.pcap"), kb=_kb())
        port = expected.endpoints.server_port
        verdicts = {r.origin for r in alone.resets if r.connection.server.port == port}
        assert verdicts == {"middle_device"}, (expected.scenario, verdicts)
    if at_client and all(e.sent_by_role == "host" for e in at_client):
        alone = analyze(str(folder / "client.pcap"), kb=_kb())
        assert all(r.origin != "middle_device" for r in alone.resets), expected.scenario


_KB = []


def _kb():
    if not _KB:
        from engine import load_kb
        _KB.append(load_kb())
    return _KB[0]


@pytest.mark.lab
def test_scenario_specifics(tmp_path):
    """Facts particular to single scenarios, on one run each of the cheapest ones."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    run("firewall_policy_block", tmp_path / "block")
    server = _extract(tmp_path / "block" / "server.pcap")
    assert server.connections and all(c.server.port != 8080 for c in server.connections), \
        "the refused SYN must never reach the server"
    client = _extract(tmp_path / "block" / "client.pcap")
    assert {c.ip_version for c in client.connections} == {6}

    run("dpi_payload_match", tmp_path / "dpi")
    client = _extract(tmp_path / "dpi" / "client.pcap")
    server = _extract(tmp_path / "dpi" / "server.pcap")
    rst = client.rsts[0]
    assert rst.trigger_excerpt and "/etc/passwd" in rst.trigger_excerpt
    assert server.connections[0].bytes_c2s < client.connections[0].bytes_c2s, \
        "the matching segment must be dropped before the server"


@pytest.mark.lab
def test_lab_tears_down_on_error():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)

    def names() -> set[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return {line.split()[0] for line in out.splitlines() if line.strip()}

    with pytest.raises(RuntimeError):
        with Lab() as lab:
            lab.add_node("a", 64, "host")
            lab.add_node("b", 64, "host")
            lab.link("a", "b")
            prefix = lab.prefix
            assert {n for n in names() if n.startswith(prefix)}
            raise RuntimeError("boom")
    assert not {n for n in names() if n.startswith(prefix + "-")}


def test_cli_not_root_is_one_line_exit_2():
    """Runs everywhere: the lab refuses to start without root, with one line and exit 2."""
    code = ("import os, sys; os.geteuid = lambda: 1000; from tui.cli import main; "
            "sys.exit(main(['lab', 'run', 'firewall_idle_timeout', '--out', 'unused']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "root" in proc.stderr
    assert not (REPO / "unused").exists()


def test_cli_list_and_unknown_scenario():
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "lab", "list"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == list(SCENARIOS)
    proc = subprocess.run([sys.executable, "-m", "examples.lab", "run", "nope", "--out", "x"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown lab scenario 'nope'" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_analyze_names_origin_and_hop_of_committed_lab_captures(capsys):
    """``rstsleuth lab check`` over the committed captures: analyze must name who sent each
    reset and from which tracert hop (pattern and sub-type mismatches are only listed)."""
    from examples.lab.cli import main
    root = REPO / "examples" / "lab_captures"
    if not root.is_dir():
        pytest.skip("no committed lab captures")
    assert main(["check", str(root)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "firewall_idle_timeout  client  middle_device" in out
    assert "endpoint_abort         client  endpoint" in out


def test_committed_lab_captures_agree_with_their_expected_yaml():
    """The captures under examples/lab_captures were made by this lab; they still read back as
    their expected.yaml says (no root needed)."""
    root = REPO / "examples" / "lab_captures"
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not folders:
        pytest.skip("no committed lab captures")
    for folder in folders:
        expected = read_expected(folder / "expected.yaml")
        port = expected.endpoints.server_port
        for exp in expected.rsts:
            found = [r for r in _scenario_rsts(_extract(folder / f"{exp.capture}.pcap"), port)
                     if r.claimed_sender == exp.claimed_sender]
            assert len(found) >= exp.min_count, folder.name
            assert {(r.ttl, r.tracert_hop) for r in found} == {(exp.ttl, exp.tracert_hop)}
        for side in expected.no_rst_from:
            rsts = _scenario_rsts(_extract(folder / f"{side}.pcap"), port)
            assert not [r for r in rsts if r.claimed_sender == side], folder.name
