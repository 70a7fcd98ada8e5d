"""Byte-exact builders for reader/decoder tests (struct only, so every field is under the
test's control, including the wrong ones), and a check that tshark reads what they build
the way we mean it.

Other test modules import the builders: ``from test_capture_fixtures import ...``.
"""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess

import pytest

# ---------------------------------------------------------------- network layers


def ip4(a: str) -> bytes:
    return socket.inet_aton(a)


def ip6(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, a)


def tcp(sport=1234, dport=80, seq=1, ack=0, flags=0x02, window=8192, payload=b"",
        options=b"", reserved=0):
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, (doff << 4) | reserved, flags,
                       window, 0, 0) + options + payload


def ipv4(src="10.0.0.1", dst="10.0.0.2", proto=6, payload=b"", ttl=64, ip_id=1,
         options=b"", frag=0, totlen=None):
    ihl = (20 + len(options)) // 4
    total = 20 + len(options) + len(payload) if totlen is None else totlen
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ip_id, frag, ttl, proto, 0,
                       ip4(src), ip4(dst)) + options + payload


def ipv6(src="2001:db8::1", dst="2001:db8::2", nh=6, payload=b"", hlim=64, ext=b""):
    body = ext + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), nh, hlim, ip6(src),
                       ip6(dst)) + body


def ext_hdr(nh, length_units=0):
    """Hop-by-hop / routing / destination options header of (length_units+1)*8 bytes."""
    return bytes([nh, length_units]) + b"\x01" + bytes(5 + 8 * length_units)


def frag6(nh, offset, more, ident):
    return struct.pack("!BBHI", nh, 0, (offset // 8) << 3 | int(more), ident)


def ah(nh):
    return bytes([nh, 4]) + bytes(22)         # (4+2)*4 = 24 bytes


def ether(payload, etype=0x0800, vlans=()):
    """``vlans``: sequence of (tpid, vid) outermost first."""
    hdr = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    for tpid, vid in vlans:
        hdr += struct.pack("!H", tpid)
        hdr += struct.pack("!H", vid)
    return hdr + struct.pack("!H", etype) + payload


def sll(payload, proto=0x0800, pkttype=0):
    return struct.pack("!HHH8sH", pkttype, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00",
                       proto) + payload


def sll2(payload, proto=0x0800, pkttype=0):
    return struct.pack("!HHIHBB8s", proto, 0, 1, 1, pkttype, 6,
                       b"\x02\x00\x00\x00\x00\x01\x00\x00") + payload


def null_hdr(payload, af, order="<"):
    return struct.pack(order + "I", af) + payload


# ---------------------------------------------------------------- pcap


def pcap_bytes(records, linktype=1, order="<", nsec=False, snaplen=65535, raw_link=None):
    """records: iterable of (ts, frame) or (ts, frame, origlen)."""
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen,
                       linktype if raw_link is None else raw_link)]
    for rec in records:
        ts, data = rec[0], rec[1]
        orig = rec[2] if len(rec) > 2 else len(data)
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nsec else 1e6))
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


# ---------------------------------------------------------------- pcapng


def _pad(b):
    return b + bytes(-len(b) % 4)


def options(e, opts):
    if not opts:
        return b""
    out = b"".join(struct.pack(e + "HH", code, len(v)) + _pad(v) for code, v in opts)
    return out + struct.pack(e + "HH", 0, 0)


def block(e, btype, body):
    body = _pad(body)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e="<"):
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(e="<", linktype=1, snaplen=0, tsresol=None, tsoffset=None):
    opts = []
    if tsresol is not None:
        opts.append((9, bytes([tsresol])))
    if tsoffset is not None:
        opts.append((14, struct.pack(e + "q", tsoffset)))
    return block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + options(e, opts))


def epb(e, ifid, ticks, data, origlen=None, flags=None):
    opts = [(2, struct.pack(e + "I", flags))] if flags is not None else []
    body = struct.pack(e + "IIIII", ifid, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data) if origlen is None else origlen)
    return block(e, 6, body + _pad(data) + options(e, opts))


def spb(e, data, origlen=None):
    return block(e, 3, struct.pack(e + "I", len(data) if origlen is None else origlen) + data)


def old_pb(e, ifid, ticks, data, flags=None):
    opts = [(2, struct.pack(e + "I", flags))] if flags is not None else []
    body = struct.pack(e + "HHIIII", ifid, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                       len(data))
    return block(e, 2, body + _pad(data) + options(e, opts))


def custom(e="<"):
    return block(e, 0xBAD, struct.pack(e + "I", 32473) + b"custom data!")


def syn(src="10.0.0.1", dst="10.0.0.2", ttl=64, ip_id=7, flags=0x02, payload=b""):
    return ether(ipv4(src, dst, 6, tcp(flags=flags, payload=payload), ttl=ttl, ip_id=ip_id))


def mixed_endian_pcapng():
    """Two sections: little-endian with Ethernet at 10^-6 s, then big-endian with raw IP
    at 2^-20 s plus an offset, a Simple Packet Block and an obsolete Packet Block."""
    return b"".join([
        shb("<"), idb("<", 1), custom("<"),
        epb("<", 0, 1_600_000_000_500_000, syn(ttl=61), flags=1),
        shb(">"), idb(">", 101, snaplen=200, tsresol=0x80 | 20, tsoffset=1000),
        epb(">", 0, 3 << 20, ipv4(payload=tcp(flags=0x04), ttl=250), flags=2),
        spb(">", ipv4(payload=tcp(flags=0x14), ttl=251)),
        old_pb(">", 0, 5 << 20, ipv4(payload=tcp(flags=0x10), ttl=252), flags=1),
    ])


# ---------------------------------------------------------------- fixtures checked by tshark

def _tshark_fields(path, *fields):
    cmd = ["tshark", "-r", str(path), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_mixed_endian_pcapng_as_built(tmp_path):
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(mixed_endian_pcapng())
    rows = _tshark_fields(path, "frame.number", "ip.ttl", "frame.time_epoch")
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]       # custom block is frame 1
    assert [r[1] for r in rows] == ["", "61", "250", "251", "252"]
    assert float(rows[1][2]) == pytest.approx(1_600_000_000.5)
    assert float(rows[2][2]) == pytest.approx(1003.0)
    assert float(rows[4][2]) == pytest.approx(1005.0)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_nsec_big_endian_pcap_as_built(tmp_path):
    path = tmp_path / "nsec.pcap"
    path.write_bytes(pcap_bytes([(1.000000001, syn(ttl=99))], order=">", nsec=True))
    rows = _tshark_fields(path, "ip.ttl", "frame.time_epoch")
    assert rows == [["99", "1.000000001"]]
