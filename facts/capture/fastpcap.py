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
_FAST_MIN = 14 + 20 + 20


def iter_ethernet(cap):
    cap.warnings.clear()
    cap.records_read = 0
    unpack_rec = cap.rec_struct.unpack_from
    unpack_pkt = _ETH_IP4_TCP.unpack_from
    unit = cap.ts_unit
    limit = cap.max_record
    lt = cap.linktype
    Seg = TcpSegment
    frame = 0
    with open_checked(cap.path) as f:
        f.seek(24)
        base = 24
        buf = f.read(CHUNK)
        pos = 0
        blen = len(buf)
        try:
            while True:
                if pos + 16 > blen:
                    buf = buf[pos:] + f.read(CHUNK)
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
                    base += pos
                    pos, p, end = 0, 16, 16 + incl
                    blen = len(buf)
                    if end > blen:
                        cap.cut_short(blen, 16 + incl, frame, False)
                        break
                frame += 1
                pos = end
                if incl >= _FAST_MIN:
                    (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst,
                     sport, dport, seq, ack, off_res, flags, win) = unpack_pkt(buf, p + 12)
                    if (etype == 0x0800 and vihl == 0x45 and proto == 6
                            and not frag & 0x3FFF and totlen >= 40 and off_res >= 0x50):
                        doff = (off_res >> 4) << 2
                        plen = totlen - 20 - doff
                        ip_end = 14 + totlen
                        if ip_end <= incl:
                            start = p + 34 + doff
                            payload = buf[start:p + ip_end] if plen > 0 else b""
                            yield Seg(frame, sec + frac * unit, 4, src, dst, sport, dport, ttl,
                                      ip_id, seq, ack, flags, off_res & 0x0F, win,
                                      plen if plen > 0 else 0, payload, False, False, None)
                        else:
                            start = p + 34 + doff
                            payload = buf[start:end] if end > start else b""
                            yield Seg(frame, sec + frac * unit, 4, src, dst, sport, dport, ttl,
                                      ip_id, seq, ack, flags, off_res & 0x0F, win,
                                      plen if plen > 0 else 0, payload, False, True, None)
                        continue
                pkt = decode(lt, buf[p:end], frame, sec + frac * unit, orig)
                if pkt is not None:
                    yield pkt
        finally:
            cap.records_read = frame
