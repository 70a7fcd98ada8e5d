"""Build TCP conversations as pcap bytes with dpkt, for tests, examples and benchmarks.

A :class:`Conversation` keeps each side's next sequence number, IP ID and window, so a test
says *what* happens ("client sends 20 bytes", "a RST claiming to be the server arrives with
TTL 253") and the numbers come out like a real stack's. ``forged=True`` packets do not touch
the claimed sender's state, the way a middle device's RST would not.

    conv = Conversation(client=("10.0.0.2", 50000), server=("10.0.0.1", 443),
                        client_ttl=64, server_ttl=118)
    conv.handshake()
    conv.send("client", payload=b"GET / HTTP/1.1\\r\\n\\r\\n", dt=0.01)
    conv.send("server", "RA", ttl=253, forged=True, dt=0.05)
    pcap = to_pcap(conv.records)
"""
from __future__ import annotations

import io
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import dpkt

FLAG_BITS = {"F": dpkt.tcp.TH_FIN, "S": dpkt.tcp.TH_SYN, "R": dpkt.tcp.TH_RST,
             "P": dpkt.tcp.TH_PUSH, "A": dpkt.tcp.TH_ACK, "U": dpkt.tcp.TH_URG,
             "E": dpkt.tcp.TH_ECE, "C": dpkt.tcp.TH_CWR}
MASK32 = 0xFFFFFFFF
SRC_MAC = b"\x02\x00\x00\x00\x00\x01"
DST_MAC = b"\x02\x00\x00\x00\x00\x02"


def flag_value(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    value = 0
    for letter in flags.upper():
        value |= FLAG_BITS[letter]
    return value


def _packed(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


def tcp_options(mss: Optional[int] = None, wscale: Optional[int] = None) -> bytes:
    opts = b""
    if mss is not None:
        opts += struct.pack("!BBH", 2, 4, mss)
    if wscale is not None:
        opts += struct.pack("!BBBB", 1, 3, 3, wscale)  # NOP + window scale
    while len(opts) % 4:
        opts += b"\x01"
    return opts


def ip_packet(src: str, dst: str, transport: dpkt.Packet | bytes, *, proto: int, ttl: int,
              ip_id: int = 0, df: bool = True, offset: int = 0, more_fragments: bool = False
              ) -> dpkt.Packet:
    """An IPv4 or IPv6 packet (by address family) around ``transport``."""
    if ":" in src:
        ip6 = dpkt.ip6.IP6(src=_packed(src), dst=_packed(dst), nxt=proto, hlim=ttl,
                           data=transport)
        ip6.plen = len(bytes(transport))
        return ip6
    flags_offset = (0x4000 if df else 0) | (0x2000 if more_fragments else 0) | (offset >> 3)
    ip4 = dpkt.ip.IP(src=_packed(src), dst=_packed(dst), p=proto, ttl=ttl, id=ip_id,
                     _flags_offset=flags_offset, data=transport)
    ip4.len = 20 + len(bytes(transport))
    return ip4


def ethernet(ip: dpkt.Packet) -> bytes:
    ipv6 = isinstance(ip, dpkt.ip6.IP6)
    etype = dpkt.ethernet.ETH_TYPE_IP6 if ipv6 else dpkt.ethernet.ETH_TYPE_IP
    return bytes(dpkt.ethernet.Ethernet(src=SRC_MAC, dst=DST_MAC, type=etype, data=ip))


@dataclass
class Side:
    ip: str
    port: int
    ttl: int
    isn: int
    window: int
    ip_id: int
    nxt: int = field(init=False)

    def __post_init__(self) -> None:
        self.nxt = self.isn


class Conversation:
    """One TCP conversation between a client and a server, as Ethernet frames with times."""

    def __init__(self, client: tuple[str, int] = ("10.0.0.2", 50000),
                 server: tuple[str, int] = ("10.0.0.1", 80), *, client_ttl: int = 64,
                 server_ttl: int = 64, start: float = 1_700_000_000.0, client_isn: int = 1000,
                 server_isn: int = 500_000, client_window: int = 64240,
                 server_window: int = 65535, client_ip_id: int = 0x1000,
                 server_ip_id: int = 0x5000):
        self.sides = {
            "client": Side(client[0], client[1], client_ttl, client_isn, client_window,
                           client_ip_id),
            "server": Side(server[0], server[1], server_ttl, server_isn, server_window,
                           server_ip_id),
        }
        self.time = start
        self.records: list[tuple[float, bytes]] = []

    @property
    def ipv6(self) -> bool:
        return ":" in self.sides["client"].ip

    def other(self, side: str) -> str:
        return "server" if side == "client" else "client"

    def send(self, side: str, flags: str | int = "A", payload: bytes = b"", *, dt: float = 0.0,
             at: Optional[float] = None, ttl: Optional[int] = None,
             ip_id: Optional[int] = None, window: Optional[int] = None,
             seq: Optional[int] = None, ack: Optional[int] = None, forged: bool = False,
             mss: Optional[int] = None, wscale: Optional[int] = None, reserved: int = 0,
             df: bool = True) -> bytes:
        """Append one packet claimed to come from ``side``; returns the frame bytes.

        ``dt`` advances the clock before sending (``at`` sets it). Genuine packets advance
        the side's sequence number and IP ID; ``forged`` ones leave the side's state alone.
        """
        me, peer = self.sides[side], self.sides[self.other(side)]
        self.time = at if at is not None else self.time + dt
        bits = flag_value(flags)
        if seq is None:
            seq = me.nxt
        if ack is None:
            ack = peer.nxt if bits & dpkt.tcp.TH_ACK else 0
        if ip_id is None:
            ip_id = me.ip_id if not forged else 0
        opts = tcp_options(mss, wscale)
        tcp = dpkt.tcp.TCP(sport=me.port, dport=peer.port, seq=seq & MASK32, ack=ack & MASK32,
                           flags=bits, win=me.window if window is None else window,
                           opts=opts, data=payload)
        tcp.off = 5 + len(opts) // 4
        if reserved:
            # The low nibble of the data-offset byte: 3 reserved bits and the old NS/AE bit.
            tcp._off_flags |= (reserved & 0x0F) << 8
        ip = ip_packet(me.ip, peer.ip, tcp, proto=dpkt.ip.IP_PROTO_TCP,
                       ttl=me.ttl if ttl is None else ttl, ip_id=ip_id, df=df)
        frame = ethernet(ip)
        self.records.append((self.time, frame))
        if not forged:
            me.ip_id = (me.ip_id + 1) & 0xFFFF
            end = seq + len(payload) + (1 if bits & dpkt.tcp.TH_SYN else 0) \
                + (1 if bits & dpkt.tcp.TH_FIN else 0)
            if ((end - me.nxt) & MASK32) < 0x80000000:
                me.nxt = end & MASK32
        return frame

    # Shorthands for the usual shapes.
    def handshake(self, *, dt: float = 0.0, rtt: float = 0.01, wscale: Optional[int] = None
                  ) -> None:
        self.send("client", "S", dt=dt, mss=1460, wscale=wscale)
        self.send("server", "SA", dt=rtt / 2, mss=1460, wscale=wscale)
        self.send("client", "A", dt=rtt / 2)

    def data(self, side: str, payload: bytes, *, dt: float = 0.0, **kw) -> bytes:
        return self.send(side, "PA", payload, dt=dt, **kw)

    def close(self, first: str = "client", *, dt: float = 0.0, rtt: float = 0.01) -> None:
        self.send(first, "FA", dt=dt)
        self.send(self.other(first), "FA", dt=rtt / 2)
        self.send(first, "A", dt=rtt / 2)


def fragments(src: str, dst: str, ip_id: int, tcp_bytes: bytes, *, ttl: int = 64,
              mtu: int = 576) -> list[bytes]:
    """An IPv4 datagram carrying ``tcp_bytes`` split into Ethernet frames of at most ``mtu``."""
    chunk = (mtu - 20) // 8 * 8
    frames = []
    for offset in range(0, len(tcp_bytes), chunk):
        part = tcp_bytes[offset:offset + chunk]
        more = offset + chunk < len(tcp_bytes)
        ip = ip_packet(src, dst, part, proto=dpkt.ip.IP_PROTO_TCP, ttl=ttl, ip_id=ip_id,
                       df=False, offset=offset, more_fragments=more)
        frames.append(ethernet(ip))
    return frames


def icmp_too_big(router: str, to: str, quoted_frame: bytes, mtu: int, *, ttl: int = 254
                 ) -> bytes:
    """ICMP fragmentation-needed (or ICMPv6 packet-too-big) quoting an Ethernet frame's IP."""
    quoted = bytes(dpkt.ethernet.Ethernet(quoted_frame).data)
    if ":" in router:
        body = struct.pack("!I", mtu) + quoted[:1232]
        icmp = dpkt.icmp6.ICMP6(type=2, code=0, data=body)
        return ethernet(ip_packet(router, to, icmp, proto=dpkt.ip.IP_PROTO_ICMP6, ttl=ttl))
    body = struct.pack("!HH", 0, mtu) + quoted[:28]
    icmp = dpkt.icmp.ICMP(type=3, code=4, data=body)
    return ethernet(ip_packet(router, to, icmp, proto=dpkt.ip.IP_PROTO_ICMP, ttl=ttl))


def merge(*record_lists: Iterable[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """Interleave several conversations' records by time (stable for equal times)."""
    merged = [rec for records in record_lists for rec in records]
    merged.sort(key=lambda rec: rec[0])
    return merged


def to_pcap(records: Iterable[tuple[float, bytes]], *, linktype: int = dpkt.pcap.DLT_EN10MB,
            snaplen: int = 65535) -> bytes:
    """Classic pcap bytes (microsecond timestamps) of ``(time, frame)`` records. Frames longer
    than ``snaplen`` are cut to it with their original length kept in the record header, as
    ``tcpdump -s`` does."""
    out = io.BytesIO()
    write_pcap(out, records, linktype=linktype, snaplen=snaplen)
    return out.getvalue()


def write_pcap(fileobj, records: Iterable[tuple[float, bytes]], *,
               linktype: int = dpkt.pcap.DLT_EN10MB, snaplen: int = 65535) -> None:
    fileobj.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
    for ts, frame in records:
        sec = int(ts)
        usec = int(round((ts - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        kept = frame[:snaplen]
        fileobj.write(struct.pack("<IIII", sec, usec, len(kept), len(frame)) + kept)
    fileobj.flush()


def bench_capture(path, packets: int, *, connections: int, seed: int) -> int:
    """A small capture from the benchmark's generator (benchmarks/make_capture.py, not a
    package: loaded from its file); the number of packets written."""
    import importlib.util

    maker = Path(__file__).resolve().parents[1] / "benchmarks" / "make_capture.py"
    spec = importlib.util.spec_from_file_location("make_capture", maker)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate(packets, path, connections=connections, seed=seed)


def capture_files() -> list:
    """Every capture the project ships (examples, lab scenarios, tests/data) and, when the
    shared corpus is there, its pcap and pcapng files: what the compiled passes are
    compared on."""
    root = Path(__file__).resolve().parents[1]
    corpus = root.parent / "shared" / "corpus"
    found = sorted(root.glob("examples/**/*.pcap*")) + sorted(root.glob("tests/data/**/*.pcap*"))
    if corpus.is_dir():
        found += sorted(corpus.glob("*.pcap*"))
    return found
