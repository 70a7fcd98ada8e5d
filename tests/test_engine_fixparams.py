"""Fix parameters and safe placeholder rendering."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.fixparams import FixTemplateError, compute, keepalive_for, placeholders, render
from engine.kb import KnowledgeBase
from engine.kb_model import Fix, IdleTimeout, ReferenceTables


def fix(en: str, zh: str = "步骤 {keepalive_s}") -> Fix:
    return Fix(id="fix.t", title={"en": "t", "zh": "t"}, steps={"en": en, "zh": zh})


@pytest.mark.parametrize("idle,expected", [
    (None, 300), (3600, 300), (601, 300), (599, 290), (100, 50), (19, 10), (0, 10), (35.4, 10),
])
def test_keepalive_half_idle_floored_and_clamped(idle, expected):
    assert keepalive_for(idle) == expected


def test_compute_from_evidence():
    p = compute({"idle_before_s": 1799.6, "conn_server_port": 3389, "path_mtu": 1400,
                 "server_ip": "10.0.0.5", "client_ip": "10.0.0.9", "tracert_hop": 3,
                 "cross_matched_devices": ["Cisco ASA", "Palo Alto"]})
    assert p["idle_s"] == 1800 and p["idle_min"] == 30
    assert p["keepalive_s"] == 300 and p["keepalive_ms"] == 300000 and p["keepalive_min"] == 5
    assert p["probe_count"] == 3 and p["device_timeout_s"] == 3600
    assert p["server_port"] == 3389 and p["app_name"] == "RDP"
    assert p["path_mtu"] == 1400 and p["ping_size"] == 1372 and p["mss"] == 1360
    assert p["server_ip"] == "10.0.0.5" and p["client_ip"] == "10.0.0.9"
    assert p["tracert_hop"] == 3 and p["matched_devices"] == "Cisco ASA, Palo Alto"


def test_idle_is_the_longer_of_rst_and_trigger_silence():
    # a firewall that resets on the first packet after its 3600 s timer: the RST comes
    # 2 ms after the client's packet, the silence was before that packet
    p = compute({"idle_before_s": 0.002, "idle_before_trigger_s": 3600.4})
    assert p["idle_s"] == 3600 and p["idle_min"] == 60 and p["keepalive_s"] == 300
    assert compute({"idle_before_s": 1200.0, "idle_before_trigger_s": 0.1})["idle_s"] == 1200


def test_compute_defaults_and_long_idle():
    p = compute({"idle_before_s": 7201, "conn_server_port": 8080})
    assert p["device_timeout_s"] == 14402 and p["app_name"] == "the application"
    empty = compute({})
    assert "idle_s" not in empty and empty["keepalive_s"] == 300 and empty["keepalive_min"] == 5
    assert empty["ping_size"] == 1472 and empty["mss"] == 1460 and "path_mtu" not in empty
    assert {22: "SSH", 1433: "SQL Server", 445: "SMB"} == {
        port: compute({"conn_server_port": port})["app_name"] for port in (22, 1433, 445)}


def test_matched_devices_from_reference_table():
    kb = KnowledgeBase(path=Path("k"), reference=ReferenceTables(idle_timeouts=[
        IdleTimeout(id="asa", device="Cisco ASA", family="firewall", seconds=3600,
                    sends_rst="no", reference="x"),
        IdleTimeout(id="f5", device="F5 BIG-IP", family="load_balancer", seconds=300,
                    sends_rst="yes", reference="x")]))
    assert compute({"idle_before_s": 3590}, kb)["matched_devices"] == "Cisco ASA"
    assert "matched_devices" not in compute({"idle_before_s": 1000}, kb)


def test_render_fills_known_and_keeps_unknown_visible():
    params = compute({"idle_before_s": 100})
    text = render(fix("Set {keepalive_s}s ({keepalive_ms} ms) on {app_name}; {{literal}} {server_ip}"),
                  params, "en")
    assert text == "Set 50s (50000 ms) on the application; {literal} {server_ip}"
    assert render(fix("x"), params, "zh") == "步骤 50"


@pytest.mark.parametrize("template", ["{a.b}", "{a[0]}", "{}", "{0}", "{keepalive_s!r}",
                                      "{keepalive_s:{x}}", "{unclosed", "{idle_s.__class__}"])
def test_render_rejects_anything_but_plain_names(template):
    with pytest.raises(FixTemplateError, match="fix.t"):
        render(fix(template), {"a": {"b": 1}, "keepalive_s": 1, "idle_s": 2}, "en")


def test_titles_render_too():
    from engine.fixparams import render_title
    f = Fix(id="fix.k", title={"en": "Keepalive below {keepalive_s} s", "zh": "低于 {keepalive_s} 秒"},
            steps={"en": "x", "zh": "x"})
    assert render_title(f, compute({"idle_before_s": 100}), "en") == "Keepalive below 50 s"
    assert render_title(f, {}, "zh") == "低于 {keepalive_s} 秒"


def test_placeholders_lists_names():
    assert placeholders("a {x} b {y:>5} {{z}}") == ["x", "y"]


def test_compute_for_some_names_equals_the_full_compute_on_those():
    """analyze asks only for the parameters its fixes use: each asked-for value is the one
    the full computation gives, for every fix's placeholder set and random evidence."""
    import random

    from engine import load_kb
    from engine.fixparams import compute, placeholders_of
    kb = load_kb()
    name_sets = {frozenset(placeholders_of(fix, lang)) for fix in kb.fixes.values()
                 for lang in ("en", "zh")}
    name_sets |= {frozenset(), frozenset({"matched_devices"}), frozenset({"idle_min", "mss"})}
    rng = random.Random(4)
    pool = {"idle_before_s": [None, 0.0, 3600.4, 299.0, -1.0, float("nan"), True, 181],
            "idle_before_trigger_s": [None, 0.5, 3601.2, 7200.0],
            "server_ip": [None, "192.0.2.1"], "client_ip": [None, "10.0.0.2", ""],
            "conn_server_port": [None, 22, 1433, True], "server_port": [None, 3389],
            "path_mtu": [None, 1400, 60, 70000], "cross_matched_devices": [None, [], ["ASA"]],
            "tracert_hop": [None, 3, False]}
    for _ in range(2000):
        evidence = {k: rng.choice(v) for k, v in pool.items()}
        evidence = {k: v for k, v in evidence.items() if v is not None}
        full = compute(evidence, kb)
        for names in name_sets:
            part = compute(evidence, kb, names)
            assert {n: part.get(n) for n in names} == {n: full.get(n) for n in names}, (evidence, names)
