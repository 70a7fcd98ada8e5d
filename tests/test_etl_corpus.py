"""The real pktmon capture (corpus 29, LZXPRESS buffers) against its derived pcapng (31),
which keeps one copy of every packet per pktmon component."""
from __future__ import annotations

import bisect
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from facts.capture import open_capture
from facts.decode import decode
from facts.packet import TcpSegment

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ETL = CORPUS / "29_pktmon_nathaniel.etl"
DERIVED = CORPUS / "31_DERIVED_pktmon_nathaniel_converted.pcapng"

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def both():
    if not (ETL.exists() and DERIVED.exists()):
        pytest.skip(f"corpus files 29/31 not found under {CORPUS}")
    etl = open_capture(ETL)
    mine = list(etl.records())
    derived = list(open_capture(DERIVED).records())
    return etl, mine, derived


def _tcp(records):
    out = []
    for frame, ts, lt, data, origlen, direction in records:
        seg = decode(lt, data, frame, ts, origlen, direction)
        if isinstance(seg, TcpSegment):
            out.append(seg)
    return out


def _ident(s):
    return s.src, s.dst, s.sport, s.dport, s.seq, s.ack, s.flags, s.ttl, s.ip_id


def test_reads_every_packet_once(both):
    etl, mine, derived = both
    assert etl.format == "etl" and etl.warnings == []
    assert etl.providers_seen == {"pktmon"}
    assert etl.events_read == len(derived) == 2705  # every flow copy walked, then folded
    # One packet per (PktGroupId, PktNumber): far fewer than the per-component copies.
    assert len(mine) == 260 and len(derived) == 2705
    assert etl.info["clock_type"] == 1 and etl.info["os_build"] == 19042
    assert sum(1 for r in mine if r[4] > len(r[3])) > 0     # 128-byte pktmon snaplen


def test_same_distinct_tcp_packets_and_rsts(both):
    _etl, mine, derived = both
    tcp_mine, tcp_derived = _tcp(mine), _tcp(derived)
    assert {_ident(s) for s in tcp_mine} == {_ident(s) for s in tcp_derived}
    assert len({_ident(s) for s in tcp_mine}) == 156
    rst_mine = [s for s in tcp_mine if s.flags & 0x04]
    rst_derived = [s for s in tcp_derived if s.flags & 0x04]
    assert len(rst_derived) == 40                   # every RST once per component
    assert {_ident(s) for s in rst_mine} == {_ident(s) for s in rst_derived}
    # 2 client RSTs plus 4 server RSTs that repeat byte for byte (IP ID 0) at distinct times.
    assert len(rst_mine) == 6
    assert Counter(s.direction for s in rst_mine) == {"out": 2, "in": 4}


def test_payloads_and_times_match_the_copies(both):
    _etl, mine, derived = both
    payloads = Counter(r[3] for r in derived)
    assert all(payloads[r[3]] > 0 for r in mine)
    # 31 anchors the QPC clock at BootTime, we at the header event's StartTime (as Windows'
    # consumers do): a constant offset, identical for every packet.
    times = sorted(r[1] for r in derived)
    delta = times[0] - mine[0][1]
    assert 0.0 < delta < 1.0
    for r in mine:
        want = r[1] + delta
        i = bisect.bisect_left(times, want - 3e-6)
        assert i < len(times) and abs(times[i] - want) < 3e-6, r[0]


def test_directions_follow_the_local_side(both):
    _etl, mine, _derived = both
    local = {bytes([192, 168, 0, 111]), bytes([10, 7, 3, 2])}
    for s in _tcp(mine):
        assert s.direction in ("in", "out")
        assert (s.src in local) == (s.direction == "out"), s.frame


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_convert_opens_in_tshark(both, tmp_path):
    _etl, mine, _derived = both
    out = tmp_path / "29.pcapng"
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "tui.cli", "convert", str(ETL), str(out)],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    shark = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number",
                            "-e", "tcp.flags.reset"], capture_output=True, text=True,
                           timeout=120)
    rows = [ln.split("\t") for ln in shark.stdout.splitlines() if ln.strip()]
    assert len(rows) == len(mine) == 260
    assert sum(1 for r in rows if r[1] in ("1", "True")) == 6
