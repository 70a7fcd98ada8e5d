"""The shipped knowledge base encodes the whole scenario map (mind map, symptom rows, flowchart
branches, fixes, tips, step-4 defaults), corrects it where it is wrong, lets the interview reach
every sub-type from answers alone, and is sound on the shared real-capture corpus."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.export import export, mindmap_tree
from engine.kb_model import Test as KbTest
from engine.validate import FIX_PARAMS, walk_conditions, validate
from facts.fields import FIELDS

ROOT = Path(__file__).resolve().parents[1]
SCENARIO_MAP = ROOT.parent / "shared" / "reference" / "scenario-map.txt"
CORPUS = ROOT.parent / "shared" / "corpus"

SUBTYPES = ["firewall.idle_timeout", "firewall.policy_block", "firewall.dpi_payload_match",
            "firewall.reassembly_limit", "load_balancer.session_timeout",
            "load_balancer.health_check_failure", "ids_ips.signature_match", "ids_ips.rate_limit",
            "nat.table_expiry", "nat.port_exhaustion", "isp.content_filtering",
            "isp.rate_injection", "routing.asymmetric", "routing.path_change"]
ENDPOINT_SUBTYPES = ["endpoint.application_abort", "endpoint.port_closed", "endpoint.backlog_full"]
PATTERNS = ["pattern.syn_rejected", "pattern.idle_timeout", "pattern.payload_triggered",
            "pattern.during_transfer", "pattern.unpredictable", "pattern.after_close"]


def _map_text() -> str:
    if not SCENARIO_MAP.is_file():
        pytest.skip(f"scenario map not found at {SCENARIO_MAP}")
    return SCENARIO_MAP.read_text(encoding="utf-8")


def _all_text(kb) -> str:
    parts = []
    for obj in (list(kb.rules) + list(kb.conclusions.values()) + list(kb.fixes.values())
                + list(kb.tips.values()) + list(kb.reference.pitfalls)):
        parts.append(obj.model_dump_json())
    parts += [row.model_dump_json() for row in kb.reference.idle_timeouts]
    return "\n".join(parts)


def test_shipped_kb_validates_clean():
    assert validate() == []


def test_identifiers(kb):
    for cid in ["origin.middle_device", "origin.endpoint", "origin.undetermined"]:
        assert kb.conclusions[cid].kind == "origin"
    for cid in PATTERNS:
        assert kb.conclusions[cid].kind == "pattern"
        assert kb.conclusions[cid].checks and kb.conclusions[cid].fixes
    for cid in SUBTYPES + ENDPOINT_SUBTYPES:
        assert kb.conclusions[cid].kind == "subtype" and kb.conclusions[cid].family
        assert kb.rules_concluding(cid), cid
    for cid in SUBTYPES:
        assert kb.conclusions[cid].mindmap and kb.conclusions[cid].fixes


def _mindmap_blocks(text: str) -> list[str]:
    blocks = re.findall(r"^mindmap\n(.*?)\n\n", text, flags=re.S | re.M)
    return ["mindmap\n" + b for b in blocks]


def test_mindmap_export_equals_the_scenario_map(kb):
    blocks = _mindmap_blocks(_map_text())
    assert len(blocks) == 2 and mindmap_tree(blocks[0]) == mindmap_tree(blocks[1])
    exported = export("mindmap")
    assert mindmap_tree(exported) == mindmap_tree(blocks[0])


def test_flowchart_export_has_every_branch():
    chart = export("flowchart")
    assert chart.startswith("flowchart TD")
    for text in ["Step 1", "TTL different", "TTL same", "tracert hop = that + 1",
                 "RST after an idle period", "RST immediately after SYN",
                 "RST after a specific data pattern", "RST during active data transfer",
                 "RST at random, unpredictable times", "Check FW logs for deny rules",
                 "Check IDS/IPS logs", "ping -f -l 1472", "tracert from BOTH ends",
                 "Measure the exact idle time", "Update the firewall rules",
                 "Add an IDS/IPS exception", "Adjust MTU/MSS, enable PMTUD",
                 "Make both directions traverse the same firewall", "copies the TTL"]:
        assert text in chart, text


def _symptom_rows(text: str, header: str) -> list[str]:
    after = text.split(header, 1)[1].strip("\n").split("\n\n", 1)[0]
    return [line.strip() for line in after.splitlines() if line.strip()]


def test_every_symptom_row_is_encoded(kb):
    text = _map_text()
    rows_en = _symptom_rows(text, "Symptom Description Troubleshooting Clue")
    rows_zh = _symptom_rows(text, "症状 说明 排查线索")
    assert len(rows_en) == len(rows_zh) == len(kb.symptoms) == 8
    for s in kb.symptoms.values():
        assert f"{s.symptom.en} {s.description.en} {s.clue.en}" in rows_en, s.id
        assert f"{s.symptom.zh} {s.description.zh} {s.clue.zh}" in rows_zh, s.id
        assert s.question in kb.questions and s.related


FIX_TEXTS = {
    "fix.keepalive_global": ["KeepAliveTime", r"Tcpip\Parameters", "7200000", "restart"],
    "fix.keepalive_app_level": ["application"],
    "fix.keepalive_sql": ["Keep Alive", "Connection Timeout", "both", "SSMS"],
    "fix.keepalive_rdp": ["KeepAliveInterval", "MINUTES", "Configure keep-alive connection interval"],
    "fix.keepalive_ssh": ["ServerAliveInterval", "ServerAliveCountMax", "ClientAliveInterval",
                          "ClientAliveCountMax"],
    "fix.smb_autodisconnect": ["AutoDisconnectTimeout", "NOT a TCP keepalive", "15"],
    "fix.ids_exception": ["source/destination IP", "by port", "threshold", "approval"],
    "fix.lb_azure_idle": ["4 minutes", "4 to 100 minutes", "TCP reset on idle", "outdated"],
    "fix.lb_f5_idle": ["idle-timeout", "300 s"],
    "fix.lb_aws_idle": ["60 s", "350 s"],
    "fix.routing_symmetric": ["same firewall"],
    "fix.firewall_state_sync": ["state"],
    "fix.disable_stateful_inspection": ["stateful inspection"],
    "fix.nat_keepalive": ["keepalive"],
    "fix.nat_timeout": ["timeout"],
    "fix.nat_static": ["static"],
    "fix.isp_vpn": ["VPN"],
    "fix.isp_tls": ["TLS"],
    "fix.isp_contact": ["ISP"],
    "fix.firewall_policy_update": ["rule"],
    "fix.check_fw_logs": ["deny"],
    "fix.check_ids_logs": ["signature ID"],
    "fix.mtu_check": ["ping -f -l {ping_size}", "+ 28"],
    "fix.mtu_adjust": ["PMTUD", "reassembly", "{mss}"],
    "fix.tracert_both_ends": ["tracert {server_ip}", "tracert {client_ip}"],
    "fix.measure_idle_timeout": ["TcpClient", "idle"],
    "fix.locate_with_tracert": ["hop 3", "decrement-ttl"],
    "fix.firewall_idle_timeout": ["{device_timeout_s}", "timeout ... reset"],
}
PORTS = {"fix.keepalive_ssh": [22], "fix.keepalive_rdp": [3389], "fix.keepalive_sql": [1433],
         "fix.smb_autodisconnect": [445]}


@pytest.mark.parametrize("fix_id", sorted(FIX_TEXTS))
def test_section_5_fixes(kb, fix_id):
    fix = kb.fixes[fix_id]
    for needle in FIX_TEXTS[fix_id]:
        assert needle in fix.steps.en or needle in fix.title.en, (fix_id, needle)
    assert fix.steps.zh.strip()
    assert fix.ports == PORTS.get(fix_id, [])


def test_fix_templates_fill_with_every_parameter(kb):
    values = {name: f"<{name}>" for name in FIX_PARAMS}
    for fix in kb.fixes.values():
        for text in (fix.title.en, fix.title.zh, fix.steps.en, fix.steps.zh):
            filled = text.format_map(values)
            assert not re.search(r"\{[a-z_]+\}", filled), (fix.id, filled)
        assert set(fix.params) <= FIX_PARAMS


TIPS = {
    "tip.ttl_column": "TTL column", "tip.keepalive_vs_firewall": "single most common root cause",
    "tip.sql_keepalive": "BOTH", "tip.rdp_keepalive": "KeepAliveInterval",
    "tip.ssh_keepalive": "ServerAliveInterval", "tip.firewall_log_correlation": "session timed out",
    "tip.asymmetric_subtle": "short-lived connections work perfectly", "tip.measure_timeout": "leave completely idle",
    "tip.cloud_timeouts": "AWS Classic ELB/ALB to 60 seconds",
    "tip.dual_capture_rule": "never sent it", "tip.ttl_copy": "copy the original TTL",
}


def test_section_6_tips(kb):
    for tip_id, needle in TIPS.items():
        assert needle in kb.tips[tip_id].text.en, tip_id
        assert kb.tips[tip_id].text.zh.strip()


def test_step_4_defaults_and_map_corrections_are_stated(kb):
    text = _all_text(kb)
    for needle in ["7 200 000 ms", "1000 ms", "10 probes",                     # step 4 defaults
                   "hop 3", "hop = decrements + 1",                             # off-by-one hop
                   "do not decrement TTL by default",                           # Cisco ASA
                   "4–100 min", "outdated",                                     # Azure LB max
                   "AWS Classic ELB/ALB 60 s",                                  # AWS ELB
                   "NOT a TCP keepalive",                                       # SMB
                   "in MINUTES"]:                                               # RDP unit
        assert needle in text, needle


INITIAL_TTLS = {"Windows": 128, "Linux": 64, "macOS": 64, "FreeBSD": 64, "Juniper (Junos)": 64,
                "Cisco IOS and many network devices (routers/firewalls)": 255,
                "Cisco IOS (ICMP)": 254, "Solaris (ICMP)": 255, "Solaris (TCP)": 64, "AIX (TCP)": 60}
IDLE = {"timeout.cisco_asa": 3600, "timeout.paloalto": 3600, "timeout.fortigate": 3600,
        "timeout.checkpoint": 3600, "timeout.juniper_srx": 1800, "timeout.f5_fastl4": 300,
        "timeout.netscaler": 9000, "timeout.haproxy": None, "timeout.nginx_keepalive": 75,
        "timeout.nginx_proxy": 60, "timeout.azure_lb": 240, "timeout.aws_elb": 60,
        "timeout.aws_nlb": 350, "timeout.aws_nat_gateway": 350, "timeout.azure_nat_gateway": 240,
        "timeout.gcp_cloud_nat": 1200, "timeout.linux_conntrack": 432000,
        "timeout.windows_keepalive": 7200, "timeout.linux_keepalive": 7200}


def test_reference_tables(kb):
    ttls = {row.sender: row.ttl for row in kb.reference.initial_ttls}
    for sender, ttl in INITIAL_TTLS.items():
        assert ttls[sender] == ttl, sender
    idle = {row.id: row for row in kb.reference.idle_timeouts}
    for ident, seconds in IDLE.items():
        assert idle[ident].seconds == seconds, ident
        assert idle[ident].sends_rst and idle[ident].reference
    assert "timeout ... reset" in idle["timeout.cisco_asa"].sends_rst
    assert "TCP reset on idle" in idle["timeout.azure_lb"].sends_rst
    pitfalls = " ".join(p.text.en for p in kb.reference.pitfalls)
    for needle in ["ASA", "IP ID", "Great Firewall", "normalise TTL", "Asymmetric paths",
                   "255/254 and IP ID 0", "Full proxies"]:
        assert needle in pitfalls, needle


def _rule_fields(kb) -> set[str]:
    return {c.field for r in kb.rules for _, c in walk_conditions(r.when, ()) if isinstance(c, KbTest)}


def test_questions_cover_every_field_an_engineer_can_answer(kb):
    asked = {q.sets for q in kb.questions.values()}
    answerable = {f for f in _rule_fields(kb) if FIELDS[f].source == "context"}
    answerable |= {"dual_peer_sent_rst", "dual_peer_saw_connection", "ttl_matches_baseline",
                   "idle_before_s"}
    assert answerable - asked == set()
    assert kb.questions["q.dual_peer_sent_rst"].answer == "yes_no"
    assert kb.questions["q.idle_before_s"].answer == "duration"
    assert {kb.questions["q.rst_ttl"].sets, kb.questions["q.normal_ttl"].sets} == {
        "ttl", "baseline_ttl_conn"}


INTERVIEWS = {
    "firewall.idle_timeout": {"dual_peer_sent_rst": False, "symptom_drops_after_idle": True,
                              "path_has_firewall": True},
    "firewall.policy_block": {"symptom_fails_at_connect": True, "path_has_firewall": True,
                              "port_listening": True},
    "firewall.dpi_payload_match": {"ttl_matches_baseline": False, "path_has_firewall": True,
                                   "symptom_specific_content_fails": True},
    "firewall.reassembly_limit": {"dual_peer_sent_rst": False, "path_has_firewall": True,
                                  "symptom_large_transfer_fails": True},
    "load_balancer.session_timeout": {"dual_peer_sent_rst": False, "idle_before_s": 240.0,
                                      "path_has_load_balancer": True},
    "load_balancer.health_check_failure": {"backend_marked_down": True},
    "ids_ips.signature_match": {"symptom_specific_content_fails": True, "ids_alert_seen": True},
    "ids_ips.rate_limit": {"symptom_high_connection_rate": True, "path_has_ids_ips": True,
                           "symptom_fails_at_connect": True},
    "nat.table_expiry": {"symptom_cyclic_reconnect": True, "path_has_nat": True},
    "nat.port_exhaustion": {"path_has_nat": True, "symptom_many_client_connections": True,
                            "symptom_fails_at_connect": True},
    "isp.content_filtering": {"symptom_specific_content_fails": True, "path_crosses_isp": True,
                              "traffic_encrypted": False},
    "isp.rate_injection": {"symptom_large_transfer_fails": True, "path_crosses_isp": True,
                           "symptom_lan_ok_wan_fails": True},
    "routing.asymmetric": {"tracert_paths_differ": True, "symptom_one_direction_fails": True},
    "routing.path_change": {"route_flap_seen": True},
    "endpoint.application_abort": {"app_closed_socket": True},
    "endpoint.port_closed": {"symptom_fails_at_connect": True, "port_listening": False},
    "endpoint.backlog_full": {"server_backlog_full": True},
}


@pytest.fixture(scope="module")
def reasoner(kb):
    engine = pytest.importorskip("engine.reasoner")
    r = engine.Reasoner(kb)
    yield r
    r.close()


@pytest.mark.parametrize("subtype", sorted(INTERVIEWS))
def test_interview_answers_alone_reach_every_subtype(kb, reasoner, subtype):
    answers = INTERVIEWS[subtype]
    asked = {q.sets for q in kb.questions.values()}
    assert set(answers) <= asked  # every answer is something the interview asks
    inference = reasoner.infer(answers)
    assert inference.cf(subtype) >= 0.2, inference.summary()


def test_interview_covers_all_subtypes():
    assert sorted(INTERVIEWS) == sorted(SUBTYPES + ENDPOINT_SUBTYPES)


def test_dual_capture_answers_decide_the_origin(reasoner):
    middle = reasoner.infer({"dual_peer_saw_connection": True, "dual_peer_sent_rst": False})
    assert middle.origin == "middle_device" and middle.cf("origin.middle_device") >= 0.95
    assert reasoner.infer({"dual_peer_sent_rst": True}).origin == "endpoint"


# Expected verdicts for the shared corpus (README there): file prefix -> (RST index, origin).
CORPUS_EXPECT = {"03_": [(0, "middle_device")], "05_": [(0, "middle_device")],
                 "07_": [(0, "endpoint"), (1, "endpoint"), (2, "endpoint")],
                 "10_": [(0, "endpoint")], "11_": [(0, "endpoint")], "12_": [(0, "endpoint")],
                 "16_": [(0, "endpoint")], "14_": [(0, "undetermined")],
                 "15_": [(0, "undetermined")]}
ENDPOINT_CASES = ("07_", "10_", "11_", "12_", "13_", "16_", "17_")


@pytest.mark.corpus
def test_sound_on_the_real_corpus(kb, reasoner):
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus absent at {CORPUS}")
    analysis = pytest.importorskip("engine.analysis")
    for prefix, expected in CORPUS_EXPECT.items():
        path = next(CORPUS.glob(prefix + "*"))
        report = analysis.analyze(str(path), kb=kb, reasoner=reasoner)
        for index, origin in expected:
            assert report.resets[index].origin == origin, (path.name, index)
        if prefix == "05_":
            assert report.resets[0].pattern == "idle_timeout"
            assert report.resets[0].diagnoses[0].id == "firewall.idle_timeout"
        if prefix == "03_":
            assert report.resets[0].pattern == "syn_rejected"
            assert report.resets[0].diagnoses[0].id == "firewall.policy_block"
        if prefix == "07_":
            assert all(r.pattern == "syn_rejected" for r in report.resets)
    for prefix in ENDPOINT_CASES:  # never accuse an endpoint (Weaver et al.)
        path = next(CORPUS.glob(prefix + "*"))
        report = analysis.analyze(str(path), kb=kb, reasoner=reasoner)
        assert all(r.origin != "middle_device" for r in report.resets), path.name


def _guards_against_endpoint(rule) -> bool:
    from engine.kb_model import Concluded, NotOf

    for _, cond in walk_conditions(rule.when, ()):
        if isinstance(cond, Concluded) and cond.concluded == "origin.middle_device":
            return True
        if isinstance(cond, NotOf) and isinstance(cond.not_, Concluded) \
                and cond.not_.concluded == "origin.endpoint":
            return True
    return False


def test_capture_only_subtype_rules_never_blame_a_middle_device_unproven(kb):
    """A middle-device sub-type derived from capture facts alone must rest on
    origin.middle_device (or exclude origin.endpoint): an endpoint's own RST after idle or
    after a payload must not be diagnosed as a firewall/NAT/IPS."""
    offenders = []
    for rule in kb.rules:
        target = kb.conclusions[rule.conclude.id]
        if target.kind != "subtype" or target.family == "endpoint" or rule.conclude.cf <= 0:
            continue
        fields = {c.field for _, c in walk_conditions(rule.when, ()) if isinstance(c, KbTest)}
        if any(FIELDS[f].source == "context" for f in fields):
            continue  # the engineer's own knowledge of the path or logs
        if not _guards_against_endpoint(rule):
            offenders.append(rule.id)
    assert offenders == []
