"""Damaged input never raises anything but CaptureError; memory does not grow with the
number of packets; the pcapng fused path equals the general decoder."""
from __future__ import annotations

import random
import struct
import tracemalloc

import pytest

from facts.capture import fastpcap, open_capture
from facts.capture import pcap as pcap_mod
from facts.capture import pcapng as pcapng_mod
from facts.decode import decode, iter_packets
from facts.errors import CaptureError
from test_capture_fixtures import (epb, ether, ext_hdr, frag6, idb, ipv4, ipv6,
                                   mixed_endian_pcapng, pcap_bytes, shb, sll, spb, syn, tcp)

FRAMES = [
    syn(ttl=50, payload=b"hello"),
    ether(ipv4(payload=tcp(flags=0x14, reserved=3)), vlans=[(0x88A8, 1), (0x8100, 2)]),
    ether(ipv6(nh=0, ext=ext_hdr(44) + frag6(6, 0, True, 9), payload=tcp(payload=b"a" * 9)),
          etype=0x86DD),
    ether(ipv4(payload=tcp(payload=b"p" * 30), options=b"\x01" * 8)) + b"\x00" * 6,
    ether(ipv4(payload=b"x" * 8, frag=7)),
    ether(ipv4(proto=17, payload=b"\x00" * 12)),
    ether(ipv4(payload=tcp(payload=b"q" * 100)))[:70],
]


def _rows(pkts):
    return [(type(p).__name__,) + tuple(getattr(p, k) for k in p.__slots__) for p in pkts]


def test_pcapng_fused_path_equals_general_decoder(tmp_path):
    data = shb() + idb() + idb(linktype=113) + b"".join(
        epb("<", 0, i, f, origlen=len(f) + 30, flags=1 + i % 2) for i, f in enumerate(FRAMES))
    data += epb("<", 1, 99, sll(ipv4(payload=tcp(flags=4)), pkttype=4)) + spb("<", FRAMES[0])
    path = tmp_path / "m.pcapng"
    path.write_bytes(data)
    cap = open_capture(path)
    fast = list(iter_packets(cap))
    general = [decode(lt, d, fr, ts, o, di) for fr, ts, lt, d, o, di in cap.records()]
    assert _rows(fast) == _rows(p for p in general if p is not None)
    assert [p.frame for p in fast] == [1, 2, 3, 4, 5, 7, 8, 9]
    assert [p.direction for p in fast if hasattr(p, "direction")] == [
        "in", "out", "in", "out", "in", "out", None]


def _mutate(rnd: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        pos = rnd.randrange(len(buf))
        op = rnd.random()
        if op < 0.6:
            buf[pos] = rnd.randrange(256)
        elif op < 0.8:
            del buf[pos:pos + rnd.randint(1, 24)]
        else:
            buf[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 24)))
    if rnd.random() < 0.3:
        buf = buf[:rnd.randrange(len(buf))]
    return bytes(buf)


def test_mutated_files_never_raise_anything_but_capture_error(tmp_path):
    pcap = pcap_bytes([(1.0 + i, f) for i, f in enumerate(FRAMES * 3)])
    pcapng = mixed_endian_pcapng() + b"".join(epb(">", 0, i, ipv4(payload=tcp()))
                                               for i in range(6))
    rnd = random.Random(20261121)
    path = tmp_path / "fuzz"
    for i in range(400):
        path.write_bytes(_mutate(rnd, pcap if i % 2 else pcapng))
        try:
            cap = open_capture(path)
        except CaptureError as exc:
            assert "\n" not in str(exc)
            continue
        n_fast = sum(1 for _ in iter_packets(cap))
        warnings_fast = list(cap.warnings)
        rows = list(cap.records())
        assert cap.warnings == warnings_fast
        assert n_fast == sum(1 for r in rows if decode(r[2], r[3], r[0], r[1], r[4], r[5]))
        assert len(cap.warnings) <= 8


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_memory_does_not_grow_with_packets(tmp_path, monkeypatch, fmt):
    frame = syn(payload=b"z" * 40)
    n = 8_000
    path = tmp_path / f"big.{fmt}"
    if fmt == "pcap":
        path.write_bytes(pcap_bytes([(1.0, frame)] * n))
    else:
        path.write_bytes(shb() + idb() + epb("<", 0, 5, frame) * n)
    chunk = 16 << 10
    for mod in (pcap_mod, fastpcap, pcapng_mod):
        monkeypatch.setattr(mod, "CHUNK", chunk)
    cap = open_capture(path)
    tracemalloc.start()
    try:
        count = 0
        for _ in iter_packets(cap):
            count += 1
        for _ in cap.records():
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n and path.stat().st_size > 20 * chunk
    assert peak < 6 * chunk, f"peak {peak} bytes for a {path.stat().st_size}-byte file"


def test_pcap_corrupt_length_in_big_endian_nsec_file(tmp_path):
    frames = [(1.5 + i, syn(ttl=i + 1)) for i in range(4)]
    data = bytearray(pcap_bytes(frames, order=">", nsec=True))
    rec = 16 + len(frames[0][1])
    off = 24 + 3 * rec
    data[off + 8:off + 12] = struct.pack(">I", 300_000)
    path = tmp_path / "c.pcap"
    path.write_bytes(bytes(data))
    cap = open_capture(path)
    assert [p.ttl for p in iter_packets(cap)] == [1, 2, 3]
    assert cap.warnings == [f"corrupt record at byte offset {off}: captured length 300000 is "
                            f"impossible (limit 262144); stopped there, {rec} bytes skipped;"
                            " 3 records read"]
