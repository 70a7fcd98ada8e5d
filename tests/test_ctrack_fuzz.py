"""Random, partly malformed Ethernet/IPv4/IPv6/TCP captures (bad header and total lengths,
fragments, ICMP too-big, cut frames, sequence wrap, odd flags, VLAN tags): the compiled
reader and tracker must give exactly the facts and warnings of the Python path, and never
crash."""
from __future__ import annotations

import random
import struct

import pytest

from facts import ctrack
from facts.extract import extract

pytestmark = pytest.mark.skipif(not ctrack.available(), reason="facts._ctrack is not built "
                                "(python setup.py build_ext --inplace)")

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
MAC = b"\x02" * 6 + b"\x04" * 6


def _tcp(rng: random.Random) -> bytes:
    flags = rng.choice([0x02, 0x12, 0x10, 0x18, 0x04, 0x14, 0x11, 0x01, rng.getrandbits(8)])
    sport = rng.choice([1000, 1001, 2000, rng.getrandbits(16)])
    dport = rng.choice([80, 443, rng.getrandbits(16)])
    seq = rng.choice([0, 0xFFFFFFF0, rng.getrandbits(32)])
    doff = rng.choice([5, 5, 5, 8, rng.randint(0, 15)])  # below 5 is malformed
    reserved = rng.choice([0, 0, rng.getrandbits(4)])
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, rng.getrandbits(32),
                         doff << 4 | reserved, flags, rng.getrandbits(16), 0, 0)
    options = bytes(max(0, doff * 4 - 20))
    payload = rng.randbytes(rng.choice([0, 0, 10, 100, rng.randint(0, 300)]))
    return header + options + payload


def _ipv6(rng: random.Random, segment: bytes) -> bytes:
    src = bytes(15) + bytes([rng.choice([1, 2])])
    dst = bytes(15) + bytes([rng.choice([1, 2, 3])])
    next_header = rng.choice([6, 6, 6, 0, 44, 17, 58])
    length = (len(segment) + rng.choice([0, 0, -5, 50])) & 0xFFFF
    hop_limit = rng.choice([64, 63, 255, rng.getrandbits(8)])
    return (MAC + b"\x86\xdd" + struct.pack("!IHBB", 0x60000000, length, next_header, hop_limit)
            + src + dst + segment)


def _ipv4(rng: random.Random, segment: bytes) -> bytes:
    ihl = rng.choice([5, 5, 5, 6, rng.randint(0, 15)])
    frag = rng.choice([0, 0, 0, 0x2000, 0x4000, rng.getrandbits(13), 0x2000 | rng.getrandbits(13)])
    proto = rng.choice([6, 6, 6, 1, 17])
    src, dst = bytes([10, 0, 0, rng.choice([1, 2])]), bytes([10, 0, 0, rng.choice([1, 2, 3])])
    if proto == 1 and rng.random() < 0.5:  # ICMP fragmentation needed quoting a TCP packet
        quoted = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 60, 1, 0, 64, 6, 0, src, dst) + segment[:8]
        segment = struct.pack("!BBHHH", 3, 4, 0, 0, rng.choice([0, 576, 1400])) + quoted
    total = (4 * ihl + len(segment) + rng.choice([0, 0, 0, -3, 40, -100])) & 0xFFFF
    ttl = rng.choice([64, 63, 253, rng.getrandbits(8)])
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, rng.getrandbits(16), frag, ttl,
                         proto, 0, src, dst) + bytes(max(0, 4 * ihl - 20))
    ethertype = rng.choice([b"\x08\x00", b"\x08\x00", b"\x81\x00\x00\x05\x08\x00"])
    return MAC + ethertype + header + segment


def _write(path, seed: int, packets: int) -> None:
    rng = random.Random(seed)
    out = bytearray(PCAP_HEADER)
    t = 1_700_000_000
    for _ in range(packets):
        segment = _tcp(rng)
        frame = _ipv6(rng, segment) if rng.random() < 0.2 else _ipv4(rng, segment)
        captured = frame[:rng.choice([len(frame)] * 6 + [rng.randint(0, len(frame))])]
        t += rng.choice([0, 0, 1, 1, 5, 3700])
        out += struct.pack("<IIII", t, rng.getrandbits(19) % 1_000_000, len(captured),
                           len(frame)) + captured
    path.write_bytes(bytes(out))


@pytest.mark.parametrize("seed", range(12))
def test_random_captures_compiled_equals_python(seed, tmp_path, monkeypatch):
    path = tmp_path / f"fuzz{seed}.pcap"
    _write(path, seed, 400)
    compiled = extract(str(path))
    monkeypatch.setenv("RSTSLEUTH_NO_CEXT", "1")
    python = extract(str(path))
    assert python.capture.tcp_packets > 50 and python.rsts  # mostly TCP, some resets
    assert compiled.capture.model_dump_json() == python.capture.model_dump_json()
    mine = [f.model_dump_json() for f in [*compiled.connections, *compiled.rsts]]
    theirs = [f.model_dump_json() for f in [*python.connections, *python.rsts]]
    first = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), None)
    # the first differing fact only: a diff of every fact would take minutes to print
    assert first is None, (mine[first], theirs[first])
    assert len(mine) == len(theirs)
