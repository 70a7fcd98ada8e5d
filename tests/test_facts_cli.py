"""``rstsleuth facts``: JSON lines on stdout, one-line errors naming the file, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import Conversation, to_pcap

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def rstsleuth(*args):
    return subprocess.run([sys.executable, "-m", "tui.cli", "facts", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def capture(tmp_path):
    conv = Conversation(server_ttl=118)
    conv.handshake()
    conv.data("client", b"hi", dt=0.1)
    conv.send("server", "RA", dt=0.1, ttl=253, forged=True)
    other = Conversation(client=("10.0.0.3", 40000), start=1_700_000_100.0)
    other.handshake()
    other.close()
    path = tmp_path / "two.pcap"
    path.write_bytes(to_pcap(conv.records + other.records))
    return path


def test_json_lines_connection_rst_then_capture(capture):
    res = rstsleuth(capture)
    assert res.returncode == 0 and res.stderr == ""
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["kind"] for d in lines] == ["connection", "rst", "connection", "capture"]
    assert lines[1]["ttl"] == 253 and lines[1]["tracert_hop"] == 3
    assert lines[1]["connection_id"] == lines[0]["id"] == "c1"
    assert lines[3]["rst_packets"] == 1 and lines[3]["tcp_packets"] == 11
    assert lines[3]["path"] == str(capture) and lines[3]["format"] == "pcap"


def test_no_connections_prints_only_rsts_and_capture(capture):
    res = rstsleuth(capture, "--no-connections")
    kinds = [json.loads(line)["kind"] for line in res.stdout.splitlines()]
    assert res.returncode == 0 and kinds == ["rst", "capture"]


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pcap"
    text.write_text("these are not packets\n")
    short = tmp_path / "short.pcap"
    short.write_bytes(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00")
    return {"missing": tmp_path / "nope.pcap", "directory": tmp_path, "empty": empty,
            "not a capture": text, "truncated header": short}


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "not a capture",
                                  "truncated header"])
def test_bad_input_is_one_line_naming_the_file(tmp_path, case):
    path = _bad_inputs(tmp_path)[case]
    res = rstsleuth(path)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsleuth: error: ")
    assert str(path) in lines[0] and "Traceback" not in res.stderr


def test_cut_short_corpus_file_prints_facts_and_one_warning():
    cut = CORPUS / "26_truncated_last_record.pcap"
    if not cut.is_file():
        pytest.skip(f"corpus file {cut} is absent")
    res = rstsleuth(cut)
    assert res.returncode == 0
    warnings = res.stderr.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"rstsleuth: warning: {cut}: ") and "cut short" in warnings[0]
    last = json.loads(res.stdout.splitlines()[-1])
    assert last["kind"] == "capture" and last["rst_packets"] == 1 and last["warnings"]
