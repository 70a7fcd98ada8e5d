"""rstsleuth analyze: verdicts on real captures, dual capture end to end, the JSON contract,
renderings, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from engine.analysis import analyze
from engine.report_model import SCHEMA_ID, report_json_schema
from tests.builders import Conversation, bench_capture, to_pcap
from tests.dual_builders import DualConversation

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
EXAMPLES = ROOT / "examples"


def corpus(name: str) -> str:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"shared corpus not present ({CORPUS})")
    return str(path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


# --- the shared corpus: acceptance from the issue -------------------------------------------

def test_03_forged_rst_after_syn_is_middle_device(kb, reasoner):
    report = analyze(corpus("03_forged_rst_after_syn_ttl46_vs_49.pcap"), kb=kb, reasoner=reasoner)
    first = min(report.resets, key=lambda r: r.time)
    assert first.rst_source.ttl == 46 and first.baseline.ttl == 49
    assert first.origin == "middle_device"
    # the two later RSTs (TTL 49, after payload) are the server's own
    later = [r for r in report.resets if r is not first]
    assert later and all(r.origin != "middle_device" for r in later)


def test_05_idle_timeout_reset_after_181_s(kb, reasoner):
    report = analyze(corpus("05_firewall_idle_rst_181s_ttl251_vlan.pcap"), kb=kb, reasoner=reasoner)
    [r] = report.resets
    assert r.origin == "middle_device"
    assert r.pattern == "idle_timeout"
    assert r.measured_idle_s == pytest.approx(181, abs=2)
    assert r.rst_source.ttl == 251


def test_07_closed_port_is_endpoint(kb, reasoner):
    report = analyze(corpus("07_refused_x3_retries.pcapng"), kb=kb, reasoner=reasoner)
    assert len(report.resets) == 3
    for r in report.resets:
        assert r.origin == "endpoint"
        assert r.pattern == "syn_rejected"
        assert r.diagnoses and r.diagnoses[0].id == "endpoint.port_closed"
    # three resets with one story are one finding with a count
    assert [f.count for f in report.findings] == [3]


@pytest.mark.parametrize("name", ["10_windows_client_rst_after_30s_idle.pcap",
                                  "11_windows_client_rst_bulk_179kB.pcap",
                                  "12_rst_after_36s_idle.pcap",
                                  "16_ipv6_rst_after_payload.pcap"])
def test_same_ttl_as_peer_is_endpoint(kb, reasoner, name):
    report = analyze(corpus(name), kb=kb, reasoner=reasoner)
    assert report.resets
    assert all(r.origin == "endpoint" for r in report.resets), [
        (r.id, r.origin) for r in report.resets]


@pytest.mark.parametrize("name", ["14_rst_with_diag_payload.pcap",
                                  "15_rst_with_diag_payload_truncated.pcap"])
def test_lone_rst_without_baseline_is_undetermined(kb, reasoner, name):
    report = analyze(corpus(name), kb=kb, reasoner=reasoner)
    [r] = report.resets
    assert r.origin == "undetermined"


def test_no_endpoint_case_in_the_corpus_is_called_middle_device(kb, reasoner):
    endpoint_only = ["06_refused_rst_after_syn.pcapng", "07_refused_x3_retries.pcapng",
                     "08_syn_then_rst.pcap", "09_sll_rst_after_syn.pcap",
                     "10_windows_client_rst_after_30s_idle.pcap",
                     "11_windows_client_rst_bulk_179kB.pcap", "12_rst_after_36s_idle.pcap",
                     "13_rst_with_payload_vlan.pcap", "16_ipv6_rst_after_payload.pcap",
                     "17_ipv6_rst_after_syn_dlt_null.pcap", "20_pcapng_sll_rst.pcapng",
                     "21_pcapng_vlan_ipv6_rst.pcapng", "22_rawip_tfo_rsts.pcap",
                     "26_truncated_last_record.pcap"]
    wrong = []
    for name in endpoint_only:
        for r in analyze(corpus(name), kb=kb, reasoner=reasoner).resets:
            if r.origin == "middle_device":
                wrong.append((name, r.id))
    assert wrong == []


# --- dual capture, end to end ---------------------------------------------------------------

def test_dual_capture_proves_the_middle_device(tmp_path, kb, reasoner):
    conv = DualConversation(skew=7.0, nat=("192.0.2.9", 40000))
    conv.handshake()
    conv.send("client", "PA", b"ls -la\n", dt=0.2)
    conv.send("server", "A", dt=0.01)
    conv.forge("client", "server", ttl=118, dt=1800.5)  # a device that copies the TTL
    client, server = conv.write(tmp_path)
    report = analyze(client, server, kb=kb, reasoner=reasoner)
    assert report.dual["local_role"] == "client" and report.dual["nat_detected"] is True
    assert report.dual["clock_offset_s"] == pytest.approx(7.0, abs=0.05)
    [r] = report.resets
    assert r.dual.verdict == "middle_injected"
    assert r.origin == "middle_device" and r.origin_confidence >= 0.9
    # single-ended, the copied TTL hides it: the dual capture is what decides
    alone = analyze(client, kb=kb, reasoner=reasoner)
    assert alone.resets[0].origin != "middle_device" or alone.resets[0].origin_confidence < r.origin_confidence


def test_dual_capture_endpoint_rst(tmp_path, kb, reasoner):
    conv = DualConversation()
    conv.handshake()
    conv.send("client", "PA", b"x", dt=0.2)
    conv.send("server", "RA", dt=0.5)
    client, server = conv.write(tmp_path)
    report = analyze(client, server, kb=kb, reasoner=reasoner)
    at_client = [r for r in report.resets if r.observed_at == "client"]
    assert at_client and all(r.origin == "endpoint" for r in at_client)
    assert at_client[0].dual.verdict == "endpoint_sent"


# --- the JSON contract ----------------------------------------------------------------------

def test_json_report_validates_against_generated_schema(tmp_path):
    out = tmp_path / "r.json"
    proc = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--format", "json",
                   "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    jsonschema.Draft202012Validator(report_json_schema()).validate(data)
    assert data["schema"] == SCHEMA_ID
    [r] = data["resets"]
    assert r["origin"] == "middle_device" and r["pattern"] == "idle_timeout"
    assert r["rst_source"] == {"ttl": 253, "initial_ttl": 255, "decrements": 2, "tracert_hop": 3,
                               "tracert_address": None, "tracert_name": None}
    assert r["diagnoses"][0]["id"] in ("firewall.idle_timeout", "nat.table_expiry")
    assert any("300000" in f["text"] for f in r["fixes"])
    assert r["reasoning"]["fired"] and data["findings"][0]["how"]
    # a broken report fails the schema: the test can fail
    r["origin"] = "somebody"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(report_json_schema()).validate(data)


def test_markdown_and_chinese(tmp_path):
    md = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("# rstsleuth report")
    assert "| `firewall.idle_timeout` |" in md.stdout or "| `nat.table_expiry` |" in md.stdout
    zh = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--lang", "zh")
    assert zh.returncode == 0 and "中间设备" in zh.stdout and "tracert 跳数 3" in zh.stdout


def test_exit_codes(tmp_path):
    forged = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--fail-on-forged")
    assert forged.returncode == 1
    clean = run_cli("analyze", str(EXAMPLES / "endpoint_reset.pcap"), "--fail-on-forged")
    assert clean.returncode == 0, clean.stdout
    missing = run_cli("analyze", str(tmp_path / "nope.pcap"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "nope.pcap" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    usage = run_cli("analyze")
    assert usage.returncode == 2


def test_many_resets_with_one_story_are_one_finding(tmp_path, kb, reasoner):
    records = []
    for i in range(100):
        conv = Conversation(("10.0.0.2", 40000 + i), ("10.9.0.1", 3389), client_ttl=64,
                            server_ttl=118, start=1_700_000_000.0 + i * 5)
        conv.handshake()
        conv.send("client", "PA", b"x" * 20, dt=0.1)
        conv.send("server", "A", dt=0.01)
        conv.send("client", "PA", b"y" * 20, dt=240.0)
        conv.send("server", "RA", ttl=250, forged=True, dt=0.002)
        records += conv.records
    records.sort(key=lambda rec: rec[0])
    path = tmp_path / "many.pcap"
    path.write_bytes(to_pcap(records))
    report = analyze(str(path), kb=kb, reasoner=reasoner)
    assert len(report.resets) == 100
    assert len(report.findings) == 1 and report.findings[0].count == 100
    f = report.findings[0]
    assert f.origin == "middle_device" and f.pattern == "idle_timeout"
    # 240 s is the Azure Load Balancer default; RDP gets its own keepalive fix in minutes
    r = report.resets[0]
    assert any("Azure" in d for d in r.idle_matches)
    assert any("KeepAliveInterval" in fix.text for fix in f.fixes)


def test_tracert_names_the_device_at_the_rst_hop(kb, reasoner):
    report = analyze(str(EXAMPLES / "lab_captures/firewall_idle_timeout/client.pcap"),
                     tracert=str(ROOT / "tests/data/pasted/tracert_lab_fw.txt"), kb=kb,
                     reasoner=reasoner)
    [r] = report.resets
    assert r.rst_source.tracert_hop == 2
    assert (r.rst_source.tracert_address, r.rst_source.tracert_name) == ("10.231.2.2", "fw-edge.lab")


def test_bad_tracert_file_is_one_line_error(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("this is not a traceroute\n")
    proc = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--tracert", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_edited_kb_takes_effect_everywhere(tmp_path):
    kb_dir = tmp_path / "kb"
    assert run_cli("kb", "init", str(kb_dir)).returncode == 0
    fixes = kb_dir / "fixes.yaml"
    text = fixes.read_text(encoding="utf-8")
    assert "Lower Windows TCP KeepAliveTime below the timeout" in text
    fixes.write_text(text.replace("Lower Windows TCP KeepAliveTime below the timeout",
                                  "EDITED keepalive fix title"), encoding="utf-8")
    by_flag = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--kb", str(kb_dir))
    assert by_flag.returncode == 0 and "EDITED keepalive fix title" in by_flag.stdout
    env = {**__import__("os").environ, "RSTSLEUTH_KB": str(kb_dir)}
    by_env = subprocess.run([sys.executable, "-m", "tui.cli", "analyze",
                             str(EXAMPLES / "firewall_idle_reset.pcap")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, env=env)
    assert "EDITED keepalive fix title" in by_env.stdout
    # a broken KB: one line naming file and line, exit 2, no traceback
    fixes.write_text(text.replace("fixes:", "fixes: [", 1), encoding="utf-8")
    broken = run_cli("analyze", str(EXAMPLES / "firewall_idle_reset.pcap"), "--kb", str(kb_dir))
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "fixes.yaml:" in broken.stderr and len(broken.stderr.strip().splitlines()) == 1


def test_iso_time_from_the_seconds_cache_equals_datetime():
    """reset_entry.iso_time with its per-second cache formats exactly as datetime does, including
    fractions that round half to even, up into the next second, and before 1970."""
    import datetime as dt
    import random

    from engine.reset_entry import iso_time as _iso
    rng = random.Random(5)
    stamps = [1700000161.974538, 0.0, 1.0, 1700000000.9999996, 1700000000.0000005,
              -1.5, -0.0000004, 1234567890.1234565, 4102444800.5]
    stamps += [rng.uniform(0, 4e9) for _ in range(20000)]
    stamps += [int(rng.uniform(0, 2e9)) + k / 2e6 for k in range(0, 2000000, 997)]  # .5 µs
    seconds: dict = {}
    for t in stamps:
        want = dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="microseconds")
        assert _iso(t, seconds) == want == _iso(t), t


def test_evidence_template_reads_what_the_how_tree_shows(tmp_path):
    """report_build.evidence_template walks the justifications directly: the same rows as
    collecting the observed facts of the HOW trees (explain.how), for every inference of
    the example and lab captures and of a benchmark slice."""
    from engine import Reasoner, load_kb
    from engine.analysis import gather
    from engine.report_build import diagnoses_for, evidence_template

    def from_trees(inf, origin, diagnoses):
        targets = [f"origin.{origin}"] if origin != "undetermined" else []
        if inf.pattern:
            targets.append(f"pattern.{inf.pattern}")
        targets += [d.id for d in diagnoses[:1]]
        rows = {}

        def walk(node):
            for support in node.get("supports", []):
                for premise in support.get("premises", []):
                    if "supports" in premise:
                        yield from walk(premise)
                    else:
                        yield support.get("rule_id"), premise
        for target in targets:
            if inf.cf(target) <= 0:
                continue
            for rule_id, premise in walk(inf.how(target).model_dump()):
                field = premise.get("field")
                if field and field not in rows:
                    rows[field] = (rule_id, field, premise.get("op"), premise.get("expected"))
        return list(rows.values())

    bench = tmp_path / "slice.pcap"
    bench_capture(bench, 30_000, connections=600, seed=3)
    paths = [*sorted(ROOT.glob("examples/*.pcap")),
             *sorted(ROOT.glob("examples/lab_captures/*/*.pcap")), bench]
    kb = load_kb()
    checked = 0
    with Reasoner(kb) as reasoner:
        for path in paths:
            jobs = gather(str(path), None, kb).jobs
            for inf in reasoner.infer_many([ev for _, _, ev, _ in jobs]):
                diagnoses = diagnoses_for(kb, inf, inf.origin, "en")
                assert evidence_template(inf, inf.origin, diagnoses) == \
                    from_trees(inf, inf.origin, diagnoses)
                checked += 1
    assert checked > 100
