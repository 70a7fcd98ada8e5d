"""Connection table: one streaming pass over decoded packets, memory O(connections + RSTs).

The per-packet update is the hot loop of ``rstsleuth facts`` and ``analyze``: the table maps
each direction's 4-tuple to a slotted :class:`Half` (side 0 = the client's packets, 1 = the
server's), the update stores references to the last segments instead of copying their
fields, and everything that only matters for RSTs (sequence positions, baselines, pydantic
models) is left to :mod:`facts.rst`, which runs once per RST after the pass. Window scaling
is read from a ``wscale`` attribute of SYN segments when the decoder provides one (shift, or
None for no option); without it the scale is unknown.

Segments fed in are kept by reference (the last ones of each direction) and their payload is
trimmed to its first 64 bytes, so memory does not depend on segment sizes.

A RST is snapshotted when it arrives (:class:`RstRecord`: the state *before* it); facts that
only later packets reveal (data from the claimed sender after its RST, the real SYN-ACK racing
a forged RST, a challenge ACK) are patched into the record while the connection goes on.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple, Optional

from .packet import ACK, FIN, RST, SYN, IcmpTooBig, IpFragment, TcpSegment

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
CHALLENGE_WINDOW_S = 1.0
MAX_FRAGMENTED_DATAGRAMS = 65536
KEEP_PAYLOAD = 64  # bytes of a kept segment's payload (RstEvent.trigger_excerpt shows 64)
# Handshake progress, in Connection.handshake's words.
HS_NONE, HS_SYN, HS_SYNACK, HS_COMPLETE = 0, 1, 2, 3
HANDSHAKE_NAMES = ("none", "syn", "syn_synack", "complete")
_NO_WSCALE = -1  # SYN seen, no window-scale option in it
_MISSING = object()


def serial_diff(a: int, b: int) -> int:
    """a - b in 32-bit sequence space, as a signed number (RFC 1982 style)."""
    d = (a - b) & MASK32
    return d - 0x100000000 if d >= HALF32 else d


class SynInfo(NamedTuple):
    """What later facts need of the connection's first SYN."""

    ts: float
    seq: int
    ip_id: Optional[int]


class Half:
    """One direction of a connection: what one side sent. The table maps each direction's
    4-tuple straight to its Half, so the hot loop updates plain slots, no indexing."""

    __slots__ = ("conn", "side", "pkts", "byts", "nrst", "ttl0", "ttl_other", "ttl_changes",
                 "last", "ldata", "nxt", "last_rst_ts", "first_rst_nxt", "wscale", "fin")

    def __init__(self, conn: "Conn", side: int):
        self.conn, self.side = conn, side
        self.pkts = self.byts = self.nrst = self.ttl_changes = 0
        # TTL histogram of non-RST packets, kept as "first TTL + the others" so the common
        # case (one TTL per side) costs one comparison per packet.
        self.ttl0: Optional[int] = None
        self.ttl_other: Optional[dict[int, int]] = None  # created on the first other TTL
        self.last: Optional[TcpSegment] = None   # last non-RST segment
        self.ldata: Optional[TcpSegment] = None  # last segment with payload
        self.nxt: Optional[int] = None           # highest seq + len (+1 for SYN/FIN)
        self.last_rst_ts: Optional[float] = None
        self.first_rst_nxt: Optional[int] = None
        self.wscale: Optional[int] = None
        self.fin = False

    def ttl_hist(self) -> dict[int, int]:
        if self.ttl0 is None:
            return {}
        other = self.ttl_other or {}
        hist = {self.ttl0: self.pkts - self.nrst - sum(other.values())}
        hist.update(other)
        return hist


class Conn:
    """One connection while the pass runs; ``half[0]`` is the client's, ``half[1]`` the
    server's."""

    __slots__ = ("id", "ipv", "addr", "port", "inferred", "start", "last_ts", "prev_ts",
                 "max_gap", "max_gap_at", "gap_before_max", "half", "slow", "hs", "syn",
                 "synack_time", "synack_seq", "fin_by", "closed", "rsts", "watch", "maxseg",
                 "frag", "icmp", "pmtu")

    def __init__(self, cid: str, seg: TcpSegment, from_client: bool, inferred: bool):
        self.id = cid
        self.ipv = seg.ipv
        if from_client:
            self.addr, self.port = (seg.src, seg.dst), (seg.sport, seg.dport)
        else:
            self.addr, self.port = (seg.dst, seg.src), (seg.dport, seg.sport)
        self.inferred = inferred
        self.start = self.last_ts = self.prev_ts = seg.ts
        self.max_gap = 0.0
        self.max_gap_at: Optional[float] = None
        # The record before the current one: the largest gap earlier than the longest silence
        # (is the silence before a reset out of all proportion to the connection's rhythm?).
        self.gap_before_max = 0.0
        self.half = (Half(self, 0), Half(self, 1))
        self.slow = not inferred  # handshake to watch, RSTs pending patches
        self.hs = HS_NONE
        self.syn: Optional[SynInfo] = None
        self.synack_time: Optional[float] = None
        self.synack_seq: Optional[int] = None  # server ISN: matches connections across NAT
        # Empty tuples until something happens: 20 000 connections x 3 empty lists add up.
        self.fin_by: tuple | list[str] = ()
        self.closed = False
        self.rsts: tuple | list[RstRecord] = ()
        self.watch: tuple | list[RstRecord] = ()
        self.maxseg = 0
        self.frag = False
        self.icmp = False
        self.pmtu: Optional[int] = None

    @property
    def packets(self) -> int:
        return self.half[0].pkts + self.half[1].pkts

    def release(self) -> None:
        """Break the reference cycles (halves and RST records point back here) so the
        state is freed at once, even while the cyclic collector is off."""
        for rec in self.rsts:
            rec.conn = None
        self.half = self.rsts = self.watch = ()


class RstRecord:
    """One RST and the connection state just before it, plus later patches."""

    __slots__ = (
        "id", "seg", "conn", "side", "index", "idle_before", "idle_trigger", "idle_sender",
        "packets_before", "bytes_before", "sender_nxt", "other_nxt", "other_hiack",
        "sender_last", "other_last", "other_wscale", "sender_wscale", "hs", "syn_seen",
        "synack_seen", "trigger", "maxseg_before", "first_rst_nxt", "data_after_s",
        "synack_after", "challenge_ack", "other_last_ack", "inexact", "earlier_gap_before",
        "earlier_gap_trigger")

    def __init__(self, rid: str, seg: TcpSegment, conn: Conn, side: int):
        self.id, self.seg, self.conn, self.side = rid, seg, conn, side
        me, peer = conn.half[side], conn.half[1 - side]
        self.index = len(conn.rsts) + 1
        before = conn.packets
        self.packets_before = before
        self.idle_before = seg.ts - conn.last_ts if before else None
        self.idle_trigger = conn.last_ts - conn.prev_ts if before >= 2 else None
        # Largest gap between earlier packets, for each of the two silences above (None
        # with fewer than two such gaps: no rhythm to compare with).
        self.earlier_gap_before = conn.max_gap if before >= 3 else None
        self.earlier_gap_trigger = ((conn.gap_before_max if conn.max_gap_at == conn.last_ts
                                     else conn.max_gap) if before >= 4 else None)
        last_from_sender = [t for t in (me.last_rst_ts, me.last.ts if me.last else None)
                            if t is not None]
        self.idle_sender = seg.ts - max(last_from_sender) if last_from_sender else None
        self.bytes_before = (conn.half[0].byts, conn.half[1].byts)
        self.sender_nxt = me.nxt & MASK32 if me.nxt is not None else None
        self.other_nxt = peer.nxt & MASK32 if peer.nxt is not None else None
        self.sender_last, self.other_last = me.last, peer.last
        # The other side's latest ACK stands for its highest: ACKs only go backwards when
        # packets are reordered, and tracking the maximum would cost every packet.
        self.other_last_ack = (peer.last.ack if peer.last is not None and peer.last.flags & ACK
                               else None)
        self.other_hiack = self.other_last_ack
        self.sender_wscale, self.other_wscale = me.wscale, peer.wscale
        self.hs = conn.hs
        self.syn_seen = conn.syn is not None
        self.synack_seen = conn.synack_time is not None
        self.trigger = peer.ldata
        self.maxseg_before = conn.maxseg
        self.first_rst_nxt = me.first_rst_nxt
        self.data_after_s: Optional[float] = None
        self.synack_after = False
        self.challenge_ack = False
        # An RST whose seq is not exactly the receiver's next expected byte draws a
        # challenge ACK under RFC 5961 (decided here, with the state before the RST).
        self.inexact = self.sender_nxt is not None and seg.seq != self.sender_nxt


class Tracker:
    """Feed decoded packets in capture order; read ``connections`` and ``rsts`` after."""

    def __init__(self) -> None:
        self.table: dict[tuple, Half] = {}
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
        note_ttl = self._note_ttl
        on_rst = self._rst
        non_tcp = self._non_tcp
        seg_class = TcpSegment
        tcp = 0
        p = None
        for p in packets:
            if p.__class__ is not seg_class:
                non_tcp(p)
                continue
            tcp += 1
            flags = p.flags
            h = table_get((p.src, p.sport, p.dst, p.dport))
            if h is None or (flags & 0x12 == SYN and h.conn.closed):
                h = new_conn(p, flags)
            if flags & RST:
                on_rst(h, p)
                continue
            c = h.conn
            ts = p.ts
            last_ts = c.last_ts
            if ts - last_ts > c.max_gap:
                c.gap_before_max = c.max_gap
                c.max_gap = ts - last_ts
                c.max_gap_at = ts
            c.prev_ts = last_ts
            c.last_ts = ts
            h.pkts += 1
            ttl = p.ttl
            prev = h.last
            h.last = p
            if ttl != h.ttl0 or prev.ttl != ttl:
                note_ttl(h, ttl, prev)
            plen = p.payload_len
            if plen:
                h.byts += plen
                h.ldata = p
                if plen > c.maxseg:
                    c.maxseg = plen
                if plen > KEEP_PAYLOAD:
                    # This segment may be kept until the connection's next one: keep only
                    # what a trigger excerpt shows, or bulk flows would hold a full
                    # segment per direction per connection.
                    p.payload = p.payload[:KEEP_PAYLOAD]
            # Sequence numbers are big ints (each operation allocates): compare first, do
            # the serial arithmetic only when the end moved; SYN/FIN's +1 is the slow path's.
            # nxt may run past 2**32 unmasked; readers mask it.
            end = p.seq + plen if plen else p.seq
            n = h.nxt
            if end != n and (n is None or 0 < ((end - n) & MASK32) < HALF32):
                h.nxt = end
            if flags & 3 or c.slow or p.fragmented:
                slow_path(h, p, flags)
        self.tcp_packets += tcp
        if p is not None:
            self.last_ts = p.ts

    # -- rare events --------------------------------------------------------------------
    @staticmethod
    def _note_ttl(h: Half, ttl: int, prev: Optional[TcpSegment]) -> None:
        if h.ttl0 is None:
            h.ttl0 = ttl
        elif ttl != h.ttl0:
            if h.ttl_other is None:
                h.ttl_other = {}
            h.ttl_other[ttl] = h.ttl_other.get(ttl, 0) + 1
        if prev is not None and prev.ttl != ttl:
            h.ttl_changes += 1

    def _new_conn(self, p: TcpSegment, flags: int) -> Half:
        if flags & SYN:
            from_client, inferred = not flags & ACK, False
        else:
            # Mid-flow: the ephemeral (higher) port is the client's; a tie goes to the
            # first sender.
            from_client, inferred = p.sport >= p.dport, True
        c = Conn(f"c{len(self.connections) + 1}", p, from_client, inferred)
        self.connections.append(c)
        if self.first_ts is None:
            self.first_ts = p.ts
        self.table[(c.addr[0], c.port[0], c.addr[1], c.port[1])] = c.half[0]
        self.table[(c.addr[1], c.port[1], c.addr[0], c.port[0])] = c.half[1]
        return c.half[0] if from_client else c.half[1]

    def _slow_path(self, h: Half, p: TcpSegment, flags: int) -> None:
        c, d = h.conn, h.side
        if flags & (SYN | FIN):
            end = p.seq + p.payload_len + (flags & FIN) + ((flags & SYN) >> 1)
            n = h.nxt
            if n is None or 0 < ((end - n) & MASK32) < HALF32:
                h.nxt = end & MASK32
        if flags & SYN:
            # The decoder may not report options at all (unknown) or report their absence.
            wscale = getattr(p, "wscale", _MISSING)
            if wscale is not _MISSING:
                h.wscale = _NO_WSCALE if wscale is None else wscale
            if flags & ACK:
                if c.synack_time is None:
                    c.synack_time = p.ts
                    c.synack_seq = p.seq
                if c.hs < HS_SYNACK:
                    c.hs = HS_SYNACK
            else:
                if c.syn is None:
                    c.syn = SynInfo(p.ts, p.seq, p.ip_id)  # not the segment: keep no payload
                if c.hs < HS_SYN:
                    c.hs = HS_SYN
        elif c.hs == HS_SYNACK and d == 0 and flags & ACK:
            c.hs = HS_COMPLETE
        if flags & FIN and not h.fin:
            h.fin = True
            c.fin_by = [*c.fin_by, "client" if d == 0 else "server"]
            if c.half[0].fin and c.half[1].fin:
                c.closed = True
        if p.fragmented:
            self._note_fragmented(c, p)
        if c.watch:
            self._patch_rsts(c, d, p, flags)
        c.slow = bool(c.watch) or c.hs in (HS_SYN, HS_SYNACK)

    def _rst(self, h: Half, p: TcpSegment) -> None:
        c, d = h.conn, h.side
        self.rst_packets += 1
        if h.first_rst_nxt is None:
            h.first_rst_nxt = h.nxt & MASK32 if h.nxt is not None else p.seq
        rec = RstRecord(f"r{len(self.rsts) + 1}", p, c, d)
        if c.watch:
            self._patch_rsts(c, d, p, p.flags)
        self.rsts.append(rec)
        if not c.rsts:
            c.rsts = []
        c.rsts.append(rec)
        if not c.watch:
            c.watch = []
        c.watch.append(rec)
        c.slow = True
        c.closed = True
        ts = p.ts
        if ts - c.last_ts > c.max_gap:
            c.gap_before_max = c.max_gap
            c.max_gap, c.max_gap_at = ts - c.last_ts, ts
        c.prev_ts, c.last_ts = c.last_ts, ts
        h.pkts += 1
        h.nrst += 1
        h.byts += p.payload_len
        h.last_rst_ts = ts
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
            h = self.table.get((p.orig_src, p.orig_sport, p.orig_dst, p.orig_dport))
            if h is None:
                return
            c = h.conn
            c.icmp = True
            if p.mtu and (c.pmtu is None or p.mtu < c.pmtu):
                c.pmtu = p.mtu
