"""What the decoder hands the connection tracker: small slotted objects, built per packet,
so they stay cheap (no dpkt objects on the hot path; dpkt only for evidence packets).

Addresses are packed bytes (4 or 16); ``addr_str`` formats them for people and JSON.
"""
from __future__ import annotations

import socket

# TCP flag bits
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


def addr_str(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


class TcpSegment:
    """One TCP segment (or the first fragment of a fragmented datagram carrying TCP).

    ``payload_len`` comes from the IP length fields, not from the captured bytes, so it is
    right for snaplen-truncated packets; ``payload`` holds only what was captured.
    ``ttl`` is the IPv4 TTL or the IPv6 hop limit; ``ip_id`` is None for IPv6.
    ``direction`` is 'in'/'out' when the capture format records it (pcapng epb_flags, ETL).
    """

    __slots__ = ("frame", "ts", "ipv", "src", "dst", "sport", "dport", "ttl", "ip_id",
                 "seq", "ack", "flags", "reserved", "window", "payload_len", "payload",
                 "fragmented", "truncated", "direction")

    def __init__(self, frame, ts, ipv, src, dst, sport, dport, ttl, ip_id, seq, ack, flags,
                 reserved, window, payload_len, payload, fragmented=False, truncated=False,
                 direction=None):
        self.frame = frame
        self.ts = ts
        self.ipv = ipv
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.ttl = ttl
        self.ip_id = ip_id
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.reserved = reserved
        self.window = window
        self.payload_len = payload_len
        self.payload = payload
        self.fragmented = fragmented
        self.truncated = truncated
        self.direction = direction


class IpFragment:
    """A non-first IPv4/IPv6 fragment: no transport header, so only addresses and the ID."""

    __slots__ = ("frame", "ts", "ipv", "src", "dst", "ip_id", "proto", "offset")

    def __init__(self, frame, ts, ipv, src, dst, ip_id, proto, offset):
        self.frame, self.ts, self.ipv, self.src, self.dst = frame, ts, ipv, src, dst
        self.ip_id, self.proto, self.offset = ip_id, proto, offset


class IcmpTooBig:
    """ICMP fragmentation-needed (v4 type 3 code 4) or ICMPv6 packet-too-big, with the
    TCP 4-tuple of the packet it quotes."""

    __slots__ = ("frame", "ts", "ipv", "src", "dst", "orig_src", "orig_dst", "orig_sport",
                 "orig_dport", "mtu")

    def __init__(self, frame, ts, ipv, src, dst, orig_src, orig_dst, orig_sport, orig_dport, mtu):
        self.frame, self.ts, self.ipv, self.src, self.dst = frame, ts, ipv, src, dst
        self.orig_src, self.orig_dst = orig_src, orig_dst
        self.orig_sport, self.orig_dport, self.mtu = orig_sport, orig_dport, mtu
