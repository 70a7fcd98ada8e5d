"""Link layers: where the IP header starts inside a captured frame.

``ip_offset(linktype, data)`` returns ``(offset, hint)`` where ``hint`` is 4 or 6 when the
link layer names the IP version (and 0 when only the version nibble can tell), or ``None``
when the frame carries no IP (ARP, LLDP, 802.11 management, encrypted 802.11, ...).
Link-layer direction hints (Linux cooked captures) come from ``sll_direction``.
"""
from __future__ import annotations

NULL = 0            # BSD loopback, address family in host byte order
ETHERNET = 1
PPP = 9
RAW_12 = 12         # DLT_RAW on most systems (LINKTYPE 101 is the portable value)
RAW_14 = 14
PPP_HDLC = 50
RAW = 101
IEEE802_11 = 105
LOOP = 108          # OpenBSD loopback, address family in network byte order
LINUX_SLL = 113
IEEE802_11_RADIOTAP = 127
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

NAMES = {
    NULL: "null/loopback", ETHERNET: "Ethernet", PPP: "PPP", RAW_12: "raw IP", RAW_14: "raw IP",
    PPP_HDLC: "PPP in HDLC framing", RAW: "raw IP", IEEE802_11: "IEEE 802.11",
    LOOP: "OpenBSD loopback", LINUX_SLL: "Linux cooked (SLL)",
    IEEE802_11_RADIOTAP: "802.11 + radiotap", IPV4: "raw IPv4", IPV6: "raw IPv6",
    LINUX_SLL2: "Linux cooked v2 (SLL2)",
}
SUPPORTED = frozenset(NAMES)

# Ethertypes that stack VLAN tags: 802.1Q, 802.1ad (QinQ service tag), the pre-standard
# QinQ values some switches still emit.
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100, 0x9200)
_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_PPPOE_SESSION = 0x8864
_MPLS = (0x8847, 0x8848)
_PPP_IPV4, _PPP_IPV6 = 0x0021, 0x0057


def describe(linktype: int) -> str:
    name = NAMES.get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)


def _ethertype(data: bytes, off: int, etype: int):
    """Follow an ethertype chain (VLAN tags, PPPoE, MPLS) to the IP header."""
    n = len(data)
    while etype in _VLAN_TYPES:
        if off + 4 > n:
            return None
        etype = (data[off + 2] << 8) | data[off + 3]
        off += 4
    if etype == _ETH_IPV4:
        return off, 4
    if etype == _ETH_IPV6:
        return off, 6
    if etype == _PPPOE_SESSION:
        if off + 8 > n:
            return None
        proto = (data[off + 6] << 8) | data[off + 7]
        if proto == _PPP_IPV4:
            return off + 8, 4
        if proto == _PPP_IPV6:
            return off + 8, 6
        return None
    if etype in _MPLS:
        # Pop labels to bottom-of-stack; MPLS does not say what it carries, the nibble does.
        while off + 4 <= n:
            bos = data[off + 2] & 0x01
            off += 4
            if bos:
                return off, 0
        return None
    return None


def _ethernet(data: bytes):
    if len(data) < 14:
        return None
    etype = (data[12] << 8) | data[13]
    if etype <= 1500:
        # 802.3 length field: only LLC/SNAP can carry an ethertype (IP over SNAP).
        if data[14:17] == b"\xaa\xaa\x03" and len(data) >= 22:
            return _ethertype(data, 22, (data[20] << 8) | data[21])
        return None
    return _ethertype(data, 14, etype)


def _null(data: bytes):
    # The address-family value differs by OS (AF_INET6 is 10, 24, 28 or 30) and byte order
    # is the writer's, so the IP version nibble decides.
    return (4, 0) if len(data) > 4 else None


def _sll(data: bytes):
    if len(data) < 16:
        return None
    return _ethertype(data, 16, (data[14] << 8) | data[15])


def _sll2(data: bytes):
    if len(data) < 20:
        return None
    return _ethertype(data, 20, (data[0] << 8) | data[1])


def _ppp(data: bytes):
    off = 0
    if data[:2] == b"\xff\x03":
        off = 2
    if off + 2 > len(data):
        return None
    proto = data[off]
    if proto & 1:                    # protocol-field compression: 1-byte protocol
        off += 1
    else:
        proto = (proto << 8) | data[off + 1]
        off += 2
    if proto == _PPP_IPV4:
        return off, 4
    if proto == _PPP_IPV6:
        return off, 6
    return None


def _ieee80211(data: bytes, off: int = 0):
    n = len(data)
    if off + 24 > n:
        return None
    fc0, fc1 = data[off], data[off + 1]
    if (fc0 >> 2) & 3 != 2:          # not a data frame
        return None
    subtype = fc0 >> 4
    if subtype & 0x4:                # null / CF-only data: no body
        return None
    if fc1 & 0x40:                   # protected: payload is encrypted
        return None
    hlen = 24
    if fc1 & 0x03 == 0x03:           # ToDS and FromDS: a fourth address
        hlen += 6
    if subtype & 0x8:                # QoS data
        hlen += 2
        if fc1 & 0x80:               # +HTC field (order bit on QoS frames)
            hlen += 4
    p = off + hlen
    if p + 8 > n or data[p:p + 3] != b"\xaa\xaa\x03":
        return None
    return _ethertype(data, p + 8, (data[p + 6] << 8) | data[p + 7])


def _radiotap(data: bytes):
    if len(data) < 8:
        return None
    return _ieee80211(data, data[2] | (data[3] << 8))


def _raw(data: bytes):
    return (0, 0) if data else None


def _raw4(data: bytes):
    return (0, 4) if data else None


def _raw6(data: bytes):
    return (0, 6) if data else None


HANDLERS = {
    NULL: _null, LOOP: _null, ETHERNET: _ethernet, PPP: _ppp, PPP_HDLC: _ppp,
    RAW: _raw, RAW_12: _raw, RAW_14: _raw, IPV4: _raw4, IPV6: _raw6,
    LINUX_SLL: _sll, LINUX_SLL2: _sll2, IEEE802_11: _ieee80211,
    IEEE802_11_RADIOTAP: _radiotap,
}


def ip_offset(linktype: int, data: bytes):
    handler = HANDLERS.get(linktype)
    return handler(data) if handler is not None else None


def sll_direction(linktype: int, data: bytes):
    """Linux cooked captures record the packet type: 0 = addressed to this host, 4 = sent by
    it. Broadcast/multicast/other-host say nothing about our side, so they stay None."""
    if linktype == LINUX_SLL and len(data) >= 2:
        ptype = (data[0] << 8) | data[1]
    elif linktype == LINUX_SLL2 and len(data) >= 11:
        ptype = data[10]
    else:
        return None
    return "in" if ptype == 0 else "out" if ptype == 4 else None
