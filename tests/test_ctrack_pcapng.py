"""pcapng files walked in C (``_ctrack.track_pcapng``): undamaged files give exactly the
Python pass's facts, counters and progress calls; anything ``PcapngCapture.walk`` would warn
about goes to that walk, without a progress call made twice; clocks and blocks the
PcapngWriter never makes (both byte orders, binary and decimal if_tsresol, if_tsoffset,
obsolete and simple packet blocks, timestamps over the whole 64-bit range).
"""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from facts import ctrack
from facts.capture import open_capture
from facts.capture.pcapng_writer import write_capture
from facts.decode import decode
from builders import bench_capture
from test_ctrack import _python_tracker, _state, needs_c, scenario
from test_ctrack_frames import _DIRS, _pcapng, _progress, agree

pytestmark = needs_c


@pytest.fixture(scope="module")
def records():
    return scenario()


def _track_pcapng(path):
    with open(path, "rb") as f:
        return ctrack._ctrack.track_pcapng(f.fileno(), 1 << 22, decode, None)


def test_undamaged_pcapng_is_walked_in_c(records, tmp_path):
    items = [(ts, 1, fr, _DIRS[i % 3]) for i, (ts, fr) in enumerate(records)]
    path = _pcapng(tmp_path / "c.pcapng", items)
    got = _track_pcapng(path)
    assert got[0] is not None and got[1] == len(records) and got[3] == [1]
    assert _state(got[0].tracker()) == _state(_python_tracker(path)[0])


@pytest.mark.parametrize("damage", ["cut", "block-length", "caplen", "trailer"])
def test_damaged_pcapng_goes_to_the_python_walk(records, tmp_path, damage):
    items = [(ts, 1, fr, None) for ts, fr in records]
    data = bytearray(_pcapng(tmp_path / "ok.pcapng", items).read_bytes())
    last = len(data) - struct.unpack_from("<I", data, len(data) - 4)[0]
    if damage == "cut":
        data = data[:-30]
    elif damage == "block-length":
        data[last + 4:last + 8] = struct.pack("<I", 13)
    elif damage == "caplen":
        data[last + 20:last + 24] = struct.pack("<I", 60000)
    else:
        data[-4:] = struct.pack("<I", 8)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(data))
    assert _track_pcapng(path) == (None, 0)


def test_damage_after_progress_calls(tmp_path, monkeypatch):
    """The C walk has made a progress call when it meets the damage; the Python walk then
    reads the file and the calls are those of the Python pass, none twice."""
    src = tmp_path / "bench.pcap"
    bench_capture(src, 70_000, connections=1500, seed=9)
    ng = tmp_path / "bench.pcapng"
    write_capture(open_capture(src), str(ng))
    data = bytearray(ng.read_bytes())
    data[-4:] = struct.pack("<I", 8)
    ng.write_bytes(bytes(data))
    with open(ng, "rb") as f:
        got = ctrack._ctrack.track_pcapng(f.fileno(), 1 << 22, decode, lambda pos: None)
    assert got == (None, 1)
    out = agree(ng, monkeypatch)
    assert len(out["capture"]["warnings"]) == 1
    assert len(_progress(ng, monkeypatch, True)) == 3


def _block(e, btype, body):
    n = 12 + len(body) + (-len(body) % 4)
    return struct.pack(e + "II", btype, n) + body + bytes(-len(body) % 4) + struct.pack(e + "I", n)


def _opt(e, code, value):
    return struct.pack(e + "HH", code, len(value)) + value + bytes(-len(value) % 4)


def _syn(i):
    """A SYN of its own connection, so every packet's timestamp is kept by the tracker."""
    tcp = struct.pack("!HHIIBBHHH", 1024 + i % 60000, 80, i, 0, 0x50, 2, 1000, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0,
                     bytes([10, 1, i >> 8 & 255, i & 255]), b"\x0a\x00\x00\x01") + tcp
    return b"\x02" * 12 + b"\x08\x00" + ip


def _raw_pcapng(path, seed):
    """Sections in both byte orders, interfaces with odd clocks (decimal and binary
    if_tsresol, if_tsoffset), EPB / obsolete PB / SPB, counted and unknown blocks, timestamps
    across the whole 64-bit range (Python's int / int rounding, ties included)."""
    import random
    rng = random.Random(seed)
    out = []
    i = 0
    for e in rng.sample(["<", ">", "<", ">"], 4):
        out.append(_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)))
        resols = [rng.choice([0, 1, 3, 6, 7, 9, 12, 18, 0x80 | 0, 0x80 | 10, 0x80 | 30,
                              0x80 | 62]) for _ in range(3)]
        for k, res in enumerate(resols):
            opts = _opt(e, 9, bytes([res]))
            if k == 1:
                opts += _opt(e, 14, struct.pack(e + "q", rng.choice([1, -5, 1 << 40])))
            out.append(_block(e, 1, struct.pack(e + "HHI", 1, 0, rng.choice([0, 40, 50, 64, 65535]))
                              + opts + _opt(e, 0, b"")))
        out.append(_block(e, 0xBAD, b"custom"))
        out.append(_block(e, 5, b"statistics"))
        for _ in range(60):
            i += 1
            t = rng.choice([rng.getrandbits(64), rng.getrandbits(61), rng.getrandbits(54),
                            (1 << 53) + 2 * rng.getrandbits(20) + 1,
                            rng.getrandbits(40) << 24 | 1 << 23,
                            1_700_000_000_123_456_789 + rng.getrandbits(30)])
            frame = _syn(i)
            kind = rng.choice(["epb", "epb", "pb", "spb"])
            if kind == "spb":
                out.append(_block(e, 3, struct.pack(e + "I", len(frame)) + frame))
                continue
            head = (struct.pack(e + "I", rng.randrange(3)) if kind == "epb"
                    else struct.pack(e + "HH", rng.randrange(3), 0))
            opts = _opt(e, 2, struct.pack(e + "I", rng.randrange(4))) + _opt(e, 0, b"")
            out.append(_block(e, 6 if kind == "epb" else 2, head + struct.pack(
                e + "IIII", t >> 32, t & 0xFFFFFFFF, len(frame), len(frame)) + frame
                + bytes(-len(frame) % 4) + (opts if rng.random() < 0.7 else b"")))
    Path(path).write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("seed", range(6))
def test_odd_clocks_and_blocks(seed, tmp_path, monkeypatch):
    path = _raw_pcapng(tmp_path / f"odd{seed}.pcapng", seed)
    got = _track_pcapng(path)
    assert got[0] is not None
    out = agree(path, monkeypatch)
    assert out["capture"]["tcp_packets"] >= 150
    assert not out["capture"]["warnings"]
