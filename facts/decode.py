"""Frame bytes → TcpSegment / IpFragment / IcmpTooBig (or None for everything else).

Byte-offset parsing on the captured buffer; no dpkt objects. ``decode`` is the general
path for any link type; ``iter_packets`` picks the fused pcap+Ethernet loop in
``facts.capture.fastpcap`` when it applies (that loop must stay consistent with this module).
"""
from __future__ import annotations

from struct import Struct

from facts.linktypes import ip_offset, sll_direction
from facts.packet import IcmpTooBig, IpFragment, TcpSegment

_IPV4 = Struct("!BBHHHBBH4s4s")     # ver_ihl tos totlen id frag ttl proto csum src dst
_IPV6 = Struct("!IHBB16s16s")       # ver/tc/flow plen next hlim src dst
_TCP = Struct("!HHIIBBH")           # sport dport seq ack off_res flags window
_PORTS = Struct("!HH")
_U16 = Struct("!H")
_U32 = Struct("!I")

# IPv6 extension headers we walk through to reach TCP (RFC 8200 order); ESP (50) and
# no-next-header (59) end the walk.
_HOP, _ROUTING, _FRAGMENT, _AH, _DSTOPTS = 0, 43, 44, 51, 60
_MAX_TUNNEL_DEPTH = 2


def decode(linktype: int, data: bytes, frame: int, ts: float, origlen: int, direction=None):
    found = ip_offset(linktype, data)
    if found is None:
        return None
    off, hint = found
    if direction is None and linktype in (113, 276):
        direction = sll_direction(linktype, data)
    return decode_ip(data, off, hint, frame, ts, direction)


def decode_ip(data: bytes, off: int, hint: int, frame: int, ts: float, direction=None,
              depth: int = 0):
    if off >= len(data):
        return None
    version = data[off] >> 4
    if hint and version != hint:
        return None
    if version == 4:
        return _ipv4(data, off, frame, ts, direction, depth)
    if version == 6:
        return _ipv6(data, off, frame, ts, direction, depth)
    return None


def _ipv4(data, off, frame, ts, direction, depth):
    n = len(data)
    if off + 20 > n:
        return None
    vihl, _tos, totlen, ip_id, frag, ttl, proto, _csum, src, dst = _IPV4.unpack_from(data, off)
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or off + ihl > n:
        return None
    if totlen == 0:
        # TCP segmentation offload: the kernel hands the capture a super-frame with
        # total length 0; the captured bytes are the datagram.
        totlen = n - off
    if totlen < ihl:
        return None
    end = off + totlen
    frag_off = (frag & 0x1FFF) * 8
    if frag_off:
        return IpFragment(frame, ts, 4, src, dst, ip_id, proto, frag_off)
    more = bool(frag & 0x2000)
    l4 = off + ihl
    if proto == 6:
        return _tcp(data, l4, end, frame, ts, 4, src, dst, ttl, ip_id, more, direction)
    if proto == 1:
        return _icmp4(data, l4, end, frame, ts, src, dst)
    if proto in (4, 41) and depth < _MAX_TUNNEL_DEPTH and not more:
        return decode_ip(data[:end], l4, 4 if proto == 4 else 6, frame, ts, direction, depth + 1)
    return None


def _tcp(data, l4, end, frame, ts, ipv, src, dst, ttl, ip_id, fragmented, direction):
    n = len(data)
    # A short snaplen (68 bytes with IPv6) can cut the header after the window: the
    # checksum and urgent pointer are not needed, so 16 bytes make a segment. Those bytes
    # must lie inside the datagram too, or we would read Ethernet padding as a header.
    if l4 + 16 > n or l4 + 16 > end:
        return None
    sport, dport, seq, ack, off_res, flags, window = _TCP.unpack_from(data, l4)
    doff = (off_res >> 4) * 4
    if doff < 20:
        return None
    payload_len = end - l4 - doff
    if payload_len < 0:
        payload_len = 0
    stop = end if end < n else n
    start = l4 + doff
    payload = data[start:stop] if stop > start else b""
    return TcpSegment(frame, ts, ipv, src, dst, sport, dport, ttl, ip_id, seq, ack, flags,
                      off_res & 0x0F, window, payload_len, payload, fragmented, n < end,
                      direction)


def _quoted_ports(data, p, proto):
    if proto == 6 and p + 4 <= len(data):
        return _PORTS.unpack_from(data, p)
    return None, None


def _icmp4(data, l4, end, frame, ts, src, dst):
    n = len(data)
    if l4 + 8 > n or data[l4] != 3 or data[l4 + 1] != 4:
        return None
    mtu = _U16.unpack_from(data, l4 + 6)[0]
    q = l4 + 8
    if q + 20 > n or data[q] >> 4 != 4:
        return None
    qihl = (data[q] & 0x0F) * 4
    qproto = data[q + 9]
    osrc, odst = data[q + 12:q + 16], data[q + 16:q + 20]
    qfrag = _U16.unpack_from(data, q + 6)[0]
    sport, dport = (None, None) if qfrag & 0x1FFF else _quoted_ports(data, q + qihl, qproto)
    return IcmpTooBig(frame, ts, 4, src, dst, osrc, odst, sport, dport, mtu)


def _walk_ipv6_ext(data, p, nh):
    """Skip extension headers. Returns (protocol, offset, fragment) where fragment is
    (frag_offset, more, ident) or None; protocol None when the walk cannot continue."""
    n = len(data)
    frag = None
    while True:
        if nh in (_HOP, _ROUTING, _DSTOPTS):
            if p + 2 > n:
                return None, p, frag
            nh, p = data[p], p + (data[p + 1] + 1) * 8
        elif nh == _FRAGMENT:
            if p + 8 > n:
                return None, p, frag
            offm = _U16.unpack_from(data, p + 2)[0]
            frag = ((offm >> 3) * 8, bool(offm & 1), _U32.unpack_from(data, p + 4)[0])
            nh, p = data[p], p + 8
            if frag[0]:
                return nh, p, frag
        elif nh == _AH:
            if p + 2 > n:
                return None, p, frag
            nh, p = data[p], p + (data[p + 1] + 2) * 4
        else:
            return nh, p, frag


def _ipv6(data, off, frame, ts, direction, depth):
    n = len(data)
    if off + 40 > n:
        return None
    _vtf, plen, nh, hlim, src, dst = _IPV6.unpack_from(data, off)
    # plen 0 = jumbogram or offloaded super-frame: the captured bytes are the datagram.
    end = off + 40 + plen if plen else n
    proto, p, frag = _walk_ipv6_ext(data, off + 40, nh)
    if frag is not None and frag[0]:
        return IpFragment(frame, ts, 6, src, dst, frag[2], proto, frag[0])
    more = frag is not None and frag[1]
    if proto == 6:
        return _tcp(data, p, end, frame, ts, 6, src, dst, hlim, None, more, direction)
    if proto == 58:
        return _icmp6(data, p, frame, ts, src, dst)
    if proto in (4, 41) and depth < _MAX_TUNNEL_DEPTH and not more:
        return decode_ip(data[:end], p, 4 if proto == 4 else 6, frame, ts, direction, depth + 1)
    return None


def _icmp6(data, p, frame, ts, src, dst):
    n = len(data)
    if p + 8 > n or data[p] != 2:
        return None
    mtu = _U32.unpack_from(data, p + 4)[0]
    q = p + 8
    if q + 40 > n or data[q] >> 4 != 6:
        return None
    osrc, odst = data[q + 8:q + 24], data[q + 24:q + 40]
    proto, tp, frag = _walk_ipv6_ext(data, q + 40, data[q + 6])
    if frag is not None and frag[0]:
        sport = dport = None
    else:
        sport, dport = _quoted_ports(data, tp, proto)
    return IcmpTooBig(frame, ts, 6, src, dst, osrc, odst, sport, dport, mtu)


def _general(capture):
    for frame, ts, linktype, data, origlen, direction in capture.records():
        pkt = decode(linktype, data, frame, ts, origlen, direction)
        if pkt is not None:
            yield pkt


def iter_packets(capture):
    """Decoded TCP segments, fragments and ICMP too-big messages of a capture, streaming.

    Captures may offer ``fast_packets()`` (a fused record-walk + decode loop); it returns
    None when it does not apply to this file and the general path is used."""
    fast = getattr(capture, "fast_packets", None)
    if fast is not None:
        it = fast()
        if it is not None:
            return it
    return _general(capture)
