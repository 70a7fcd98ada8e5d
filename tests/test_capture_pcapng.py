"""pcapng walker: sections of either byte order, per-interface link type and clock, SPB and
obsolete PB, direction flags, and damaged blocks."""
from __future__ import annotations

import struct

import pytest

from facts.capture import open_capture
from facts.capture import pcapng as pcapng_mod
from facts.decode import iter_packets
from facts.errors import CaptureError
from facts.packet import TcpSegment
from test_capture_fixtures import (block, custom, epb, idb, ipv4, ipv6, mixed_endian_pcapng,
                                   null_hdr, old_pb, shb, spb, syn, tcp)


def _write(tmp_path, data, name="t.pcapng"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_two_sections_of_different_byte_order(tmp_path):
    cap = open_capture(_write(tmp_path, mixed_endian_pcapng()))
    assert cap.format == "pcapng"
    rows = list(cap.records())
    # the custom block is frame 1 (Wireshark shows it), but carries no packet
    assert [r[0] for r in rows] == [2, 3, 4, 5]
    assert [r[2] for r in rows] == [1, 101, 101, 101]
    assert [r[5] for r in rows] == ["in", "out", None, "in"]
    ts = [r[1] for r in rows]
    assert ts[0] == pytest.approx(1_600_000_000.5, abs=1e-6)
    assert ts[1] == pytest.approx(1003.0)        # 3 * 2^20 ticks at 2^-20 s + offset 1000
    assert ts[2] == ts[1]                          # SPB: no timestamp, previous packet's
    assert ts[3] == pytest.approx(1005.0)
    pkts = list(iter_packets(cap))
    assert [p.ttl for p in pkts] == [61, 250, 251, 252]
    assert [p.direction for p in pkts] == ["in", "out", None, "in"]
    assert cap.records_read == 5 and cap.link_types == {1, 101} and cap.warnings == []


@pytest.mark.parametrize("tsresol,ticks,expect", [
    (None, 1_500_000, 1.5), (9, 1_500_000_000, 1.5), (3, 1500, 1.5), (0, 2, 2.0),
    (0x80 | 10, 1536, 1.5), (0x80 | 30, 3 << 29, 1.5),
])
def test_if_tsresol_base10_and_base2(tmp_path, tsresol, ticks, expect):
    data = shb() + idb(tsresol=tsresol) + epb("<", 0, ticks, syn())
    (row,) = open_capture(_write(tmp_path, data)).records()
    assert row[1] == pytest.approx(expect, abs=1e-9)


def test_if_tsoffset_and_interfaces_with_own_clocks(tmp_path):
    data = (shb() + idb(linktype=1, tsresol=6, tsoffset=-100)
            + idb(linktype=0, tsresol=0x80 | 1, tsoffset=1_000_000_000)
            + epb("<", 1, 3, null_hdr(ipv6(payload=tcp(flags=0x04)), 30))
            + epb("<", 0, 200_000_000, syn()))
    cap = open_capture(_write(tmp_path, data))
    rows = list(cap.records())
    assert [(r[0], r[2]) for r in rows] == [(1, 0), (2, 1)]
    assert rows[0][1] == pytest.approx(1_000_000_001.5)
    assert rows[1][1] == pytest.approx(100.0)
    assert [p.ipv for p in iter_packets(cap)] == [6, 4]


def test_spb_uses_idb0_link_type_and_snaplen(tmp_path):
    frame = syn(payload=b"p" * 100)
    data = shb() + idb(linktype=1, snaplen=60) + idb(linktype=101) + spb("<", frame)
    cap = open_capture(_write(tmp_path, data))
    (row,) = cap.records()
    assert row[0] == 1 and row[1] == 0.0 and row[2] == 1
    assert row[3] == frame[:60] and row[4] == len(frame)
    (p,) = iter_packets(cap)
    assert p.truncated and p.payload_len == 100 and len(p.payload) == 6


def test_unknown_blocks_skipped_custom_blocks_counted(tmp_path):
    data = (shb() + idb() + block("<", 0x12345, b"\x00" * 8) + block("<", 5, b"\x00" * 12)
            + custom() + block("<", 0x40000BAD, b"\x00" * 8) + epb("<", 0, 1, syn()))
    cap = open_capture(_write(tmp_path, data))
    assert [r[0] for r in cap.records()] == [3]
    assert cap.records_read == 3


def test_packet_in_undeclared_interface_is_skipped_with_warning(tmp_path):
    data = (shb() + idb() + epb("<", 3, 1, syn()) + epb("<", 0, 1, syn())
            + epb("<", 5, 1, syn()))
    cap = open_capture(_write(tmp_path, data))
    assert [r[0] for r in cap.records()] == [1]
    assert cap.warnings == ["2 packet blocks skipped (first at byte offset 48: interface 3 "
                            "not declared in its section)"]


def test_packet_block_claiming_more_bytes_than_it_holds(tmp_path):
    bad = bytearray(epb("<", 0, 1, syn()))
    bad[20:24] = struct.pack("<I", 5000)               # captured length
    data = shb() + idb() + bytes(bad) + epb("<", 0, 2, syn(ttl=9))
    cap = open_capture(_write(tmp_path, data))
    assert [p.ttl for p in iter_packets(cap)] == [9]
    assert cap.warnings == ["1 packet block skipped (first at byte offset 48: captured "
                            "length exceeds the block)"]


def test_new_section_resets_interfaces(tmp_path):
    data = shb() + idb(linktype=1) + shb(">") + epb(">", 0, 1, syn())
    cap = open_capture(_write(tmp_path, data))
    assert list(cap.records()) == []
    assert "interface 0 not declared" in cap.warnings[0]


def test_unsupported_link_types_only(tmp_path):
    path = _write(tmp_path, shb() + idb(linktype=147) + idb(linktype=148)
                  + epb("<", 0, 1, b"\x00" * 20))
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert str(info.value) == f"{path}: unsupported link type 147, 148"


def test_one_supported_interface_is_enough(tmp_path):
    data = shb() + idb(linktype=147) + idb(linktype=1) + epb("<", 1, 1, syn())
    assert [p.ttl for p in iter_packets(open_capture(_write(tmp_path, data)))] == [64]


@pytest.mark.parametrize("keep,expect", [(20, "20 of 28 bytes"), (30, "30 of 40 bytes")])
def test_truncated_section_header(tmp_path, keep, expect):
    data = shb()
    if keep > 28:                                # a header with a 12-byte option
        data = block("<", 0x0A0D0D0A, data[8:24] + struct.pack("<HH", 4, 5) + b"name!")
    path = _write(tmp_path, data[:keep])
    with pytest.raises(CaptureError) as info:
        open_capture(path)
    assert str(info.value) == f"{path}: truncated pcapng section header ({expect})"


def _five_packets():
    head = shb() + idb()
    pkts = [epb("<", 0, i, syn(ttl=10 + i)) for i in range(5)]
    return head, pkts


def test_corrupt_block_length_resynchronises(tmp_path):
    head, pkts = _five_packets()
    bad = bytearray(pkts[2])
    bad[4:8] = struct.pack("<I", 0x7FFFFFF1)          # not a multiple of 4, absurd
    data = head + pkts[0] + pkts[1] + bytes(bad) + pkts[3] + pkts[4]
    cap = open_capture(_write(tmp_path, data))
    assert [p.ttl for p in iter_packets(cap)] == [10, 11, 13, 14]
    off = len(head) + 2 * len(pkts[0])
    assert cap.warnings == [f"corrupt pcapng block at byte offset {off} (block length "
                            f"2147483633): skipped {len(pkts[2])} bytes to the next valid block"]


def test_trailing_length_mismatch_resynchronises(tmp_path):
    head, pkts = _five_packets()
    bad = bytearray(pkts[1])
    bad[-4:] = struct.pack("<I", len(bad) + 8)
    data = head + pkts[0] + bytes(bad) + b"\xee" * 12 + pkts[2]
    cap = open_capture(_write(tmp_path, data))
    assert [p.ttl for p in iter_packets(cap)] == [10, 12]
    assert cap.warnings == [f"corrupt pcapng block at byte offset {len(head) + len(pkts[0])}"
                            f" (trailing block length does not match): skipped "
                            f"{len(pkts[1]) + 12} bytes to the next valid block"]


def test_corrupt_block_with_nothing_valid_after_it(tmp_path):
    head, pkts = _five_packets()
    data = head + pkts[0] + struct.pack("<II", 6, 13) + b"\xee" * 40
    cap = open_capture(_write(tmp_path, data))
    assert len(list(cap.records())) == 1
    assert cap.warnings == [f"corrupt pcapng block at byte offset {len(head) + len(pkts[0])}"
                            " (block length 13): no valid block after it, 48 bytes skipped;"
                            " 1 records read"]


def test_file_cut_short_inside_last_block(tmp_path):
    head, pkts = _five_packets()
    data = head + b"".join(pkts)
    cap = open_capture(_write(tmp_path, data[:-20]))
    assert len(list(iter_packets(cap))) == 4
    assert cap.warnings == [f"file cut short: last block incomplete, {len(pkts[4]) - 20} of "
                            f"{len(pkts[4])} bytes present; 4 records read"]
    cap = open_capture(_write(tmp_path, data + b"\x06\x00", "b.pcapng"))
    assert len(list(cap.records())) == 5
    assert cap.warnings == ["file cut short: last block header incomplete, 2 of 12 bytes "
                            "present; 5 records read"]


def test_resync_across_chunk_boundaries(tmp_path, monkeypatch):
    head, pkts = _five_packets()
    garbage = bytes(range(256)) * 3
    bad = struct.pack("<II", 6, 99) + garbage                 # 776 bytes, multiple of 4
    data = head + pkts[0] + bad + b"".join(pkts[1:])
    monkeypatch.setattr(pcapng_mod, "CHUNK", 64)
    cap = open_capture(_write(tmp_path, data))
    assert [p.ttl for p in iter_packets(cap)] == [10, 11, 12, 13, 14]
    assert cap.warnings == [f"corrupt pcapng block at byte offset {len(head) + len(pkts[0])}"
                            f" (block length 99): skipped {len(bad)} bytes to the next valid"
                            f" block"]


def test_many_blocks_straddling_small_chunks(tmp_path, monkeypatch):
    data = shb() + idb() + b"".join(epb("<", 0, i, syn(ttl=i % 250 + 1,
                                                       payload=b"x" * (i % 13)))
                                    for i in range(80))
    monkeypatch.setattr(pcapng_mod, "CHUNK", 50)
    cap = open_capture(_write(tmp_path, data))
    pkts = list(iter_packets(cap))
    assert [p.ttl for p in pkts] == [i % 250 + 1 for i in range(80)]
    assert cap.bytes_read == len(data)
    assert all(isinstance(p, TcpSegment) for p in pkts) and cap.warnings == []


def test_obsolete_packet_block_alone(tmp_path):
    data = shb(">") + idb(">", linktype=228) + old_pb(">", 0, 2_000_000, ipv4(
        payload=tcp(flags=0x04), ttl=7), flags=2)
    (row,) = open_capture(_write(tmp_path, data)).records()
    assert row[:3] == (1, 2.0, 228) and row[5] == "out"
