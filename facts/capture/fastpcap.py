"""The hot path: pcap record walk fused with decoding (and the same decoding for pcapng).

For link layers with a fixed-size header and an ethertype field (Ethernet, Linux cooked
v1 and v2), IPv4 without options, not fragmented, carrying a whole TCP header is decoded
inline with one ``unpack_from`` over the chunk buffer; every other frame goes to
``facts.decode.decode``. The inline branch must give exactly what ``decode`` gives (tests
compare them frame by frame).
"""
from __future__ import annotations

from struct import Struct

from facts.decode import decode
from facts.linktypes import sll_direction
from facts.packet import TcpSegment

from .base import open_checked
from .pcap import CHUNK, _rest

# ethertype, then the IPv4 header and the TCP header through the window
_IP4_TCP = "BxHHHBB2x4s4sHHIIBBH"


def _sll_dir(buf, p):
    return sll_direction(113, buf[p:p + 2])


def _sll2_dir(buf, p):
    return sll_direction(276, buf[p:p + 11])


# link type -> (struct from the frame start, IP header offset, direction from the header)
LAYOUTS = {
    1: (Struct("!12xH" + _IP4_TCP), 14, None),
    113: (Struct("!14xH" + _IP4_TCP), 16, _sll_dir),
    276: (Struct("!H18x" + _IP4_TCP), 20, _sll2_dir),
}


def iter_pcap(cap):
    cap.warnings.clear()
    cap.records_read = 0
    unpack_rec = cap.rec_struct.unpack_from
    layout, l3, link_dir = LAYOUTS[cap.linktype]
    unpack_pkt = layout.unpack_from
    fast_min = l3 + 40
    l4 = l3 + 20
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
                if incl >= fast_min:
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
                        seg.direction = None if link_dir is None else link_dir(buf, p)
                        start = p + l4 + ((off_res >> 4) << 2)
                        plen = totlen - 20 - ((off_res >> 4) << 2)
                        ip_end = p + l3 + totlen
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


def fast_segment(buf, p, end, frame, ts, direction, layout, _new=TcpSegment.__new__,
                 Seg=TcpSegment):
    """The inline branch of ``iter_pcap`` as a function, for walkers other than the pcap
    loop. ``layout`` is a LAYOUTS value. None when the frame needs the general decoder."""
    unpack, l3, link_dir = layout
    if end - p < l3 + 40:
        return None
    (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst,
     sport, dport, seq, ack, off_res, flags, win) = unpack.unpack_from(buf, p)
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
    if direction is None and link_dir is not None:
        direction = link_dir(buf, p)
    seg.direction = direction
    doff = (off_res >> 4) << 2
    start = p + l3 + 20 + doff
    plen = totlen - 20 - doff
    ip_end = p + l3 + totlen
    seg.payload_len = plen if plen > 0 else 0
    if ip_end <= end:
        seg.truncated = False
        seg.payload = buf[start:ip_end] if plen > 0 else b""
    else:
        seg.truncated = True
        seg.payload = buf[start:end] if end > start else b""
    return seg


def iter_pcapng(cap):
    """pcapng: the block walker hands frames in place, so the common case is decoded
    without copying the frame first."""
    fast = fast_segment
    layouts = LAYOUTS
    for frame, ts, lt, buf, start, caplen, origlen, direction in cap.walk():
        end = start + caplen
        layout = layouts.get(lt)
        if layout is not None:
            seg = fast(buf, start, end, frame, ts, direction, layout)
            if seg is not None:
                yield seg
                continue
        pkt = decode(lt, buf[start:end], frame, ts, origlen, direction)
        if pkt is not None:
            yield pkt
