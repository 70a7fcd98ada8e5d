"""Decoder: every link type, VLAN stacks, IPv4 options/fragments, IPv6 extension headers,
ICMP too-big, truncation. Frames are built byte by byte in test_capture_fixtures."""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from facts.decode import decode
from facts.packet import IcmpTooBig, IpFragment, TcpSegment
from test_capture_fixtures import (ah, ether, ext_hdr, frag6, ip4, ip6, ipv4, ipv6,
                                   null_hdr, pcap_bytes, sll, sll2, tcp)

SEG4 = ipv4(payload=tcp(sport=40000, dport=443, seq=7, ack=9, flags=0x14, window=512,
                        payload=b"data"), ttl=77, ip_id=0x1555)
SEG6 = ipv6(payload=tcp(sport=40000, dport=443, flags=0x04), hlim=55)


def _d(linktype, frame, origlen=None, direction=None):
    return decode(linktype, frame, 1, 2.5, len(frame) if origlen is None else origlen,
                  direction)


def test_ipv4_tcp_fields():
    p = _d(1, ether(SEG4))
    assert isinstance(p, TcpSegment)
    assert (p.frame, p.ts, p.ipv, p.src, p.dst) == (1, 2.5, 4, ip4("10.0.0.1"), ip4("10.0.0.2"))
    assert (p.sport, p.dport, p.seq, p.ack, p.flags, p.window) == (40000, 443, 7, 9, 0x14, 512)
    assert (p.ttl, p.ip_id, p.payload_len, p.payload) == (77, 0x1555, 4, b"data")
    assert not p.fragmented and not p.truncated and p.reserved == 0


@pytest.mark.parametrize("vlans", [
    [(0x8100, 50)], [(0x88A8, 10), (0x8100, 20)], [(0x9100, 1), (0x9100, 2), (0x8100, 3)],
])
def test_vlan_stacks(vlans):
    assert _d(1, ether(SEG4, vlans=vlans)).ttl == 77
    assert _d(1, ether(SEG6, etype=0x86DD, vlans=vlans)).ttl == 55


def test_linux_cooked_v1_v2_and_direction():
    assert _d(113, sll(SEG4)).ttl == 77
    assert _d(276, sll2(SEG6, proto=0x86DD)).ipv == 6
    assert _d(113, sll(SEG4, pkttype=4)).direction == "out"
    assert _d(276, sll2(SEG4, pkttype=0)).direction == "in"
    assert _d(113, sll(SEG4, pkttype=3)).direction is None      # another host's traffic
    assert _d(113, sll(SEG4, pkttype=4), direction="in").direction == "in"


@pytest.mark.parametrize("linktype", [101, 12, 14])
def test_raw_ip_by_version_nibble(linktype):
    assert _d(linktype, SEG4).ipv == 4
    assert _d(linktype, SEG6).ipv == 6


def test_raw_ipv4_and_ipv6_link_types():
    assert _d(228, SEG4).ttl == 77 and _d(229, SEG6).ttl == 55
    assert _d(228, SEG6) is None and _d(229, SEG4) is None


@pytest.mark.parametrize("af", [2, 10, 24, 28, 30, 12345])
@pytest.mark.parametrize("linktype,order", [(0, "<"), (0, ">"), (108, ">")])
def test_null_loopback_trusts_the_version_nibble(af, linktype, order):
    assert _d(linktype, null_hdr(SEG4, af, order)).ipv == 4
    assert _d(linktype, null_hdr(SEG6, af, order)).ipv == 6


def test_ieee80211_qos_data_and_radiotap():
    fc = bytes([0x88, 0x01])                        # QoS data, ToDS
    hdr = fc + b"\x00\x00" + b"\x11" * 18 + b"\x00\x00" + b"\x00\x00"     # + QoS control
    frame = hdr + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + SEG4
    assert _d(105, frame).ttl == 77
    radiotap = b"\x00\x00\x08\x00\x00\x00\x00\x00"
    assert _d(127, radiotap + frame).ttl == 77
    assert _d(105, bytes([0x88, 0x41]) + frame[2:]) is None             # protected


def test_pppoe_and_mpls():
    pppoe = struct.pack("!BBHHH", 0x11, 0, 1, len(SEG4) + 2, 0x0021) + SEG4
    assert _d(1, ether(pppoe, etype=0x8864)).ttl == 77
    mpls = struct.pack("!I", (100 << 12) | 0x40) + struct.pack("!I", (200 << 12) | 0x140) + SEG6
    assert _d(1, ether(mpls, etype=0x8847)).ttl == 55


def test_not_tcp_is_none():
    assert _d(1, ether(b"\x00" * 28, etype=0x0806)) is None                     # ARP
    assert _d(1, ether(ipv4(proto=17, payload=b"\x00" * 8))) is None            # UDP
    assert _d(1, ether(ipv6(nh=17, payload=b"\x00" * 8), etype=0x86DD)) is None
    assert _d(1, ether(SEG6)) is None                  # ethertype says IPv4, nibble says 6
    assert _d(147, SEG4) is None                       # link type we do not decode
    assert _d(1, b"\x00" * 10) is None


def test_ipv4_options_are_skipped():
    opts = b"\x07\x07\x04" + b"\x00" * 4 + b"\x01"     # record route + NOP = 8 bytes
    p = _d(1, ether(ipv4(payload=tcp(dport=22, payload=b"xy"), options=opts, ttl=9)))
    assert (p.dport, p.ttl, p.payload, p.payload_len) == (22, 9, b"xy", 2)


def test_reserved_bits_including_ns():
    p = _d(1, ether(ipv4(payload=tcp(flags=0x04, reserved=0x0B))))
    assert p.reserved == 0x0B and p.flags == 0x04


def test_snaplen_truncated_payload_len_from_ip():
    frame = ether(ipv4(payload=tcp(flags=0x14, payload=b"z" * 58)))
    p = _d(1, frame[:54 + 10], origlen=len(frame))
    assert p.truncated and p.payload_len == 58 and p.payload == b"z" * 10


def test_tcp_header_cut_after_the_window_still_decodes():
    frame = ether(ipv6(payload=tcp(flags=0x14, window=77, payload=b"x" * 30)), etype=0x86DD)
    p = _d(1, frame[:14 + 40 + 16], origlen=len(frame))
    assert (p.flags, p.window, p.payload_len, p.payload, p.truncated) == (0x14, 77, 30, b"", True)
    assert _d(1, frame[:14 + 40 + 15]) is None


def test_ppp_link_types():
    assert _d(9, b"\xff\x03\x00\x21" + SEG4).ttl == 77
    assert _d(50, b"\xff\x03\x00\x57" + SEG6).ttl == 55
    assert _d(9, b"\x21" + SEG4).ttl == 77                     # compressed protocol field
    assert _d(9, b"\xff\x03\xc0\x21" + SEG4) is None            # LCP


def test_ipv4_fragments():
    first = ether(ipv4(payload=tcp(flags=0x18, payload=b"a" * 16), frag=0x2000, ip_id=99))
    p = _d(1, first)
    assert isinstance(p, TcpSegment) and p.fragmented and p.ip_id == 99
    later = _d(1, ether(ipv4(payload=b"b" * 16, frag=0x2000 | 5, ip_id=99)))
    assert isinstance(later, IpFragment)
    assert (later.ipv, later.ip_id, later.proto, later.offset) == (4, 99, 6, 40)
    last = _d(1, ether(ipv4(payload=b"b" * 16, frag=9, ip_id=99)))
    assert isinstance(last, IpFragment) and last.offset == 72


def test_ipv6_extension_headers_to_tcp():
    t = tcp(dport=8443, flags=0x04)
    chain = ext_hdr(43, 1) + ext_hdr(51) + ah(60) + ext_hdr(6, 2)   # hop, rt, AH, dst
    p = _d(1, ether(ipv6(nh=0, ext=chain, payload=t, hlim=3), etype=0x86DD))
    assert isinstance(p, TcpSegment) and (p.dport, p.ttl, p.ip_id) == (8443, 3, None)
    assert not p.fragmented and p.payload_len == 0


def test_ipv6_fragments():
    t = tcp(flags=0x18, payload=b"c" * 24)
    first = _d(1, ether(ipv6(nh=44, ext=frag6(6, 0, True, 0xABCDEF), payload=t), etype=0x86DD))
    assert isinstance(first, TcpSegment) and first.fragmented
    later = _d(1, ether(ipv6(nh=0, ext=ext_hdr(44) + frag6(6, 48, False, 0xABCDEF),
                             payload=b"d" * 8), etype=0x86DD))
    assert isinstance(later, IpFragment)
    assert (later.ipv, later.ip_id, later.proto, later.offset) == (6, 0xABCDEF, 6, 48)
    atomic = _d(1, ether(ipv6(nh=44, ext=frag6(6, 0, False, 1), payload=t), etype=0x86DD))
    assert isinstance(atomic, TcpSegment) and not atomic.fragmented


def test_ipv6_walk_stops_at_esp_and_no_next_header():
    assert _d(229, ipv6(nh=50, payload=b"\x00" * 40)) is None
    assert _d(229, ipv6(nh=60, ext=ext_hdr(59), payload=b"")) is None


def test_icmp_fragmentation_needed():
    quoted = ipv4("10.0.0.2", "192.0.2.9", payload=tcp(sport=5555, dport=443)[:8])
    icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
    p = _d(1, ether(ipv4("198.51.100.1", "10.0.0.2", proto=1, payload=icmp)))
    assert isinstance(p, IcmpTooBig)
    assert (p.ipv, p.src, p.mtu) == (4, ip4("198.51.100.1"), 1400)
    assert (p.orig_src, p.orig_dst, p.orig_sport, p.orig_dport) == (
        ip4("10.0.0.2"), ip4("192.0.2.9"), 5555, 443)
    unreachable = struct.pack("!BBHHH", 3, 3, 0, 0, 0) + quoted
    assert _d(1, ether(ipv4(proto=1, payload=unreachable))) is None


def test_icmpv6_packet_too_big():
    quoted = ipv6("2001:db8::2", "2001:db8::9", payload=tcp(sport=6000, dport=80))[:48]
    icmp = struct.pack("!BBHI", 2, 0, 0, 1280) + quoted
    p = _d(229, ipv6("2001:db8::fe", "2001:db8::2", nh=58, payload=icmp))
    assert isinstance(p, IcmpTooBig)
    assert (p.ipv, p.mtu, p.orig_sport, p.orig_dport) == (6, 1280, 6000, 80)
    assert p.orig_dst == ip6("2001:db8::9") and p.src == ip6("2001:db8::fe")
    echo = struct.pack("!BBHI", 128, 0, 0, 0)
    assert _d(229, ipv6(nh=58, payload=echo)) is None


def test_tunnelled_tcp_is_decoded_inside():
    inner = ipv4("172.16.0.1", "172.16.0.2", payload=tcp(flags=0x04), ttl=12)
    p = _d(1, ether(ipv4(proto=4, payload=inner, ttl=200)))
    assert p.ttl == 12 and p.src == ip4("172.16.0.1")


@pytest.mark.parametrize("cut", range(0, 54))
def test_any_cut_of_a_frame_never_raises(cut):
    frame = ether(ipv4(payload=tcp(payload=b"x")))
    _d(1, frame[:cut])
    _d(1, ether(ipv6(nh=0, ext=ext_hdr(44) + frag6(6, 0, True, 3), payload=tcp()),
                etype=0x86DD)[:cut + 20])


def _tshark_cases():
    mpls = struct.pack("!I", (100 << 12) | 0x140) + SEG4
    hop_rt_ah_dst = ext_hdr(43, 1) + ext_hdr(51) + ah(60) + ext_hdr(6, 2)
    qos = bytes([0x88, 0x01]) + b"\x00\x00" + b"\x11" * 18 + b"\x00" * 4
    return [
        (1, ether(SEG4, vlans=[(0x88A8, 10), (0x8100, 20)])),
        (1, ether(SEG6, etype=0x86DD, vlans=[(0x8100, 5)])),
        (1, ether(mpls, etype=0x8847)),
        (1, ether(ipv4(payload=tcp(), options=b"\x01" * 4))),
        (1, ether(ipv4(payload=tcp(flags=0x18, payload=b"a" * 16), frag=0x2000))),
        (1, ether(ipv4(payload=b"b" * 16, frag=5))),
        (1, ether(ipv6(nh=0, ext=hop_rt_ah_dst, payload=tcp(flags=4)), etype=0x86DD)),
        (1, ether(ipv6(nh=44, ext=frag6(6, 0, True, 7), payload=tcp()), etype=0x86DD)),
        (1, ether(ipv4(proto=17, payload=b"\x00" * 8))),
        (113, sll(SEG4)), (276, sll2(SEG6, proto=0x86DD)),
        (101, SEG6), (228, SEG4), (229, SEG6),
        (0, null_hdr(SEG6, 30)), (0, null_hdr(SEG4, 2, ">")), (108, null_hdr(SEG6, 24, ">")),
        (105, qos + b"\xaa\xaa\x03\x00\x00\x00\x08\x00" + SEG4),
        (9, b"\xff\x03\x00\x21" + SEG4),
    ]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_decoder_agrees_with_tshark_on_built_frames(tmp_path):
    """Each frame above, one pcap per link type: TCP exactly where tshark (with reassembly
    off, so first fragments show their TCP header) sees TCP, with the same TTL and flags."""
    by_lt: dict[int, list[bytes]] = {}
    for lt, frame in _tshark_cases():
        by_lt.setdefault(lt, []).append(frame)
    for lt, frames in by_lt.items():
        path = tmp_path / f"lt{lt}.pcap"
        path.write_bytes(pcap_bytes([(1.0, f) for f in frames], linktype=lt))
        out = subprocess.run(
            ["tshark", "-r", str(path), "-o", "ip.defragment:FALSE",
             "-o", "ipv6.defragment:FALSE", "-T", "fields", "-e", "frame.protocols",
             "-e", "tcp.flags", "-e", "ip.ttl", "-e", "ipv6.hlim"],
            capture_output=True, text=True, timeout=60).stdout.splitlines()
        assert len(out) == len(frames), lt
        for frame, line in zip(frames, out):
            protos, flags, ttl, hlim = (line.split("\t") + ["", "", ""])[:4]
            p = _d(lt, frame)
            if "tcp" in protos.split(":"):
                assert isinstance(p, TcpSegment), (lt, protos)
                assert p.flags | p.reserved << 8 == int(flags, 16)
                assert p.ttl == int((ttl or hlim).split(",")[-1])
            else:
                assert not isinstance(p, TcpSegment), (lt, protos)
