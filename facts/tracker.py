"""Connection table: one streaming pass over decoded packets, memory O(connections + RSTs).

The per-packet update is the hot loop of ``rstsleuth facts`` and ``analyze``: it keeps plain
slotted objects and two-element lists indexed by direction (0 = from the client, 1 = from the
server), stores references to the last segments instead of copying their fields, and leaves
everything that only matters for RSTs (sequence positions, baselines, pydantic models) to
:mod:`facts.rst`, which runs once per RST after the pass.

A RST is snapshotted when it arrives (:class:`RstRecord`: the state *before* it); facts that
only later packets reveal (data from the claimed sender after its RST, the real SYN-ACK racing
a forged RST, a challenge ACK) are patched into the record while the connection goes on.
"""
from __future__ import annotations

from typing import Iterable, Optional

from .packet import ACK, FIN, RST, SYN, IcmpTooBig, IpFragment, TcpSegment

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
CHALLENGE_WINDOW_S = 1.0
MAX_FRAGMENTED_DATAGRAMS = 65536
# Handshake progress, in Connection.handshake's words.
HS_NONE, HS_SYN, HS_SYNACK, HS_COMPLETE = 0, 1, 2, 3
HANDSHAKE_NAMES = ("none", "syn", "syn_synack", "complete")
_NO_WSCALE = -1  # SYN seen, no window-scale option in it
_MISSING = object()


def serial_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space, as a signed number (RFC 1982 style)."""
    d = (a - b) & MASK32
    return d - 0x100000000 if d >= HALF32 else d


class Conn:
    """Mutable state of one connection while the pass runs; index 0 = client, 1 = server."""

    __slots__ = (
        "id", "ipv", "addr", "port", "inferred", "start", "last_ts", "prev_gap", "max_gap",
        "max_gap_at", "pkts", "byts", "ttls", "ttl_changes", "lastn", "ldata", "nxt", "hiack",
        "last_rst_ts", "first_rst_nxt", "slow", "hs", "syn", "synack_time", "wscale", "fin",
        "fin_by", "closed", "rsts", "watch", "maxseg", "frag", "icmp", "pmtu", "npackets")

    def __init__(self, cid: str, seg: TcpSegment, from_client: bool, inferred: bool):
        self.id = cid
        self.ipv = seg.ipv
        if from_client:
            self.addr, self.port = (seg.src, seg.dst), (seg.sport, seg.dport)
        else:
            self.addr, self.port = (seg.dst, seg.src), (seg.dport, seg.sport)
        self.inferred = inferred
        self.start = self.last_ts = seg.ts
        self.prev_gap: Optional[float] = None
        self.max_gap = 0.0
        self.max_gap_at: Optional[float] = None
        self.npackets = 0
        self.pkts = [0, 0]
        self.byts = [0, 0]
        self.ttls: list[dict[int, int]] = [{}, {}]
        self.ttl_changes = [0, 0]
        self.lastn: list[Optional[TcpSegment]] = [None, None]  # last non-RST segment
        self.ldata: list[Optional[TcpSegment]] = [None, None]  # last segment with payload
        self.nxt: list[Optional[int]] = [None, None]  # highest seq + len (+SYN/FIN)
        self.hiack: list[Optional[int]] = [None, None]
        self.last_rst_ts: list[Optional[float]] = [None, None]
        self.first_rst_nxt: list[Optional[int]] = [None, None]
        self.slow = True  # handshake still to watch, RSTs pending patches
        self.hs = HS_NONE
        self.syn: Optional[TcpSegment] = None
        self.synack_time: Optional[float] = None
        self.wscale: list[Optional[int]] = [None, None]
        self.fin = [False, False]
        self.fin_by: list[str] = []
        self.closed = False
        self.rsts: list[RstRecord] = []
        self.watch: list[RstRecord] = []
        self.maxseg = 0
        self.frag = False
        self.icmp = False
        self.pmtu: Optional[int] = None


class RstRecord:
    """One RST and the connection state just before it, plus later patches."""

    __slots__ = (
        "id", "seg", "conn", "side", "index", "idle_before", "idle_trigger", "idle_sender",
        "packets_before", "bytes_before", "sender_nxt", "other_nxt", "other_hiack",
        "sender_last", "other_last", "other_wscale", "sender_wscale", "hs", "syn_seen",
        "synack_seen", "trigger", "maxseg_before", "first_rst_nxt", "data_after_s",
        "synack_after", "challenge_ack", "other_last_ack", "inexact")

    def __init__(self, rid: str, seg: TcpSegment, conn: Conn, side: int):
        self.id, self.seg, self.conn, self.side = rid, seg, conn, side
        other = 1 - side
        self.index = len(conn.rsts) + 1
        have_before = conn.npackets > 0
        self.idle_before = seg.ts - conn.last_ts if have_before else None
        self.idle_trigger = conn.prev_gap
        last_from_sender = [t for t in (conn.last_rst_ts[side],
                                        conn.lastn[side].ts if conn.lastn[side] else None)
                            if t is not None]
        self.idle_sender = seg.ts - max(last_from_sender) if last_from_sender else None
        self.packets_before = conn.npackets
        self.bytes_before = (conn.byts[0], conn.byts[1])
        self.sender_nxt, self.other_nxt = conn.nxt[side], conn.nxt[other]
        self.other_hiack = conn.hiack[other]
        self.sender_last, self.other_last = conn.lastn[side], conn.lastn[other]
        self.sender_wscale, self.other_wscale = conn.wscale[side], conn.wscale[other]
        self.hs = conn.hs
        self.syn_seen = conn.syn is not None
        self.synack_seen = conn.synack_time is not None
        self.trigger = conn.ldata[other]
        self.maxseg_before = conn.maxseg
        self.first_rst_nxt = conn.first_rst_nxt[side]
        self.data_after_s: Optional[float] = None
        self.synack_after = False
        self.challenge_ack = False
        self.other_last_ack = self.other_last.ack if self.other_last is not None else None
        # An RST whose seq is not exactly the receiver's next expected byte draws a
        # challenge ACK under RFC 5961 (decided here, with the state before the RST).
        self.inexact = self.sender_nxt is not None and seg.seq != self.sender_nxt


class Tracker:
    """Feed decoded packets in capture order; read ``connections`` and ``rsts`` after."""

    def __init__(self) -> None:
        self.table: dict[tuple, tuple[Conn, int]] = {}
        self.connections: list[Conn] = []
        self.rsts: list[RstRecord] = []
        self.frag_owner: dict[tuple, Conn] = {}
        self.tcp_packets = 0
        self.rst_packets = 0
        self.first_ts: Optional[float] = None
        self.last_ts: Optional[float] = None

    # -- the hot loop -------------------------------------------------------------------
    def feed(self, packets: Iterable) -> None:
        table_get = self.table.get
        new_conn = self._new_conn
        slow_path = self._slow_path
        on_rst = self._rst
        seg_class = TcpSegment
        tcp = 0
        p = None
        for p in packets:
            if p.__class__ is not seg_class:
                self._non_tcp(p)
                continue
            tcp += 1
            flags = p.flags
            ent = table_get((p.src, p.sport, p.dst, p.dport))
            if ent is None or (flags & (SYN | ACK) == SYN and ent[0].closed):
                ent = new_conn(p, flags)
            c, d = ent
            if flags & RST:
                on_rst(c, d, p)
                continue
            ts = p.ts
            gap = ts - c.last_ts
            if gap > c.max_gap:
                c.max_gap = gap
                c.max_gap_at = ts
            if c.npackets:
                c.prev_gap = gap
            c.last_ts = ts
            c.npackets += 1
            c.pkts[d] += 1
            ttl = p.ttl
            h = c.ttls[d]
            h[ttl] = h.get(ttl, 0) + 1
            prev = c.lastn[d]
            if prev is not None and prev.ttl != ttl:
                c.ttl_changes[d] += 1
            c.lastn[d] = p
            plen = p.payload_len
            if plen:
                c.byts[d] += plen
                c.ldata[d] = p
                if plen > c.maxseg:
                    c.maxseg = plen
            end = (p.seq + plen + (flags & FIN) + ((flags & SYN) >> 1)) & MASK32
            n = c.nxt[d]
            if n is None or 0 < ((end - n) & MASK32) < HALF32:
                c.nxt[d] = end
            if flags & ACK:
                a = c.hiack[d]
                ack = p.ack
                if a is None or 0 < ((ack - a) & MASK32) < HALF32:
                    c.hiack[d] = ack
            if flags & (SYN | FIN) or c.slow or p.fragmented:
                slow_path(c, d, p, flags)
        self.tcp_packets += tcp
        if p is not None:
            self.last_ts = p.ts

    # -- rare events --------------------------------------------------------------------
    def _new_conn(self, p: TcpSegment, flags: int) -> tuple[Conn, int]:
        if flags & SYN:
            from_client, inferred = not flags & ACK, False
        else:
            # Mid-flow: the ephemeral (higher) port is the client's; a tie goes to the
            # first sender.
            from_client, inferred = p.sport >= p.dport, True
        c = Conn(f"c{len(self.connections) + 1}", p, from_client, inferred)
        if inferred:
            c.slow = False
        self.connections.append(c)
        if self.first_ts is None:
            self.first_ts = p.ts
        forward = (c.addr[0], c.port[0], c.addr[1], c.port[1])
        backward = (c.addr[1], c.port[1], c.addr[0], c.port[0])
        self.table[forward] = (c, 0)
        self.table[backward] = (c, 1)
        return (c, 0) if from_client else (c, 1)

    def _slow_path(self, c: Conn, d: int, p: TcpSegment, flags: int) -> None:
        if flags & SYN:
            # The decoder may not report options at all (unknown) or report their absence.
            wscale = getattr(p, "wscale", _MISSING)
            if wscale is not _MISSING:
                c.wscale[d] = _NO_WSCALE if wscale is None else wscale
            if flags & ACK:
                if c.synack_time is None:
                    c.synack_time = p.ts
                if c.hs < HS_SYNACK:
                    c.hs = HS_SYNACK
            else:
                if c.syn is None:
                    c.syn = p
                if c.hs < HS_SYN:
                    c.hs = HS_SYN
        elif c.hs == HS_SYNACK and d == 0 and flags & ACK:
            c.hs = HS_COMPLETE
        if flags & FIN and not c.fin[d]:
            c.fin[d] = True
            c.fin_by.append("client" if d == 0 else "server")
            if c.fin[0] and c.fin[1]:
                c.closed = True
        if p.fragmented:
            self._note_fragmented(c, p)
        if c.watch:
            self._patch_rsts(c, d, p, flags)
        c.slow = bool(c.watch) or c.hs in (HS_SYN, HS_SYNACK)

    def _rst(self, c: Conn, d: int, p: TcpSegment) -> None:
        self.rst_packets += 1
        if c.first_rst_nxt[d] is None:
            c.first_rst_nxt[d] = c.nxt[d] if c.nxt[d] is not None else p.seq
        rec = RstRecord(f"r{len(self.rsts) + 1}", p, c, d)
        if c.watch:
            self._patch_rsts(c, d, p, p.flags)
        self.rsts.append(rec)
        c.rsts.append(rec)
        c.watch.append(rec)
        c.slow = True
        c.closed = True
        ts = p.ts
        gap = ts - c.last_ts
        if gap > c.max_gap:
            c.max_gap, c.max_gap_at = gap, ts
        if c.npackets:
            c.prev_gap = gap
        c.last_ts = ts
        c.npackets += 1
        c.pkts[d] += 1
        c.byts[d] += p.payload_len
        c.last_rst_ts[d] = ts
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        if p.fragmented:
            self._note_fragmented(c, p)

    def _patch_rsts(self, c: Conn, d: int, p: TcpSegment, flags: int) -> None:
        """Later packets tell what an earlier RST could not: data or a SYN-ACK from its
        claimed sender (a race with a forger), or a challenge ACK from the other side."""
        still = []
        for rec in c.watch:
            if rec.seg is p:
                still.append(rec)
                continue
            if d == rec.side:
                if flags & RST:
                    pass
                elif p.payload_len and rec.data_after_s is None:
                    rec.data_after_s = p.ts - rec.seg.ts
                elif flags & (SYN | ACK) == SYN | ACK:
                    rec.synack_after = True
            elif (rec.inexact and not rec.challenge_ack
                  and p.ts - rec.seg.ts <= CHALLENGE_WINDOW_S
                  and flags & (ACK | SYN | FIN | RST) == ACK and not p.payload_len
                  and p.ack == rec.other_last_ack):
                rec.challenge_ack = True
            # Keep watching for the rest of the connection until both later signs are seen.
            if rec.data_after_s is None or not rec.synack_after:
                still.append(rec)
        c.watch = still

    def _note_fragmented(self, c: Conn, p: TcpSegment) -> None:
        c.frag = True
        if len(self.frag_owner) < MAX_FRAGMENTED_DATAGRAMS:
            self.frag_owner[(p.src, p.dst, p.ip_id)] = c

    def _non_tcp(self, p) -> None:
        if self.first_ts is None:
            self.first_ts = p.ts
        self.last_ts = p.ts
        if isinstance(p, IpFragment):
            if p.proto != 6:
                return
            # A reordered fragment before its first fragment needs no bookkeeping: the
            # first fragment marks the connection itself when it comes.
            owner = self.frag_owner.get((p.src, p.dst, p.ip_id))
            if owner is not None:
                owner.frag = True
        elif isinstance(p, IcmpTooBig):
            ent = self.table.get((p.orig_src, p.orig_sport, p.orig_dst, p.orig_dport))
            if ent is None:
                return
            c = ent[0]
            c.icmp = True
            if p.mtu and (c.pmtu is None or p.mtu < c.pmtu):
                c.pmtu = p.mtu
