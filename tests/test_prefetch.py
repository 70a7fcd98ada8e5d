"""facts.prefetch: captures read on a background thread give what extract gives, and the
reader's errors surface in the caller's thread."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facts.errors import CaptureError
from facts.extract import extract
from facts.prefetch import Prefetch

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "examples" / "lab_captures" / "firewall_idle_timeout"


def test_prefetched_extractions_equal_extract():
    paths = [str(LAB / "client.pcap"), str(LAB / "server.pcap")]
    got = Prefetch(paths).result()
    assert [e.model_dump() for e in got] == [extract(p).model_dump() for p in paths]


def test_progress_is_reported_from_the_thread():
    calls = []
    Prefetch([str(LAB / "client.pcap")], progress=lambda done, size: calls.append((done, size))).result()
    assert calls and calls[-1][0] == calls[-1][1] > 0


def test_reader_error_is_raised_by_result(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    reading = Prefetch([str(LAB / "client.pcap"), str(bad)])
    with pytest.raises(CaptureError, match="bad.pcap"):
        reading.result()


def test_broken_kb_fails_first_with_one_line(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "rules.yaml").write_text("rules: [\n", encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "tui.cli", "analyze", str(LAB / "client.pcap"),
                          "--kb", str(kb)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "rules.yaml" in lines[0] and "Traceback" not in res.stderr


def test_unreadable_capture_is_one_line_exit_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "tui.cli", "analyze", str(tmp_path / "missing.pcap")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.pcap" in lines[0]
