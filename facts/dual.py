"""Dual capture: the scenario map's conclusive test.

Given the capture from one end and the capture from the other, work out which is which,
match each connection across them (through NAT: by initial sequence numbers, else by port and
timing), estimate the clock offset, and say for every RST whether the claimed sender really
sent it.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Literal, Optional

from .evidence import DualEvidence
from .models import INITIAL_TTLS, Connection, RstEvent

Role = Literal["client", "server", "unknown"]

# A RST seen at both ends is "the same" when the times agree this well after the clock offset.
RST_TIME_TOLERANCE_S = 2.0
# Without ISNs, connections are matched by SYN time within this window after the offset.
SYN_TIME_TOLERANCE_S = 1.0


def _undecremented(ttls: dict[int, int]) -> Optional[bool]:
    """Whether the most frequent TTL is an initial one (None: no packets)."""
    if len(ttls) == 1:  # nearly always: one TTL per side of a connection
        for ttl in ttls:
            return ttl in INITIAL_TTLS
    if not ttls:
        return None
    return max(ttls, key=ttls.get) in INITIAL_TTLS


def capture_role(connections: Iterable[Connection]) -> Role:
    """Client side when the clients' own packets leave undecremented and the servers' arrive
    decremented; server side for the opposite; unknown when the captures say nothing.
    Counted in C (facts._ctrack.capture_votes) when the connections are the readers'."""
    from . import ctrack
    counted = ctrack._ctrack.capture_votes(connections) \
        if ctrack.available() and hasattr(ctrack._ctrack, "capture_votes") else None
    if counted is not None:
        client, server = counted
        if client == server:   # a tie, or no vote at all
            return "unknown"
        return "client" if client > server else "server"
    return capture_role_python(connections)


def capture_role_python(connections: Iterable[Connection]) -> Role:
    """``capture_role`` counted in Python (the fallback; the tests compare both)."""
    votes: Counter[str] = Counter()
    for conn in connections:
        client_local = _undecremented(conn.client_ttls)
        server_local = _undecremented(conn.server_ttls)
        if client_local and server_local is False:
            votes["client"] += 1
        elif server_local and client_local is False:
            votes["server"] += 1
    if not votes:
        return "unknown"
    (best, n), *rest = votes.most_common()
    if rest and rest[0][1] == n:
        return "unknown"
    return best  # type: ignore[return-value]


def local_role_of_rst(rst: RstEvent, role: Role) -> Optional[bool]:
    """True when the RST left the capture's own host: claimed sender is the local side and
    its TTL carries no decrement."""
    if role == "unknown":
        return None
    return rst.claimed_sender == role and rst.ttl_decrements == 0


@dataclass
class ConnectionMatch:
    local: Connection
    peer: Connection
    how: Literal["client_isn", "server_isn", "timing"]
    nat: bool


@dataclass
class DualResult:
    local_role: Role
    peer_role: Role
    clock_offset_s: Optional[float]
    matches: dict[str, ConnectionMatch] = field(default_factory=dict)  # local conn id -> match
    evidence: dict[str, DualEvidence] = field(default_factory=dict)    # local rst id -> evidence
    peer_evidence: dict[str, DualEvidence] = field(default_factory=dict)  # peer rst id -> evidence


def _nat_between(a: Connection, b: Connection) -> bool:
    return (a.client.ip, a.client.port, a.server.ip, a.server.port) != (
        b.client.ip, b.client.port, b.server.ip, b.server.port)


def match_connections(local: list[Connection], peer: list[Connection]
                      ) -> tuple[dict[str, ConnectionMatch], Optional[float]]:
    """Pair connections across captures. ISNs first (NAT keeps them unless it randomises
    sequence numbers); the offset from those pairs then lets the rest match by port and SYN time."""
    by_cisn: dict[int, list[Connection]] = defaultdict(list)
    by_sisn: dict[int, list[Connection]] = defaultdict(list)
    for conn in peer:
        if conn.client_isn is not None:
            by_cisn[conn.client_isn].append(conn)
        if conn.server_isn is not None:
            by_sisn[conn.server_isn].append(conn)
    matches: dict[str, ConnectionMatch] = {}
    used: set[str] = set()
    offsets: list[float] = []

    def take(conn: Connection, candidates: list[Connection], how) -> bool:
        free = [c for c in candidates if c.id not in used]
        if not free:
            return False
        best = min(free, key=lambda c: abs(c.start - conn.start))
        used.add(best.id)
        matches[conn.id] = ConnectionMatch(conn, best, how, _nat_between(conn, best))
        if conn.syn_time is not None and best.syn_time is not None:
            offsets.append(best.syn_time - conn.syn_time)
        else:
            offsets.append(best.start - conn.start)
        return True

    rest: list[Connection] = []
    for conn in local:
        if conn.client_isn is not None and take(conn, by_cisn.get(conn.client_isn, []), "client_isn"):
            continue
        if conn.server_isn is not None and take(conn, by_sisn.get(conn.server_isn, []), "server_isn"):
            continue
        rest.append(conn)
    offset = statistics.median(offsets) if offsets else None

    # Timing fallback: same server port (or same client port when NAT rewrote the server side),
    # start within tolerance once the clock offset is applied.
    shift = offset or 0.0
    tolerance = SYN_TIME_TOLERANCE_S if offset is not None else 5.0
    for conn in rest:
        want = conn.start + shift
        candidates = [c for c in peer if c.id not in used
                      and (c.server.port == conn.server.port or c.client.port == conn.client.port)
                      and abs(c.start - want) <= tolerance]
        if candidates:
            take(conn, candidates, "timing")
    if offset is None and offsets:
        offset = statistics.median(offsets)
    return matches, offset


def _sent_rsts(rsts: list[RstEvent], side: str) -> list[RstEvent]:
    return [r for r in rsts if r.claimed_sender == side]


def _near(rst: RstEvent, others: list[RstEvent], offset: float) -> Optional[RstEvent]:
    want = rst.time + offset
    close = [o for o in others if abs(o.time - want) <= RST_TIME_TOLERANCE_S]
    return min(close, key=lambda o: abs(o.time - want)) if close else None


def analyse(local_conns: list[Connection], local_rsts: list[RstEvent],
            peer_conns: list[Connection], peer_rsts: list[RstEvent]) -> DualResult:
    """Dual evidence for every RST in both captures."""
    local_role, peer_role = capture_role(local_conns), capture_role(peer_conns)
    if local_role == peer_role:
        # Both look the same (e.g. same host, or no TTL signal): fall back to "the one holding
        # more SYNs it sent" being the client.
        local_role, peer_role = "unknown", "unknown"
    matches, offset = match_connections(local_conns, peer_conns)
    result = DualResult(local_role, peer_role, offset, matches)
    off = offset or 0.0

    rsts_by_conn: dict[str, list[RstEvent]] = defaultdict(list)
    for r in peer_rsts:
        rsts_by_conn[r.connection_id].append(r)
    local_by_conn: dict[str, list[RstEvent]] = defaultdict(list)
    for r in local_rsts:
        local_by_conn[r.connection_id].append(r)

    reverse = {m.peer.id: m for m in matches.values()}
    for rst in local_rsts:
        result.evidence[rst.id] = _judge(rst, local_role, matches.get(rst.connection_id),
                                         lambda m: rsts_by_conn.get(m.peer.id, []), off, peer=False)
    for rst in peer_rsts:
        m = reverse.get(rst.connection_id)
        result.peer_evidence[rst.id] = _judge(
            rst, peer_role, m, lambda m: local_by_conn.get(m.local.id, []), -off, peer=True)
    return result


def _judge(rst: RstEvent, role: Role, match: Optional[ConnectionMatch], other_rsts,
           offset: float, peer: bool) -> DualEvidence:
    ev = DualEvidence(dual_available=True, observed_at=role,
                      rst_from_capture_host=local_role_of_rst(rst, role),
                      dual_clock_offset_s=offset)  # already the other capture's minus this one's
    if match is None:
        ev.dual_peer_saw_connection = False
        return ev
    ev.dual_peer_saw_connection = True
    ev.dual_nat_between = match.nat
    here, there = (match.peer, match.local) if peer else (match.local, match.peer)
    ev.dual_synack_missing_at_client = (
        (role == "client" and here.synack_time is None and there.synack_time is not None) or None)
    others = other_rsts(match)
    sender = rst.claimed_sender
    if role != "unknown" and sender == role:
        # A RST claimed by the local side: the other capture tells whether it ever arrived there.
        ev.dual_peer_sent_rst = None
        return ev
    ev.dual_peer_sent_rst = _near(rst, _sent_rsts(others, sender), offset) is not None
    if not ev.dual_peer_sent_rst:
        # A device that resets both ends: the far end received a RST "from" this end too.
        received = _near(rst, [o for o in others if o.claimed_sender != sender], offset)
        ev.dual_peer_received_rst = received is not None
    return ev
