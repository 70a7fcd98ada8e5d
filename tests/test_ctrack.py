"""The compiled read+track pass (facts._ctrack) against the Python one, on real and built data.

Differential: every capture is extracted with the extension and with RSTSLEUTH_NO_CEXT=1, and
the CaptureInfo, Connections and RstEvents (built in C on one side, by facts.rst on the other)
must be identical, as dumps and as JSON; the tracker state itself (every
slot of every Conn, Half, RstRecord and the segments they keep) is compared too, so a
difference that today's facts do not show still fails.
"""
from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import pytest

from builders import (Conversation, bench_capture, ethernet, fragments, icmp_too_big, ip_packet,
                      merge)
from facts import ctrack
from facts.capture import open_capture
from facts.decode import iter_packets
from facts.extract import FactStream, extract
from facts.packet import TcpSegment
from facts.tracker import Conn, Half, RstRecord, Tracker

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
needs_c = pytest.mark.skipif(not ctrack.available(), reason="facts._ctrack is not built"
                             " (python setup.py build_ext --inplace) or RSTSLEUTH_NO_CEXT is set")


# -- comparing the two passes -----------------------------------------------------------------
def _seg(s):
    return None if s is None else tuple(getattr(s, k) for k in TcpSegment.__slots__)


def _state(tr: Tracker):
    """Every slot of the tracker's objects, with references replaced by ids."""
    def half(h: Half):
        return tuple(_seg(v) if k in ("last", "ldata") else
                     (h.conn.id if k == "conn" else v)
                     for k in Half.__slots__ for v in [getattr(h, k)])

    def conn(c: Conn):
        out = {}
        for k in Conn.__slots__:
            v = getattr(c, k)
            if k == "half":
                v = tuple(half(h) for h in v)
            elif k in ("rsts", "watch"):
                v = (type(v).__name__, [r.id for r in v])
            elif k == "fin_by":
                v = (type(v).__name__, list(v))
            out[k] = v
        return out

    def rec(r: RstRecord):
        return {k: (r.conn.id if k == "conn" else
                    _seg(getattr(r, k)) if k in ("seg", "sender_last", "other_last", "trigger")
                    else getattr(r, k)) for k in RstRecord.__slots__}

    return {
        "connections": [conn(c) for c in tr.connections],
        "rsts": [rec(r) for r in tr.rsts],
        "table": [(k, h.conn.id, h.side) for k, h in tr.table.items()],
        "frag_owner": [(k, c.id) for k, c in tr.frag_owner.items()],
        "counts": (tr.tcp_packets, tr.rst_packets, tr.first_ts, tr.last_ts),
    }


def _python_tracker(path):
    cap = open_capture(path)
    tr = Tracker()
    tr.feed(iter_packets(cap))
    return tr, cap


def extract_with_progress(path, monkeypatch, compiled: bool):
    """``extract(path)`` on the compiled or the Python pass; the extraction and its progress
    calls."""
    if compiled:
        monkeypatch.delenv("RSTSLEUTH_NO_CEXT", raising=False)
    else:
        monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    calls = []
    try:
        got = extract(path, progress=lambda done, size: calls.append((done, size)))
    finally:
        monkeypatch.delenv("RSTSLEUTH_NO_CEXT", raising=False)
    return got, calls


def _extract(path, monkeypatch, compiled: bool):
    got, calls = extract_with_progress(path, monkeypatch, compiled)
    # JSON as well as the dump: it shows an int where a float belongs (1 vs 1.0), and the
    # key order of every fact
    return got.model_dump(), calls, [f.model_dump_json() for f in (*got.connections, *got.rsts)]


def same_results(path, monkeypatch, *, state: bool = True):
    """Both passes agree on ``path`` (the facts built in C against facts.rst's on the Python
    pass); returns the extraction (for further checks)."""
    c_out, c_calls, c_json = _extract(path, monkeypatch, True)
    py_out, py_calls, py_json = _extract(path, monkeypatch, False)
    assert c_out["capture"] == py_out["capture"]
    assert c_out["connections"] == py_out["connections"]
    assert c_out["rsts"] == py_out["rsts"]
    assert c_json == py_json
    assert [s for _, s in c_calls] == [s for _, s in py_calls]
    assert c_calls[-1] == py_calls[-1]
    if state:
        cap = open_capture(path)
        if ctrack.usable(cap):
            c_tr = ctrack.track_pcap(cap)
        else:
            c_tr = ctrack.track_packets(iter_packets(cap))
        py_tr, py_cap = _python_tracker(path)
        assert (cap.records_read, cap.warnings) == (py_cap.records_read, py_cap.warnings)
        assert _state(c_tr) == _state(py_tr)
    return c_out


# -- building captures --------------------------------------------------------------------------
def write_pcap(path, records, *, linktype=1, big=False, ns=False, snaplen=65535):
    """Classic pcap with the chosen byte order and timestamp unit; frames cut to snaplen."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    scale = 10**9 if ns else 10**6
    for ts, frame in records:
        sec = int(ts)
        frac = int(round((ts - sec) * scale))
        if frac >= scale:
            sec, frac = sec + 1, frac - scale
        kept = frame[:snaplen]
        out.append(struct.pack(e + "IIII", sec, frac, len(kept), len(frame)) + kept)
    Path(path).write_bytes(b"".join(out))
    return path


def sll(frame, ptype):
    return struct.pack("!HHH8sH", ptype, 1, 6, b"\x02" * 6 + b"\0\0", _etype(frame)) + frame[14:]


def sll2(frame, ptype):
    return struct.pack("!HHIHBB8s", _etype(frame), 0, 2, 1, ptype, 6, b"\x02" * 8) + frame[14:]


def _etype(frame):
    return struct.unpack_from("!H", frame, 12)[0]


def vlan(frame):
    return frame[:12] + b"\x81\x00\x00\x64" + frame[12:]


def ip_options(frame):
    """The same IPv4 packet with 4 bytes of NOP options (the general decoder's case)."""
    ip = bytearray(frame[14:])
    ip[0] = 0x46
    struct.pack_into("!H", ip, 2, struct.unpack_from("!H", ip, 2)[0] + 4)
    return frame[:14] + bytes(ip[:20]) + b"\x01\x01\x01\x00" + bytes(ip[20:])


def hop_by_hop(frame):
    """The same IPv6 packet behind an 8-byte hop-by-hop header."""
    ip = bytearray(frame[14:])
    nh = ip[6]
    ip[6] = 0
    struct.pack_into("!H", ip, 4, struct.unpack_from("!H", ip, 4)[0] + 8)
    return frame[:14] + bytes(ip[:40]) + bytes([nh, 0]) + b"\0" * 6 + bytes(ip[40:])


def tso(frame):
    ip = bytearray(frame[14:])
    struct.pack_into("!H", ip, 2, 0)
    return frame[:14] + bytes(ip)


def _tcp_bytes(sport, dport, seq, ack, flags, payload):
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=1000,
                       data=payload)
    return bytes(tcp)


def scenario(start=1_700_000_000.123457):
    """Many shapes the tracker distinguishes, interleaved, as (time, Ethernet frame)."""
    convs = []
    # Plain connection with payloads above and below 64 bytes, TTL changes, FIN close.
    a = Conversation(("10.0.0.2", 50000), ("10.0.0.1", 80), start=start, server_ttl=118)
    a.handshake()
    a.data("client", b"GET / HTTP/1.1\r\n" * 10, dt=0.01)
    a.data("server", b"x" * 1400, dt=0.02)
    a.data("server", b"y" * 30, dt=0.001, ttl=117)
    a.data("server", b"z" * 30, dt=0.001, ttl=119)
    a.send("client", "A", dt=0.3)
    a.close("server", dt=5.0)
    convs.append(a.records)
    # Forged RST with another TTL, inexact seq, then a challenge ACK and data after it.
    b = Conversation(("10.0.0.3", 40000), ("10.0.0.1", 443), start=start + 0.5)
    b.handshake()
    b.data("client", b"hello", dt=0.1)
    b.send("server", "A", dt=0.01)
    b.send("client", "R", dt=2.0, ttl=50, forged=True, seq=b.sides["client"].nxt + 7,
           payload=b"p" * 100)
    b.send("server", "A", dt=0.2)
    b.data("client", b"more", dt=0.1)
    b.send("server", "RA", dt=0.4)
    b.send("server", "RA", dt=0.1, seq=b.sides["server"].nxt + 5000)
    convs.append(b.records)
    # Refused SYN, forged RST racing the real SYN-ACK.
    c = Conversation(("10.0.0.4", 40001), ("10.0.0.9", 22), start=start + 0.7)
    c.send("client", "S", mss=1460, wscale=7)
    c.send("server", "RA", dt=0.001, ttl=30, forged=True)
    c.send("server", "SA", dt=0.01)
    c.send("client", "A", dt=0.01)
    c.data("server", b"SSH-2.0", dt=0.01)
    convs.append(c.records)
    # Sequence numbers wrapping past 2**32, then reuse of the closed 4-tuple by a new SYN.
    d = Conversation(("10.0.0.5", 40002), ("10.0.0.1", 80), start=start + 1, client_isn=
                     0xFFFFFF00, server_isn=0xFFFFFFF0)
    d.handshake()
    for i in range(6):
        d.data("client", b"w" * 100, dt=0.05)
        d.data("server", b"v" * 90, dt=0.01)
    d.close("client", dt=0.1)
    d.handshake(dt=1.0)
    d.send("client", "R", dt=0.5)
    d.handshake(dt=1.0)
    convs.append(d.records)
    # Mid-flow connection (no handshake) that ends in a RST storm from both sides.
    e = Conversation(("10.0.0.6", 3306), ("10.0.0.7", 51000), start=start + 0.2)
    e.data("server", b"q" * 20, dt=0.01)
    e.data("client", b"r" * 80, dt=0.01)
    for i in range(40):
        e.send("client" if i % 3 else "server", "RA" if i % 2 else "R", dt=0.003 * (i % 5),
               seq=(1000 + 37 * i) if i % 4 == 0 else None, ttl=64 + i % 3)
    convs.append(e.records)
    # IPv6 (inline) and IPv6 behind an extension header (general decoder).
    f = Conversation(("2001:db8::2", 50001), ("2001:db8::1", 443), start=start + 0.3)
    f.handshake()
    f.data("client", b"h" * 70, dt=0.01)
    f.data("server", b"k" * 2000, dt=0.01)
    f.send("server", "RA", dt=1.5, ttl=40, forged=True)
    f_records = [(ts, hop_by_hop(fr)) if i == 3 else (ts, fr)
                 for i, (ts, fr) in enumerate(f.records)]
    convs.append(f_records)
    # IPv4 options, TCP segmentation offload (total length 0), VLAN tags: general decoder.
    g = Conversation(("10.0.0.8", 50003), ("10.0.0.1", 8080), start=start + 0.4)
    g.handshake()
    g.data("client", b"o" * 90, dt=0.01)
    g.data("server", b"p" * 3000, dt=0.01)
    g.send("client", "RA", dt=0.2)
    g_records = [(ts, [ip_options, tso, vlan, lambda x: x][i % 4](fr))
                 for i, (ts, fr) in enumerate(g.records)]
    convs.append(g_records)
    # Fragmented TCP (first fragment marks the connection; later ones are looked up), a
    # fragment of an unknown datagram, ICMP too-big (v4 and v6), ARP and UDP.
    h = Conversation(("10.0.0.10", 50004), ("10.0.0.1", 80), start=start + 0.6)
    h.handshake()
    seq = h.sides["client"].nxt
    extra = [(start + 0.62 + i * 0.001, fr) for i, fr in enumerate(fragments(
        "10.0.0.10", "10.0.0.1", 0x4242, _tcp_bytes(50004, 80, seq, 500_001, 0x18, b"F" * 1500)))]
    extra += [(start + 0.65, fr) for fr in fragments(
        "10.0.0.11", "10.0.0.1", 0x77, _tcp_bytes(1, 2, 3, 4, 0x18, b"G" * 1200))[1:]]
    quoted = h.data("client", b"big" * 400, dt=0.1)
    extra.append((h.time + 0.001, icmp_too_big("10.0.0.254", "10.0.0.10", quoted, 1300)))
    extra.append((h.time + 0.002, icmp_too_big("10.0.0.254", "10.0.0.10", quoted, 1400)))
    extra.append((start + 0.35, icmp_too_big("2001:db8::fe", "2001:db8::1",
                                             f.records[4][1], 1280)))
    arp = dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_ARP, data=dpkt.arp.ARP())
    extra.append((start + 0.01, bytes(arp)))
    udp = dpkt.udp.UDP(sport=53, dport=5353, data=b"dns")
    udp.ulen = 8 + 3
    extra.append((start + 0.02, ethernet(ip_packet("10.0.0.1", "10.0.0.2", udp,
                                                   proto=dpkt.ip.IP_PROTO_UDP, ttl=64))))
    h.send("server", "RA", dt=0.5, ttl=250, forged=True)
    convs.append(h.records)
    convs.append(extra)
    return merge(*convs)


@pytest.fixture(scope="module")
def records():
    return scenario()


# -- the differential tests -------------------------------------------------------------------
def _captures():
    return sorted(p for p in (ROOT / "examples").rglob("*.pcap"))


@needs_c
@pytest.mark.parametrize("path", _captures(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_agree(path, monkeypatch):
    same_results(path, monkeypatch)


@needs_c
@pytest.mark.parametrize("pattern", ["*.pcap", "*.pcapng", "*.etl"])
def test_corpus_agrees(pattern, monkeypatch):
    """Classic pcap through the compiled walk, pcapng and ETL through the compiled frame
    entry points (extract); the tracker state is also compared when it is fed the packets
    their readers decode (track_packets; test_ctrack_frames checks the frame path's state)."""
    for path in corpus_files(pattern):
        same_results(path, monkeypatch)


def corpus_files(pattern: str) -> list:
    """The shared corpus's files matching ``pattern``; skips the test when there are none."""
    if not CORPUS.is_dir():
        pytest.skip(f"no shared corpus at {CORPUS}")
    paths = sorted(CORPUS.glob(pattern))
    if not paths:
        pytest.skip(f"no {pattern} in the corpus")
    return paths


@needs_c
@pytest.mark.parametrize("variant", [
    dict(), dict(big=True), dict(ns=True), dict(big=True, ns=True),
    dict(linktype=113), dict(linktype=276), dict(snaplen=60), dict(snaplen=80),
    dict(linktype=101),
])
def test_built_capture_agrees(variant, records, tmp_path, monkeypatch):
    lt = variant.get("linktype", 1)
    recs = records
    if lt == 113:
        recs = [(ts, sll(fr, (0, 4, 1)[i % 3])) for i, (ts, fr) in enumerate(records)]
    elif lt == 276:
        recs = [(ts, sll2(fr, (4, 0, 2)[i % 3])) for i, (ts, fr) in enumerate(records)]
    elif lt == 101:
        recs = [(ts, fr[14:]) for ts, fr in records]
    path = write_pcap(tmp_path / "built.pcap", recs, **variant)
    out = same_results(path, monkeypatch)
    assert ctrack.usable(open_capture(path))   # raw IP (101) too
    # The scenario must really reach the tracker's rare paths in the compared output.
    conns, rsts = out["connections"], out["rsts"]
    assert len(rsts) >= 40
    if variant.get("snaplen", 65535) > 100:
        assert any(c["fragments_seen"] for c in conns)
        assert any(c["icmp_too_big_seen"] and c["path_mtu"] == 1300 for c in conns)
        assert any(r["challenge_ack_seen"] for r in rsts)
        assert any(r["data_after_rst"] for r in rsts)
        assert any(r["synack_after_rst"] for r in rsts)
        assert any(c["ip_version"] == 6 for c in conns)
        assert sum(c["client"]["port"] == 40002 for c in conns) == 3  # 4-tuple reused


@needs_c
@pytest.mark.parametrize("damage", ["header", "record", "corrupt"])
def test_damaged_files_agree(damage, records, tmp_path, monkeypatch):
    data = write_pcap(tmp_path / "ok.pcap", records).read_bytes()
    if damage == "header":
        data = data + b"\x01" * 9
    elif damage == "record":
        data = data[:-30]
    else:
        # Record 25's captured length made impossible.
        off = 24
        for _ in range(24):
            off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        data = data[:off + 8] + struct.pack("<I", 0x7FFFFFF0) + data[off + 12:]
    path = tmp_path / "damaged.pcap"
    path.write_bytes(data)
    out = same_results(path, monkeypatch)
    assert len(out["capture"]["warnings"]) == 1


@needs_c
def test_small_chunks_agree(records, tmp_path, monkeypatch):
    """Records straddling chunk boundaries (a 1000-byte chunk instead of 4 MiB)."""
    import facts.capture.fastpcap as fastpcap
    import facts.capture.pcap as pcap
    for module in (pcap, fastpcap, ctrack):
        monkeypatch.setattr(module, "CHUNK", 1000)
    path = write_pcap(tmp_path / "chunks.pcap", records)
    same_results(path, monkeypatch)
    path.write_bytes(path.read_bytes()[:-5])
    same_results(path, monkeypatch)


@needs_c
def test_benchmark_slice_agrees(tmp_path, monkeypatch):
    """More than one progress chunk (65 536 packets), through both compiled paths."""
    from facts.capture.pcapng_writer import write_capture
    path = tmp_path / "bench.pcap"
    bench_capture(path, 70_000, connections=1500, seed=5)
    out = same_results(path, monkeypatch)
    assert out["capture"]["records"] == 70_000
    assert len(out["rsts"]) > 100
    ng = tmp_path / "bench.pcapng"
    write_capture(open_capture(path), str(ng))
    assert len(same_results(ng, monkeypatch, state=False)["rsts"]) == len(out["rsts"])


@needs_c
def test_pcapng_agrees(records, tmp_path, monkeypatch):
    """pcapng (directions in epb_flags) goes through the compiled tracker too."""
    from facts.capture.pcapng_writer import write_capture
    recs = [(ts, sll(fr, (0, 4, 1)[i % 3])) for i, (ts, fr) in enumerate(records)]
    src = write_pcap(tmp_path / "src.pcap", recs, linktype=113)
    out = tmp_path / "conv.pcapng"
    write_capture(open_capture(src), str(out))
    assert not ctrack.usable(open_capture(out))
    result = same_results(out, monkeypatch)
    assert len(result["rsts"]) >= 40


@needs_c
def test_fact_stream_agrees(records, tmp_path, monkeypatch):
    path = write_pcap(tmp_path / "stream.pcap", records)
    streams = []
    for env in (None, "1"):
        if env:
            monkeypatch.setenv("RSTSLEUTH_NO_CEXT", env)
        stream = FactStream(path)
        streams.append(([(f.model_dump(), f.model_dump_json()) for f in stream],
                        stream.capture.model_dump()))
    assert streams[0] == streams[1]


@needs_c
def test_kept_segments_are_shared_and_trimmed(records, tmp_path):
    """Like the Python tracker: one object per packet however often it is referenced, payload
    of kept non-RST segments cut to 64 bytes, a RST's payload kept whole."""
    tr = ctrack.track_pcap(open_capture(write_pcap(tmp_path / "s.pcap", records)))
    for c in tr.connections:
        for h in c.half:
            if h.last is not None and h.ldata is not None and h.last.frame == h.ldata.frame:
                assert h.last is h.ldata
            for s in (h.last, h.ldata):
                assert s is None or len(s.payload) <= 64
    big = [r for r in tr.rsts if r.seg.payload_len == 100]
    assert big and all(len(r.seg.payload) == 100 for r in big)
    for r in tr.rsts:
        if r.sender_last is not None:
            assert r.sender_last is r.conn.half[r.side].last or \
                r.sender_last.frame != r.conn.half[r.side].last.frame


@needs_c
def test_track_objects_matches_feed(records, tmp_path):
    """The compiled tracker over decoded packet objects (any reader) equals Tracker.feed."""
    path = write_pcap(tmp_path / "o.pcap", records)
    py_tr, _ = _python_tracker(path)
    c_tr = ctrack.track_packets(iter_packets(open_capture(path)))
    assert _state(c_tr) == _state(py_tr)


def test_no_cext_uses_python(monkeypatch, tmp_path, records):
    monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    assert not ctrack.available()
    assert not ctrack.usable(open_capture(write_pcap(tmp_path / "n.pcap", records)))


@needs_c
def test_walk_releases_the_gil(tmp_path):
    """Another thread runs while the file is read and decoded inline (a TUI stays live)."""
    import sys
    import threading
    import time
    path = tmp_path / "gil.pcap"
    bench_capture(path, 100_000, connections=500, seed=7)
    ticks = [0]
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.0002)

    old = sys.getswitchinterval()
    # A long switch interval: the ticker only runs when the main thread releases the GIL
    # itself, never because the interpreter forced a switch.
    sys.setswitchinterval(30)
    worker = threading.Thread(target=tick)
    during = []
    try:
        worker.start()
        time.sleep(0.01)
        # the walk alone (read_pcap: no fact models needed); up to three tries, since on a
        # loaded machine the ticker may not be scheduled within one 20 ms walk
        for _ in range(3):
            cap = open_capture(path)
            before = ticks[0]
            ctrack.read_pcap(cap)
            during.append(ticks[0] - before)
            if during[-1]:
                break
    finally:
        stop.set()
        sys.setswitchinterval(old)
        worker.join()
    assert any(during), during


@needs_c
def test_rst_storm_agrees(tmp_path, monkeypatch):
    """Hundreds of RSTs in one connection, both claimed senders, data and challenge ACKs in
    between: long watch lists patched by every later packet."""
    conv = Conversation(("10.1.0.2", 45000), ("10.1.0.1", 443), start=1_700_000_100.5)
    conv.handshake()
    for i in range(300):
        side = "client" if i % 2 else "server"
        nxt = conv.sides[side].nxt
        conv.send(side, "RA" if i % 3 else "R", dt=0.001 * (i % 7), ttl=60 + i % 5,
                  seq=(nxt + (0 if i % 4 else 3 + i)) & 0xFFFFFFFF, forged=i % 5 == 0)
        if i % 10 == 0:
            conv.data(conv.other(side), b"d" * (i % 90), dt=0.0005)
        if i % 15 == 0:
            conv.send(side, "A", dt=0.0002)
        if i % 50 == 0:
            conv.send("server", "SA", dt=0.0003)
    path = write_pcap(tmp_path / "storm.pcap", conv.records)
    out = same_results(path, monkeypatch)
    assert len(out["rsts"]) == 300
    assert any(r["challenge_ack_seen"] for r in out["rsts"])
    assert any(r["synack_after_rst"] for r in out["rsts"])
