"""Readers and decoder against other people's captures in ../shared/corpus, checked
against tshark (counts computed here, once per file per session) and against named facts
from the corpus README."""
from __future__ import annotations

import functools
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from facts.capture import open_capture
from facts.decode import decode, iter_packets
from facts.packet import RST, TcpSegment, addr_str

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.pcap*")) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus absent: {CORPUS}")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _path(name: str) -> Path:
    hits = sorted(CORPUS.glob(name + "*"))
    if not hits:
        pytest.skip(f"{name}* not in {CORPUS}")
    return hits[0]


TSHARK_FIELDS = ("frame.number", "frame.protocols", "tcp.flags.reset", "tcp.srcport",
                 "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.len", "ip.ttl",
                 "ipv6.hlim", "tcp.flags", "tcp.window_size_value")


_TSHARK: dict = {}


def tshark_rows(path: Path) -> list[dict]:
    """tshark's view of every corpus file, computed once per session (all files at once,
    a few tshark processes in parallel, since each costs ~0.3 s of start-up)."""
    if not _TSHARK:
        with ThreadPoolExecutor(max_workers=4) as pool:
            paths = [CORPUS / n for n in FILES]
            _TSHARK.update(zip(paths, pool.map(_run_tshark, paths)))
    return _TSHARK[path] if path in _TSHARK else _run_tshark(path)


def _run_tshark(path: Path) -> list[dict]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields"]
                         + [arg for f in TSHARK_FIELDS for arg in ("-e", f)],
                         capture_output=True, text=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        rows.append(dict(zip(TSHARK_FIELDS, cols + [""] * len(TSHARK_FIELDS))))
    return rows


def tshark_counts(path: Path) -> tuple[int, int, int]:
    """(frames, frames with a tcp layer, frames with the RST flag) — the same as
    `tshark -r F [-Y tcp | -Y tcp.flags.reset==1] -T fields -e frame.number | wc -l`."""
    rows = tshark_rows(path)
    tcp = sum(1 for r in rows if "tcp" in r["frame.protocols"].split(":"))
    rst = sum(1 for r in rows if any(v in ("1", "True")
                                     for v in r["tcp.flags.reset"].split(",")))
    return len(rows), tcp, rst


@functools.lru_cache(maxsize=None)
def ours(path: Path):
    cap = open_capture(path)
    segs = [p for p in iter_packets(cap) if isinstance(p, TcpSegment)]
    return cap, segs


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("name", FILES)
def test_tcp_and_rst_counts_match_tshark(name):
    path = CORPUS / name
    frames, tcp, rst = tshark_counts(path)
    cap, segs = ours(path)
    assert (len(segs), sum(1 for s in segs if s.flags & RST)) == (tcp, rst)
    assert cap.records_read == frames


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("name", FILES)
def test_segment_fields_match_tshark(name):
    """Frame by frame: ports, raw seq/ack, TCP payload length (from the IP length), TTL or
    hop limit, all 12 flag bits, window."""
    path = CORPUS / name
    by_frame = {int(r["frame.number"]): r for r in tshark_rows(path)}
    _, segs = ours(path)
    for s in segs:
        r = by_frame[s.frame]
        last = {k: v.split(",")[-1] for k, v in r.items()}       # innermost if tunnelled
        ttl = last["ip.ttl"] if s.ipv == 4 else last["ipv6.hlim"]
        assert (s.sport, s.dport, s.seq, s.ack, s.payload_len, s.ttl, s.window) == (
            int(last["tcp.srcport"]), int(last["tcp.dstport"]), int(last["tcp.seq_raw"]),
            int(last["tcp.ack_raw"]), int(last["tcp.len"]), int(ttl),
            int(last["tcp.window_size_value"])), f"frame {s.frame}"
        assert s.flags | s.reserved << 8 == int(last["tcp.flags"], 16), f"frame {s.frame}"


@needs_corpus
@pytest.mark.parametrize("name", FILES)
def test_fused_loop_equals_general_decoder(name):
    cap, segs = ours(CORPUS / name)
    general = [decode(lt, d, fr, ts, o, di) for fr, ts, lt, d, o, di in cap.records()]
    general = [p for p in general if isinstance(p, TcpSegment)]

    def rows(ps):
        return [tuple(getattr(p, k) for k in p.__slots__) for p in ps]
    assert rows(segs) == rows(general)


@needs_corpus
@needs_tshark
@pytest.mark.parametrize("prefix", ["23", "24", "25"])
def test_pcapng_trap_files_record_counts(prefix):
    path = _path(prefix)
    cap = open_capture(path)
    n = sum(1 for _ in cap.records())
    frames = tshark_counts(path)[0]
    assert cap.records_read == frames
    assert n <= frames and cap.warnings == []


@needs_corpus
def test_pcapng_interfaces_keep_their_own_link_types():
    cap = open_capture(_path("23"))
    # frame 2 is on interface 1 (DLT_NULL); dpkt 1.9.8 calls it Ethernet
    assert [(r[0], r[2]) for r in cap.records()] == [(1, 1), (2, 0), (3, 1), (4, 1), (5, 1)]
    assert cap.link_types == {0, 1}
    cap = open_capture(_path("25"))
    assert {r[2] for r in cap.records()} == {0, 1}


@needs_corpus
def test_03_forged_rst_ttl46_ipid_0x1555():
    _, segs = ours(_path("03"))
    rsts = [s for s in segs if s.flags & RST]
    forged = [s for s in rsts if s.ttl == 46]
    assert len(forged) == 1 and forged[0].ip_id == 0x1555
    assert addr_str(forged[0].src) == "1.2.0.3" and forged[0].reserved != 0
    assert sorted(s.ttl for s in rsts) == [46, 49, 49]


@needs_corpus
def test_05_idle_rst_ttl251_after_181s_over_vlan():
    cap, segs = ours(_path("05"))
    first = next(cap.records())
    assert first[3][12:14] == b"\x81\x00"                     # 802.1Q tagged
    (rst,) = [s for s in segs if s.flags & RST]
    assert rst.ttl == 251 and addr_str(rst.src) == "10.0.0.1"
    assert rst.ts - segs[0].ts == pytest.approx(181.5, abs=0.5)


@needs_corpus
def test_17_ipv6_over_dlt_null():
    cap, segs = ours(_path("17"))
    assert cap.link_types == {0}
    rsts = [s for s in segs if s.flags & RST]
    assert rsts and all(s.ipv == 6 and addr_str(s.src) == "::1" for s in rsts)
    assert {s.ipv for s in segs} == {4, 6}


@needs_corpus
@pytest.mark.parametrize("prefix,linktype,tcp", [("18", 276, 0), ("19", 276, 24),
                                                 ("09", 113, 8), ("20", 113, 6),
                                                 ("22", 101, 29)])
def test_cooked_and_raw_link_types(prefix, linktype, tcp):
    cap, segs = ours(_path(prefix))
    assert cap.link_types == {linktype}
    assert len(segs) == tcp


@needs_corpus
@pytest.mark.parametrize("prefix,ipv", [("13", 4), ("21", 6)])
def test_vlan_tagged_files(prefix, ipv):
    cap, segs = ours(_path(prefix))
    tagged = [r for r in cap.records() if r[3][12:14] == b"\x81\x00"]
    assert tagged and segs and ipv in {s.ipv for s in segs}
    assert sum(1 for s in segs if s.flags & RST) == 1


@needs_corpus
def test_15_truncated_rst_payload():
    _, (seg,) = ours(_path("15"))
    assert seg.flags & RST and seg.truncated
    assert seg.payload_len == 58 and len(seg.payload) < 58


@needs_corpus
def test_26_cut_short_warns_once_and_keeps_everything_before():
    cap, segs = ours(_path("26"))
    assert len(segs) == 2696 and cap.records_read == 2696
    assert cap.warnings == ["file cut short: last record header incomplete, 1 of 16 bytes "
                            "present; 2696 records read"]


@needs_corpus
def test_27_fcs_bits_masked():
    cap, segs = ours(_path("27"))
    assert cap.link_types == {1} and len(segs) == 1
