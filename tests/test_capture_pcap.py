"""Classic pcap reader: formats, byte orders, link-type masking, bad input, damaged files."""
from __future__ import annotations

import pytest

from facts.capture import open_capture
from facts.capture import pcap as pcap_mod
from facts.capture import fastpcap
from facts.decode import decode, iter_packets
from facts.errors import CaptureError
from facts.packet import RST, TcpSegment
from test_capture_fixtures import ether, ipv4, pcap_bytes, sll, sll2, syn, tcp


def _write(tmp_path, data, name="t.pcap"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path, order, nsec):
    recs = [(1_600_000_000.25, syn(ttl=60)), (1_600_000_001.000123, syn(ttl=61, flags=RST))]
    cap = open_capture(_write(tmp_path, pcap_bytes(recs, order=order, nsec=nsec)))
    assert cap.format == "pcap" and cap.link_types == {1}
    rows = list(cap.records())
    assert [r[0] for r in rows] == [1, 2]
    assert rows[0][1] == pytest.approx(1_600_000_000.25, abs=1e-9)
    assert rows[1][1] == pytest.approx(1_600_000_001.000123, abs=1e-9)
    assert rows[1][2] == 1 and rows[1][3] == recs[1][1] and rows[1][5] is None
    pkts = list(iter_packets(cap))
    assert [p.ttl for p in pkts] == [60, 61] and pkts[1].flags == RST
    assert cap.records_read == 2 and cap.warnings == []


def test_nanosecond_precision_kept(tmp_path):
    cap = open_capture(_write(tmp_path, pcap_bytes([(5.000000007, syn())], nsec=True)))
    (row,) = cap.records()
    assert row[1] == pytest.approx(5.000000007, abs=2e-10)


def test_fcs_bits_in_link_type_are_masked(tmp_path):
    cap = open_capture(_write(tmp_path, pcap_bytes([(1.0, syn(ttl=33))], raw_link=0x30000001)))
    assert cap.link_types == {1}
    (pkt,) = iter_packets(cap)
    assert pkt.ttl == 33


@pytest.mark.parametrize("content,expect", [
    (b"", "empty file"),
    (b"<html><body>not a capture</body></html>\n", "not a capture file (unknown magic 0x3c68746d)"),
    (b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", "truncated pcap file header (8 of 24 bytes)"),
    (b"\xa1\xb2", "truncated file header (2 bytes)"),
    (b"\x7fELF\x02\x01\x01\x00", "not a capture file (unknown magic 0x7f454c46)"),
])
def test_bad_files_raise_one_line_capture_error(tmp_path, content, expect):
    path = _write(tmp_path, content)
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    msg = str(info.value)
    assert msg == f"{path}: {expect}" and "\n" not in msg


def test_missing_and_directory(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        open_capture(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError, match="is a directory"):
        open_capture(tmp_path)


def test_unknown_link_type(tmp_path):
    path = _write(tmp_path, pcap_bytes([(1.0, b"\x00" * 40)], linktype=147))
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert str(info.value) == f"{path}: unsupported link type 147 (raw field 0x00000093)"


def _frames(n):
    return [(1000.0 + i, syn(ttl=i % 200 + 1, ip_id=i), ) for i in range(n)]


def test_cut_short_inside_record_data(tmp_path):
    data = pcap_bytes(_frames(3))
    cap = open_capture(_write(tmp_path, data[:-10]))
    assert len(list(iter_packets(cap))) == 2
    rec_len = 16 + len(syn())
    assert cap.warnings == [f"file cut short: last record incomplete, {rec_len - 10} of "
                            f"{rec_len} bytes present; 2 records read"]
    assert cap.records_read == 2


def test_cut_short_inside_record_header(tmp_path):
    data = pcap_bytes(_frames(3)) + b"\x01\x02\x03"
    cap = open_capture(_write(tmp_path, data))
    assert len(list(cap.records())) == 3
    assert cap.warnings == ["file cut short: last record header incomplete, 3 of 16 bytes "
                            "present; 3 records read"]


@pytest.mark.parametrize("walker", ["records", "fast"])
def test_corrupt_record_in_the_middle_stops_with_offset(tmp_path, walker):
    frames = _frames(5)
    data = bytearray(pcap_bytes(frames))
    rec_len = 16 + len(frames[0][1])
    bad = 24 + 2 * rec_len                   # third record header
    data[bad + 8:bad + 12] = (10_000_000).to_bytes(4, "little")
    cap = open_capture(_write(tmp_path, bytes(data)))
    got = list(cap.records()) if walker == "records" else list(iter_packets(cap))
    assert len(got) == 2 and cap.records_read == 2
    assert cap.warnings == [f"corrupt record at byte offset {bad}: captured length 10000000 "
                            f"is impossible (limit 262144); stopped there, "
                            f"{len(data) - bad} bytes skipped; 2 records read"]


def test_records_straddling_chunks(tmp_path, monkeypatch):
    """Small chunks force records across chunk boundaries in both walkers."""
    frames = [(10.0 + i, syn(ttl=i + 1, payload=b"x" * (i * 7))) for i in range(60)]
    path = _write(tmp_path, pcap_bytes(frames))
    monkeypatch.setattr(pcap_mod, "CHUNK", 97)
    monkeypatch.setattr(fastpcap, "CHUNK", 97)
    cap = open_capture(path)
    assert [r[3] for r in cap.records()] == [f[1] for f in frames]
    assert [p.ttl for p in iter_packets(cap)] == list(range(1, 61))
    assert [len(p.payload) for p in iter_packets(cap)] == [i * 7 for i in range(60)]
    assert cap.warnings == [] and cap.bytes_read == path.stat().st_size


def _seg_tuple(p):
    return tuple(getattr(p, k) for k in p.__slots__)


def _relink(frame, linktype, i):
    """An Ethernet frame re-wrapped in a Linux cooked header (packet type varies)."""
    if linktype == 1:
        return frame
    wrap = sll if linktype == 113 else sll2
    return wrap(frame[14:], proto=int.from_bytes(frame[12:14], "big"), pkttype=i % 5)


@pytest.mark.parametrize("linktype", [1, 113, 276])
def test_fast_path_equals_general_decoder(tmp_path, linktype):
    """The fused loop must give what decode() gives, frame for frame."""
    frames = [
        syn(ttl=50, payload=b"hello"),
        syn(flags=0x14, ttl=51),
        ether(ipv4(payload=tcp(flags=0x10, payload=b"abc", reserved=0x0F), ttl=52)),
        ether(ipv4(payload=tcp(payload=b"p" * 30), ttl=53)) + b"\x00" * 6,   # Ethernet padding
        ether(ipv4(payload=tcp(options=b"\x02\x04\x05\xb4"), options=b"\x01" * 4)),
        ether(ipv4(proto=17, payload=b"\x00" * 12)),
        ether(ipv4(payload=tcp(), totlen=28)),                # 8 TCP bytes, then padding
        ether(b"\x00" * 28, etype=0x0806),
        ether(ipv4(payload=tcp(payload=b"q" * 100)))[:60],    # snaplen-truncated
        ether(ipv4(payload=tcp(flags=0x04), frag=0x4000)),    # DF set stays fast
        ether(ipv4(payload=tcp(), frag=0x2000)),              # first fragment
    ]
    frames = [_relink(f, linktype, i) for i, f in enumerate(frames)]
    recs = [(100.0 + i, f, len(f) + (40 if i == 8 else 0)) for i, f in enumerate(frames)]
    cap = open_capture(_write(tmp_path, pcap_bytes(recs, linktype=linktype)))
    fast = [_seg_tuple(p) for p in iter_packets(cap)]
    general = [decode(lt, d, fr, ts, o, di) for fr, ts, lt, d, o, di in cap.records()]
    assert fast == [_seg_tuple(p) for p in general if p is not None]
    segs = [p for p in iter_packets(cap)]
    assert all(isinstance(p, TcpSegment) for p in segs)
    assert [p.frame for p in segs] == [1, 2, 3, 4, 5, 9, 10, 11]
    assert segs[3].payload == b"p" * 30                          # padding not payload
    trunc = segs[5]
    assert trunc.truncated and trunc.payload_len == 100 and len(trunc.payload) == 6
    assert segs[2].reserved == 0x0F and segs[-1].fragmented
    if linktype != 1:
        # packet types 0,1,2,3,4,3,4,0 for frames 1-5, 9-11: only 0 and 4 say a side
        assert [p.direction for p in segs] == ["in", None, None, None, "out", None,
                                               "out", "in"]


def test_records_stream_without_reading_everything(tmp_path):
    cap = open_capture(_write(tmp_path, pcap_bytes(_frames(10))))
    it = cap.records()
    first = next(it)
    assert first[0] == 1
    it.close()
    assert cap.records_read == 1
