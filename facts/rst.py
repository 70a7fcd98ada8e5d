"""Turn the tracker's state into typed facts: one Connection per connection, one RstEvent per
RST packet. Runs once after the pass, so its cost is O(connections + RSTs), never O(packets).

Host-wide TTL baselines need the whole capture; they are summed here from the per-connection
TTL histograms, only for the addresses that some RST claims to come from.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

from .fastmodel import construct
from .models import Connection, Endpoint, RstEvent, initial_ttl
from .packet import ACK, addr_str
from .tracker import (HANDSHAKE_NAMES, HS_COMPLETE, HS_SYNACK, MASK32, _NO_WSCALE, Conn,
                      RstRecord, Tracker, serial_diff)

EXCERPT_BYTES = 64
IP_ID_SEQUENCE_MAX = 1024
GAP_FLOOR_S = 0.001  # gaps below a millisecond are all "back to back" for idle ratios
RST_SEQ_CHANGE_MAX_S = 2.0
MAX_WSCALE = 14


_EXCERPT_CHARS = tuple(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in range(256))


def excerpt(payload: bytes) -> str:
    """First 64 bytes: printable ASCII as is, anything else as \\xNN."""
    return "".join(map(_EXCERPT_CHARS.__getitem__, bytes(payload[:EXCERPT_BYTES])))


class ConnRsts:
    """Facts about all RSTs of one connection, computed once (not once per RST: a RST storm
    in one connection must stay linear)."""

    def __init__(self, c: Conn):
        seqs: tuple[set, set] = (set(), set())
        acks: tuple[set, set] = (set(), set())
        self.previous: dict[str, Optional[RstRecord]] = {}
        last: list[Optional[RstRecord]] = [None, None]
        for r in c.rsts:
            seqs[r.side].add(r.seg.seq)
            acks[r.side].add(r.seg.ack)
            self.previous[r.id] = last[r.side]
            last[r.side] = r
        self.seq_differ = tuple(len(s) > 1 for s in seqs)
        self.ack_differ = tuple(len(a) > 1 for a in acks)
        self.both_directions = last[0] is not None and last[1] is not None
        self.hist = (c.half[0].ttl_hist(), c.half[1].ttl_hist())


def most_common(hist: dict[int, int]) -> Optional[int]:
    """The most frequent value; a tie goes to the value seen first (dicts keep order)."""
    if not hist:
        return None
    return max(hist, key=hist.__getitem__)


def _close_kind(c: Conn) -> str:
    fin, rst = bool(c.fin_by), bool(c.rsts)
    return "fin_rst" if fin and rst else "fin" if fin else "rst" if rst else "open"


def connection_model(c: Conn, capture: str, names: Optional[dict[bytes, str]] = None
                     ) -> Connection:
    """``names`` caches address strings across connections (servers repeat)."""
    client, server = c.half
    if names is None:
        names = {}
    cname = names.get(c.addr[0]) or names.setdefault(c.addr[0], addr_str(c.addr[0]))
    sname = names.get(c.addr[1]) or names.setdefault(c.addr[1], addr_str(c.addr[1]))
    # construct, not validation: every value here is already typed (tests validate the built
    # facts); validating 20 000 connections and their RSTs took a fifth of a second
    return construct(
        Connection, kind="connection", id=c.id, capture=capture, ip_version=c.ipv,
        client=construct(Endpoint, ip=cname, port=c.port[0]),
        server=construct(Endpoint, ip=sname, port=c.port[1]),
        roles_inferred=c.inferred, start=c.start, end=c.last_ts,
        packets_c2s=client.pkts, packets_s2c=server.pkts,
        bytes_c2s=client.byts, bytes_s2c=server.byts,
        handshake=HANDSHAKE_NAMES[c.hs],
        syn_time=c.syn.ts if c.syn is not None else None, synack_time=c.synack_time,
        client_isn=c.syn.seq if c.syn is not None else None, server_isn=c.synack_seq,
        close=_close_kind(c), fin_by=list(c.fin_by), rst_count=len(c.rsts),
        largest_idle_gap_s=c.max_gap, largest_idle_gap_at=c.max_gap_at,
        client_ttls=client.ttl_hist(), server_ttls=server.ttl_hist(),
        client_ttl_changes=client.ttl_changes, server_ttl_changes=server.ttl_changes,
        largest_segment=c.maxseg, fragments_seen=c.frag, icmp_too_big_seen=c.icmp,
        path_mtu=c.pmtu)


def host_baselines(connections: Iterable[Conn], addrs: set[bytes]) -> dict[bytes, int]:
    """Most common non-RST TTL per address, over every connection it takes part in."""
    totals: dict[bytes, dict[int, int]] = {a: {} for a in addrs}
    for c in connections:
        for side in (0, 1):
            hist = totals.get(c.addr[side])
            if hist is None:
                continue
            for ttl, n in c.half[side].ttl_hist().items():
                hist[ttl] = hist.get(ttl, 0) + n
    return {a: v for a, h in totals.items() if (v := most_common(h)) is not None}


def _seq_position(rec: RstRecord) -> tuple[str, Optional[int]]:
    """Where the RST's seq falls against the receiver's view (RFC 793/5961)."""
    if rec.sender_nxt is None:
        return "unknown", None
    offset = serial_diff(rec.seg.seq, rec.sender_nxt)
    if offset == 0:
        return "exact", 0
    if offset < 0:
        return "outside", offset
    peer = rec.other_last
    if peer is None:
        return "unknown", offset
    window = peer.window
    if rec.other_wscale is None or rec.sender_wscale is None:
        # Scale unknown: small offsets are in any window, huge ones in none.
        if offset < window:
            return "in_window", offset
        return ("unknown" if offset < window << MAX_WSCALE else "outside"), offset
    if not (peer.flags & 0x02) and _NO_WSCALE not in (rec.other_wscale, rec.sender_wscale):
        window <<= rec.other_wscale  # scaling applies only when both SYNs offered it
    return ("in_window" if offset < window else "outside"), offset


def _ack_position(rec: RstRecord) -> tuple[str, Optional[int]]:
    if not rec.seg.flags & ACK:
        return "none", None
    if rec.other_nxt is None:
        return "unknown", None
    offset = serial_diff(rec.seg.ack, rec.other_nxt)
    return ("exact" if offset == 0 else "behind" if offset < 0 else "ahead"), offset


def _seq_change(rec: RstRecord, prev: Optional[RstRecord]) -> bool:
    """Weaver/Sommer/Paxson RST_SEQ_CHANGE against the previous RST from the same sender."""
    if prev is None:
        return False
    seq2 = rec.seg.seq
    if serial_diff(seq2, prev.seg.seq) <= 2 or rec.seg.ts - prev.seg.ts >= RST_SEQ_CHANGE_MAX_S:
        return False
    if rec.first_rst_nxt is not None and serial_diff(seq2, rec.first_rst_nxt) <= 0:
        return False
    if rec.other_hiack is not None and serial_diff(seq2, rec.other_hiack) <= 2:
        return False
    return True


def _behind_data(rec: RstRecord) -> bool:
    """DATA_SEQ_RST, conservatively: the RST's seq is below data of the sender that the other
    side already acknowledged. Real stacks reset with any seq from SND.UNA to SND.NXT (Linux
    after a FIN, corpus 16 and 22), so merely trailing the sender's highest seq proves nothing;
    no stack sends below SND.UNA."""
    if rec.other_hiack is None or rec.bytes_before[rec.side] == 0:
        return False
    return serial_diff(rec.seg.seq, rec.other_hiack) < 0


def _silence(rec: RstRecord) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """The longer silence (before the RST, or before the packet it answered), the largest
    gap before it, and their ratio."""
    options = [(s, g) for s, g in ((rec.idle_before, rec.earlier_gap_before),
                                    (rec.idle_trigger, rec.earlier_gap_trigger)) if s is not None]
    if not options:
        return None, None, None
    silence, earlier = max(options, key=lambda o: o[0])
    if earlier is None:
        return silence, None, None
    return silence, earlier, silence / max(earlier, GAP_FLOOR_S)


def rst_event(rec: RstRecord, conn: Connection, capture: str, host_ttl: dict[bytes, int],
              group: Optional[ConnRsts] = None) -> RstEvent:
    c, seg, side = rec.conn, rec.seg, rec.side
    if group is None:
        group = ConnRsts(c)
    sender_name = "client" if side == 0 else "server"
    ttl = seg.ttl
    init = initial_ttl(ttl)
    hist = group.hist[side]
    base_conn = most_common(hist)
    base_host = host_ttl.get(c.addr[side])
    if base_conn is not None:
        baseline, source = base_conn, "connection"
    elif base_host is not None:
        baseline, source = base_host, "host"
    else:
        baseline, source = None, "none"
    base_init = initial_ttl(baseline) if baseline is not None else None

    ip_id = seg.ip_id if seg.ipv == 4 else None
    mine, peer = rec.sender_last, rec.other_last
    id_gap = (ip_id - mine.ip_id) & 0xFFFF if ip_id is not None and mine is not None else None
    syn = c.syn if rec.syn_seen else None

    seq_pos, seq_off = _seq_position(rec)
    ack_pos, ack_off = _ack_position(rec)
    trig = rec.trigger
    before_c2s, before_s2c = rec.bytes_before
    silence, earlier_gap, silence_ratio = _silence(rec)
    return construct(
        RstEvent, kind="rst", id=rec.id, capture=capture, frame=seg.frame, connection_id=c.id, connection=conn,
        claimed_sender=sender_name, time=seg.ts,
        flags="RST+ACK" if seg.flags & ACK else "RST", seq=seg.seq, ack=seg.ack,
        ip_version=seg.ipv, reserved_bits_set=bool(seg.reserved),
        rst_payload_len=seg.payload_len,
        ttl=ttl, initial_ttl=init, ttl_decrements=init - ttl, tracert_hop=init - ttl + 1,
        baseline_ttl_conn=base_conn, baseline_ttl_conn_values=sorted(hist),
        baseline_ttl_host=base_host, baseline_initial_ttl=base_init,
        baseline_decrements=base_init - baseline if baseline is not None else None,
        baseline_source=source,
        ttl_delta=ttl - baseline if baseline is not None else None,
        ttl_matches_baseline=ttl == baseline if baseline is not None else None,
        initial_ttl_differs=init != base_init if base_init is not None else None,
        baseline_ttl_varies=len(hist) > 1,
        ip_id=ip_id, ip_id_gap=id_gap,
        ip_id_in_sequence=1 <= id_gap <= IP_ID_SEQUENCE_MAX if id_gap is not None else None,
        ip_id_equals_other_last=(ip_id == peer.ip_id
                                 if ip_id is not None and peer is not None else None),
        ip_id_equals_syn=(ip_id == syn.ip_id
                          if ip_id is not None and syn is not None and side == 1 else None),
        ip_id_zero=ip_id == 0 if ip_id is not None else None,
        window=seg.window,
        window_equals_other_last=seg.window == peer.window if peer is not None else None,
        seq_position=seq_pos, seq_offset=seq_off, ack_position=ack_pos, ack_offset=ack_off,
        rsts_in_connection=len(c.rsts), rst_index_in_connection=rec.index,
        rst_seq_differ=group.seq_differ[side], rst_ack_differ=group.ack_differ[side],
        rst_seq_change=_seq_change(rec, group.previous[rec.id]),
        data_after_rst=rec.data_after_s is not None, data_after_rst_s=rec.data_after_s,
        rst_behind_data=_behind_data(rec),
        rst_both_directions=group.both_directions,
        since_syn_s=seg.ts - syn.ts if syn is not None else None,
        since_start_s=seg.ts - c.start,
        handshake_completed=rec.hs == HS_COMPLETE, syn_seen=rec.syn_seen,
        synack_seen=rec.synack_seen,
        rst_answers_syn=(side == 1 and bool(seg.flags & ACK) and syn is not None
                         and not rec.synack_seen and seg.ack == (syn.seq + 1) & MASK32),
        rst_answers_synack=(side == 0 and rec.synack_seen and rec.hs == HS_SYNACK),
        synack_after_rst=rec.synack_after,
        idle_before_s=rec.idle_before, idle_sender_s=rec.idle_sender,
        idle_before_trigger_s=rec.idle_trigger,
        idle_silence_s=silence, earlier_gap_max_s=earlier_gap, idle_silence_ratio=silence_ratio,
        packets_before=rec.packets_before, bytes_c2s_before=before_c2s,
        bytes_s2c_before=before_s2c, payload_bytes_before=before_c2s + before_s2c,
        trigger_delta_s=seg.ts - trig.ts if trig is not None else None,
        trigger_len=trig.payload_len if trig is not None else None,
        trigger_excerpt=excerpt(trig.payload) if trig is not None else None,
        trigger_frame=trig.frame if trig is not None else None,
        largest_segment_before=rec.maxseg_before,
        fragments_seen=c.frag, icmp_too_big_seen=c.icmp, path_mtu=c.pmtu,
        challenge_ack_seen=rec.challenge_ack)


def iter_built(tracker: Tracker, capture: str
               ) -> Iterator[tuple[Connection, list[RstEvent]]]:
    """Each connection (in order of first packet) with its RSTs, built one at a time and
    released from the tracker as it goes, so a caller that streams them out never holds
    every model at once."""
    needed = {r.conn.addr[r.side] for r in tracker.rsts}
    host_ttl = host_baselines(tracker.connections, needed) if needed else {}
    conns = tracker.connections
    # The pass is over: lookups are no longer needed, and they would keep every
    # connection's state alive while the models stream out.
    tracker.rsts, tracker.table, tracker.frag_owner = [], {}, {}
    names: dict[bytes, str] = {}
    for i, c in enumerate(conns):
        conns[i] = None  # type: ignore[call-overload]  # drop state once built
        model = connection_model(c, capture, names)
        group = ConnRsts(c) if c.rsts else None
        events = [rst_event(r, model, capture, host_ttl, group) for r in c.rsts]
        c.release()
        yield model, events
    tracker.connections = []


def build_facts(tracker: Tracker, capture: str) -> tuple[list[Connection], list[RstEvent]]:
    """All connections (in order of first packet) and all RSTs (in capture order)."""
    connections: list[Connection] = []
    rsts: list[RstEvent] = []
    for conn, events in iter_built(tracker, capture):
        connections.append(conn)
        rsts.extend(events)
    rsts.sort(key=lambda r: r.frame)
    return connections, rsts
