"""ETL reader round trips: files written by tests/etl_factory.py (NDIS and pktmon, plain and
LZXPRESS-compressed, one or several processors) read back by facts.capture.etl."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_factory import (Packet, filetime, to_80211, write_ndis_etl,  # noqa: E402
                         write_pktmon_etl)
from facts.capture import open_capture  # noqa: E402
from facts.capture.etl import EtlCapture  # noqa: E402
from facts.decode import iter_packets  # noqa: E402
from facts.errors import CaptureError  # noqa: E402

LOCAL = bytes([10, 0, 0, 5])
REMOTE = bytes([198, 51, 100, 7])
T0 = filetime(1_700_000_000.0) + 1234567       # deliberately not a round number of ticks


def _tcp(i: int, out: bool, flags=dpkt.tcp.TH_ACK, size=0) -> bytes:
    src, dst = (LOCAL, REMOTE) if out else (REMOTE, LOCAL)
    sport, dport = (50000, 443) if out else (443, 50000)
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=1000 + i, ack=9000 + i, flags=flags,
                       data=bytes((i + k) % 251 for k in range(size)))
    ip = dpkt.ip.IP(src=src, dst=dst, p=6, ttl=128 if out else 51, id=i, data=tcp)
    ip.len = len(bytes(ip))
    return bytes(ip)


def _eth(ip: bytes, out: bool) -> bytes:
    a, b = b"\x00\x15\x5d\x01\x02\x03", b"\x3c\x84\x6a\x01\xea\x8b"
    dst, src = (b, a) if out else (a, b)
    return dst + src + b"\x08\x00" + ip


def _packets(n=40):
    pkts = []
    for i in range(n):
        out = i % 3 != 0
        size = (0, 30, 200, 1400)[i % 4]
        flags = dpkt.tcp.TH_RST if i == n - 1 else dpkt.tcp.TH_ACK
        pkts.append(Packet(T0 + i * 1_234_567 + i, _eth(_tcp(i, out, flags, size), out),
                           1, "out" if out else "in"))
    return pkts


def _mixed_links():
    """Ethernet, native 802.11 and raw IP packets (NDIS keywords name the link type)."""
    pkts = _packets(12)
    for k, p in enumerate(pkts):
        if k % 3 == 1:
            p.linktype, p.data = 105, to_80211(p.data)
        elif k % 3 == 2:
            p.linktype, p.data = 101, p.data[14:]
    return pkts


def _read(path):
    cap = open_capture(path)
    return cap, list(cap.records())


def _same(records, packets, snaplen=None):
    assert len(records) == len(packets)
    for n, (rec, p) in enumerate(zip(records, packets), 1):
        frame, ts, lt, data, origlen, direction = rec
        want = p.data if snaplen is None else p.data[:snaplen]
        assert frame == n
        assert data == want
        assert origlen == len(p.data)
        assert lt == p.linktype
        assert direction == p.direction
        assert abs(ts - p.seconds) < 1.5e-7, (ts, p.seconds)      # to the 100 ns tick


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("processors", [1, 3])
def test_ndis_round_trip_fragmented(tmp_path, compressed, processors):
    pkts = _mixed_links()
    path = write_ndis_etl(tmp_path / "n.etl", pkts, compressed=compressed, fragment_size=100,
                          processors=processors, buffer_size=8192)
    cap, recs = _read(path)
    assert cap.format == "etl" and isinstance(cap, EtlCapture)
    _same(recs, pkts)
    assert cap.warnings == []
    assert cap.link_types == {1, 101, 105}
    assert cap.providers_seen == {"ndis"}
    assert cap.records_read == len(pkts)
    # The big packets really were split across several events.
    assert cap.events_read > len(pkts) + 10


def test_ndis_extended_data_items_are_skipped(tmp_path):
    pkts = _packets(6)
    cap, recs = _read(write_ndis_etl(tmp_path / "x.etl", pkts, extended=True))
    _same(recs, pkts)


@pytest.mark.parametrize("compressed", [False, True])
def test_pktmon_folds_component_copies(tmp_path, compressed):
    pkts = _packets(30)
    path = write_pktmon_etl(tmp_path / "p.etl", pkts, compressed=compressed, components=4,
                            snaplen=128, drops={7: (42, 0x99)}, processors=2,
                            buffer_size=4096)
    cap, recs = _read(path)
    assert cap.events_read == 30 * 4 + 1
    _same(recs, pkts, snaplen=128)
    assert any(r[4] > len(r[3]) for r in recs)                  # truncated by pktmon
    assert len(cap.drops) == 1
    drop = cap.drops[0]
    assert (drop.frame, drop.component, drop.reason) == (8, 42, 0x99)
    assert drop.direction == pkts[7].direction
    assert cap.warnings == []


def test_pktmon_prefers_ethernet_copy_over_wifi_first_copy(tmp_path):
    pkts = _packets(9)
    cap, recs = _read(write_pktmon_etl(tmp_path / "w.etl", pkts, wifi_first=True))
    _same(recs, pkts, snaplen=128)          # Ethernet bytes, time of the first (802.11) copy
    assert cap.link_types == {1}


def test_pktmon_restarted_appearance_is_a_new_packet(tmp_path):
    """Two different packets logged under one (PktGroupId, PktNumber) stay two packets."""
    pkts = _packets(2)
    path = write_pktmon_etl(tmp_path / "r.etl", pkts, components=3)
    data = bytearray(Path(path).read_bytes())
    # Give packet 2 packet 1's group id: the factory numbers groups (3 << 48) | (i + 1).
    old = ((3 << 48) | 2).to_bytes(8, "little")
    new = ((3 << 48) | 1).to_bytes(8, "little")
    assert data.count(old) == 3
    Path(path).write_bytes(bytes(data).replace(old, new))
    _cap, recs = _read(path)
    assert [r[3] for r in recs] == [p.data[:128] for p in pkts]


def test_decoded_segments_and_rst(tmp_path):
    pkts = _packets(40)
    cap = open_capture(write_pktmon_etl(tmp_path / "d.etl", pkts, compressed=True))
    segs = list(iter_packets(cap))
    assert len(segs) == 40
    rst = [s for s in segs if s.flags & dpkt.tcp.TH_RST]
    assert len(rst) == 1 and rst[0].frame == 40 and rst[0].direction == pkts[39].direction == "in"
    assert segs[0].direction == "in" and segs[1].direction == "out"


def _first_data_buffer(path):
    data = Path(path).read_bytes()
    size0 = int.from_bytes(data[0:4], "little")
    return data, size0


def test_truncated_file_one_warning_rest_read(tmp_path):
    pkts = _packets(40)
    path = write_ndis_etl(tmp_path / "t.etl", pkts, buffer_size=4096)
    data = Path(path).read_bytes()
    cut = len(data) - 3000                     # inside the last buffer
    Path(path).write_bytes(data[:cut])
    cap, recs = _read(path)
    assert len(cap.warnings) == 1 and "cut short" in cap.warnings[0]
    assert 0 < len(recs) < 40
    _same(recs, pkts[:len(recs)])


def test_corrupt_compressed_buffer_skipped_with_one_warning(tmp_path):
    pkts = _packets(40)
    path = write_pktmon_etl(tmp_path / "c.etl", pkts, compressed=True, buffer_size=2048)
    data, size0 = _first_data_buffer(path)
    data = bytearray(data)
    bsize = int.from_bytes(data[size0:size0 + 4], "little")
    # Point the first literal run's flag word at impossible matches.
    data[size0 + 72:size0 + 76] = b"\xff\xff\xff\xff"
    data[size0 + 76:size0 + 80] = b"\xff\xff\xff\xff"
    Path(path).write_bytes(bytes(data))
    cap, recs = _read(path)
    assert len(cap.warnings) == 1, cap.warnings
    assert "buffer at offset" in cap.warnings[0]
    assert 0 < len(recs) < 40
    assert bsize > 72


def test_corrupt_event_size_one_warning(tmp_path):
    pkts = _packets(20)
    path = write_ndis_etl(tmp_path / "e.etl", pkts, buffer_size=4096)
    data, size0 = _first_data_buffer(path)
    data = bytearray(data)
    # Third event of the first data buffer claims to run past the buffer end.
    p = size0 + 72
    for _ in range(2):
        p += (int.from_bytes(data[p:p + 2], "little") + 7) & ~7
    data[p:p + 2] = (0xFFF0).to_bytes(2, "little")
    Path(path).write_bytes(bytes(data))
    cap, recs = _read(path)
    assert len(cap.warnings) == 1 and "corrupt event" in cap.warnings[0]
    assert len(recs) >= 2
    assert recs[0][3] == pkts[0].data


def test_corrupt_buffer_header_one_warning(tmp_path):
    pkts = _packets(40)
    path = write_ndis_etl(tmp_path / "h.etl", pkts, buffer_size=4096)
    data, size0 = _first_data_buffer(path)
    data = bytearray(data)
    data[size0 + 4096:size0 + 4100] = b"\x07\x00\x00\x00"      # second data buffer
    Path(path).write_bytes(bytes(data))
    cap, recs = _read(path)
    assert len(cap.warnings) == 1 and "corrupt buffer header" in cap.warnings[0]
    assert 0 < len(recs) < 40


def test_not_an_etl(tmp_path):
    fake = tmp_path / "fake.etl"
    fake.write_bytes((1024).to_bytes(4, "little") + bytes(1020))
    with pytest.raises(CaptureError) as exc:
        open_capture(fake)
    assert str(fake) in str(exc.value)
    tiny = tmp_path / "tiny.etl"
    tiny.write_bytes(b"\x00\x04\x00\x00")
    with pytest.raises(CaptureError):
        open_capture(tiny)


def _convert(src, dst):
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-m", "tui.cli", "convert", str(src), str(dst)],
                          cwd=root, capture_output=True, text=True, timeout=60)


def test_convert_round_trip(tmp_path):
    pkts = _mixed_links()
    src = write_ndis_etl(tmp_path / "m.etl", pkts, compressed=True, fragment_size=300)
    out = tmp_path / "m.pcapng"
    run = _convert(src, out)
    assert run.returncode == 0, run.stderr
    assert "12 packets" in run.stdout
    cap, recs = _read(out)
    assert cap.format == "pcapng"
    _same(recs, pkts)                          # link types, directions, lengths, 100 ns times
    if shutil.which("tshark"):
        lines = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.len",
                                "-e", "frame.p2p_dir"], capture_output=True, text=True,
                               timeout=60).stdout.split("\n")
        rows = [ln.split("\t") for ln in lines if ln.strip()]
        assert len(rows) == len(pkts)
        assert [r[1] for r in rows] == [("0" if p.direction == "out" else "1") for p in pkts]


def test_convert_truncated_pktmon_keeps_original_length(tmp_path):
    pkts = _packets(8)
    src = write_pktmon_etl(tmp_path / "p.etl", pkts)
    out = tmp_path / "p.pcapng"
    assert _convert(src, out).returncode == 0
    _cap, recs = _read(out)
    _same(recs, pkts, snaplen=128)


def test_convert_bad_input_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.etl"
    bad.write_bytes(b"hello world, not a capture")
    run = _convert(bad, tmp_path / "o.pcapng")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    missing_dir = tmp_path / "nodir" / "o.pcapng"
    run = _convert(write_ndis_etl(tmp_path / "ok.etl", _packets(2)), missing_dir)
    assert run.returncode == 2 and "cannot write" in run.stderr
    assert not os.path.exists(missing_dir)


def test_progress_and_counters(tmp_path):
    pkts = _packets(60)
    path = write_ndis_etl(tmp_path / "g.etl", pkts, buffer_size=2048, processors=2)
    cap = open_capture(path)
    it = cap.records()
    next(it)
    assert 0 < cap.bytes_read < os.path.getsize(path)
    assert cap.records_read == 1
    rest = list(it)
    assert len(rest) == 59 and cap.records_read == 60
    assert cap.bytes_read == os.path.getsize(path)
    assert [r[0] for r in rest] == list(range(2, 61))
    assert all(a[1] <= b[1] for a, b in zip(rest, rest[1:]))    # streams merged in time


def test_convert_accepts_pcap_input(tmp_path):
    src = tmp_path / "in.pcap"
    pkts = _packets(5)
    with open(src, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=1, nano=True)
        for p in pkts:
            w.writepkt(p.data, ts=p.seconds)
    out = tmp_path / "in.pcapng"
    run = _convert(src, out)
    assert run.returncode == 0, run.stderr
    cap, recs = _read(out)
    orig = list(open_capture(src).records())
    assert [(r[2], r[3], r[4]) for r in recs] == [(r[2], r[3], r[4]) for r in orig]
    assert all(abs(a[1] - b[1]) < 1e-6 for a, b in zip(recs, orig))


def test_many_corrupt_buffers_still_one_warning(tmp_path):
    pkts = _packets(60)
    path = write_pktmon_etl(tmp_path / "m.etl", pkts, compressed=True, buffer_size=1024)
    data = bytearray(Path(path).read_bytes())
    off = int.from_bytes(data[0:4], "little")
    damaged = 0
    while off + 80 < len(data):
        size = int.from_bytes(data[off:off + 4], "little")
        if damaged < 3:
            data[off + 72:off + 80] = b"\xff" * 8
            damaged += 1
        off += size
    Path(path).write_bytes(bytes(data))
    cap, recs = _read(path)
    assert len(cap.warnings) == 1 and "and 2 more like it" in cap.warnings[0], cap.warnings
    assert 0 < len(recs) < 60


def test_pktmon_wifi_only_packet_waits_then_keeps_its_drop(tmp_path):
    """A packet seen only in its 802.11 form is held briefly for a better copy, then yielded
    in order; a drop logged while it waits names its frame (and, being an Ethernet copy,
    supplies the bytes)."""
    pkts = _packets(6)
    path = write_pktmon_etl(tmp_path / "wd.etl", pkts, components=1, wifi_first=True,
                            drops={3: (77, 5)})
    cap, recs = _read(path)
    assert [r[0] for r in recs] == list(range(1, 7))
    for k, (rec, p) in enumerate(zip(recs, pkts)):
        if p.direction == "in" and k != 3:
            assert rec[2] == 105 and rec[3] == to_80211(p.data)[:128]
        else:
            assert rec[2] == 1 and rec[3] == p.data[:128]
        assert abs(rec[1] - p.seconds) < 1.5e-7
    assert pkts[3].direction == "in"
    assert [(d.frame, d.component, d.reason) for d in cap.drops] == [(4, 77, 5)]
    segs = list(iter_packets(cap))
    assert len(segs) == 5            # the 802.11-only packet is Protected: not decodable


def test_damaged_files_never_raise_beyond_capture_error(tmp_path):
    import random
    sources = [
        Path(write_ndis_etl(tmp_path / "f1.etl", _mixed_links(), compressed=True,
                            fragment_size=100, processors=2, buffer_size=2048)).read_bytes(),
        Path(write_pktmon_etl(tmp_path / "f2.etl", _packets(30), buffer_size=2048,
                              drops={3: (1, 2)}, wifi_first=True)).read_bytes(),
    ]
    target = tmp_path / "fz.etl"
    for seed in range(80):
        rnd = random.Random(seed)
        data = bytearray(rnd.choice(sources))
        if seed % 3 == 0:
            data = data[:rnd.randrange(len(data))]
        else:
            for _ in range(rnd.randrange(1, 12)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
        target.write_bytes(bytes(data))
        try:
            cap = open_capture(target)
        except CaptureError:
            continue
        recs = list(cap.records())
        assert len(cap.warnings) <= 3
        assert all(isinstance(r[3], bytes) and r[4] >= len(r[3]) for r in recs)


def test_trace_without_packet_events_says_so(tmp_path):
    cap, recs = _read(write_ndis_etl(tmp_path / "empty.etl", []))
    assert recs == [] and cap.format == "etl"
    assert len(cap.warnings) == 1 and "no packet events" in cap.warnings[0]
