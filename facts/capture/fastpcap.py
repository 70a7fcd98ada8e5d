"""The hot path: pcap + Ethernet record walk fused with decoding.

Untagged Ethernet/IPv4 (no options, not fragmented)/TCP frames are decoded inline with one
``unpack_from`` over the chunk buffer; every other frame goes to ``facts.decode.decode``.
The inline branch must give exactly what ``decode`` gives (tests compare them).
"""
from __future__ import annotations

from struct import Struct

from facts.decode import decode
from facts.packet import TcpSegment

from .base import open_checked
from .pcap import CHUNK, _rest

# From the ethertype (offset 12) through the TCP window: 38 bytes.
_ETH_IP4_TCP = Struct("!HBxHHHBB2x4s4sHHIIBBH")
_FRAME_ETH_IP4_TCP = Struct("!12xHBxHHHBB2x4s4sHHIIBBH")    # the same from the frame start
_FAST_MIN = 14 + 20 + 20


def iter_ethernet(cap):
    cap.warnings.clear()
    cap.records_read = 0
    unpack_rec = cap.rec_struct.unpack_from
    unpack_pkt = _FRAME_ETH_IP4_TCP.unpack_from
    unit = cap.ts_unit
    limit = cap.max_record
    lt = cap.linktype
    Seg = TcpSegment
    new = TcpSegment.__new__
    frame = 0
    with open_checked(cap.path) as f:
        f.seek(24)
        base = 24
        buf = f.read(CHUNK)
        cap.bytes_read = f.tell()
        pos = 0
        blen = len(buf)
        try:
            while True:
                if pos + 16 > blen:
                    buf = buf[pos:] + f.read(CHUNK)
                    cap.bytes_read = f.tell()
                    base += pos
                    pos = 0
                    blen = len(buf)
                    if blen < 16:
                        if blen:
                            cap.cut_short(blen, 16, frame, True)
                        break
                sec, frac, incl, orig = unpack_rec(buf, pos)
                if incl > limit:
                    cap.corrupt(base + pos, incl, blen - pos + _rest(f), frame)
                    break
                p = pos + 16
                end = p + incl
                if end > blen:
                    buf = buf[pos:] + f.read(max(CHUNK, end - pos))
                    cap.bytes_read = f.tell()
                    base += pos
                    pos, p, end = 0, 16, 16 + incl
                    blen = len(buf)
                    if end > blen:
                        cap.cut_short(blen, 16 + incl, frame, False)
                        break
                frame += 1
                pos = end
                if incl >= 54:                      # _FAST_MIN, as a literal: hot
                    (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst,
                     sport, dport, seq, ack, off_res, flags, win) = unpack_pkt(buf, p)
                    if (etype == 0x0800 and vihl == 0x45 and proto == 6
                            and not frag & 0x3FFF and totlen >= 40 and off_res >= 0x50):
                        # __new__ plus slot stores skips a 19-argument __init__ call:
                        # about 40% of the per-packet cost of this loop.
                        seg = new(Seg)
                        seg.frame = frame
                        seg.ts = sec + frac * unit
                        seg.ipv = 4
                        seg.src = src
                        seg.dst = dst
                        seg.sport = sport
                        seg.dport = dport
                        seg.ttl = ttl
                        seg.ip_id = ip_id
                        seg.seq = seq
                        seg.ack = ack
                        seg.flags = flags
                        seg.reserved = off_res & 0x0F
                        seg.window = win
                        seg.fragmented = False
                        seg.direction = None
                        start = p + 34 + ((off_res >> 4) << 2)
                        plen = totlen - 20 - ((off_res >> 4) << 2)
                        ip_end = p + 14 + totlen
                        if ip_end <= end:
                            seg.truncated = False
                            if plen > 0:
                                seg.payload_len = plen
                                seg.payload = buf[start:ip_end]
                            else:
                                seg.payload_len = 0
                                seg.payload = b""
                        else:
                            seg.truncated = True
                            seg.payload_len = plen if plen > 0 else 0
                            seg.payload = buf[start:end] if end > start else b""
                        yield seg
                        continue
                pkt = decode(lt, buf[p:end], frame, sec + frac * unit, orig)
                if pkt is not None:
                    yield pkt
        finally:
            cap.records_read = frame


def _eth_ipv4_tcp(buf, p, end, frame, ts, direction, _unpack=_ETH_IP4_TCP.unpack_from,
                  _new=TcpSegment.__new__, Seg=TcpSegment):
    """The inline branch above as a function, for walkers that are not the pcap loop.
    Returns None when the frame needs the general decoder."""
    if end - p < _FAST_MIN:
        return None
    (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst,
     sport, dport, seq, ack, off_res, flags, win) = _unpack(buf, p + 12)
    if not (etype == 0x0800 and vihl == 0x45 and proto == 6
            and not frag & 0x3FFF and totlen >= 40 and off_res >= 0x50):
        return None
    seg = _new(Seg)
    seg.frame = frame
    seg.ts = ts
    seg.ipv = 4
    seg.src = src
    seg.dst = dst
    seg.sport = sport
    seg.dport = dport
    seg.ttl = ttl
    seg.ip_id = ip_id
    seg.seq = seq
    seg.ack = ack
    seg.flags = flags
    seg.reserved = off_res & 0x0F
    seg.window = win
    seg.fragmented = False
    seg.direction = direction
    doff = (off_res >> 4) << 2
    start = p + 34 + doff
    plen = totlen - 20 - doff
    ip_end = p + 14 + totlen
    seg.payload_len = plen if plen > 0 else 0
    if ip_end <= end:
        seg.truncated = False
        seg.payload = buf[start:ip_end] if plen > 0 else b""
    else:
        seg.truncated = True
        seg.payload = buf[start:end] if end > start else b""
    return seg


def iter_pcapng(cap):
    """pcapng: the block walker hands frames in place; Ethernet/IPv4/TCP is decoded
    without copying the frame first."""
    fast = _eth_ipv4_tcp
    for frame, ts, lt, buf, start, caplen, origlen, direction in cap.walk():
        end = start + caplen
        if lt == 1:
            seg = fast(buf, start, end, frame, ts, direction)
            if seg is not None:
                yield seg
                continue
        pkt = decode(lt, buf[start:end], frame, ts, origlen, direction)
        if pkt is not None:
            yield pkt
