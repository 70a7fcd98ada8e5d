"""Patterns that only show across connections: reconnect cycles whose period is the timeout,
resets in bursts, SYN rejection by port or by rate, source-port exhaustion, TTL shifts
(path change) and one-sided flows (asymmetric routing). One pass over the connection and RST
lists; nothing here touches packets.
"""
from __future__ import annotations

import bisect
import functools
import operator
import statistics
from collections import defaultdict
from itertools import repeat
from typing import Iterable, Optional

from .evidence import CrossEvidence
from .fastmodel import construct, model_is_plain
from .models import Connection, RstEvent, initial_ttl

CYCLE_MIN_RESETS = 3            # a "cycle" needs at least this many resets with one period
CYCLE_TOLERANCE = 0.05          # periods within 5 % (or 2 s) of their median
# A timer's period: resets that all come a few milliseconds into each connection (every SYN-ACK
# reset, every request refused) share a "lifetime" without any timer behind it.
CYCLE_MIN_PERIOD_S = 1.0
BURST_WINDOW_S = 1.0            # "within the same second"
RATE_WINDOW_S = 1.0             # SYN rate measured over the preceding second
EPHEMERAL_PORTS = 16384         # IANA dynamic range size (49152-65535)
PORT_REUSE_WINDOW_S = 30.0
REUSES_FOR_EXHAUSTION = 10      # reuses of one source port within the window
IDLE_MATCH_REL = 0.03           # a measured idle matches a default within 3 % ...
IDLE_MATCH_ABS_S = 2.0          # ... or 2 s


def idle_matches(idle_s: Optional[float], timeouts: Iterable[tuple[str, float]],
                 rel: float = IDLE_MATCH_REL, abs_s: float = IDLE_MATCH_ABS_S) -> list[str]:
    """Devices whose default idle timeout the measured idle equals (within 3 % or 2 s; a
    device that resets on the next packet after expiry can only make the idle longer)."""
    return _matches(idle_s, _tolerances(tuple(timeouts), rel, abs_s))


def _matches(idle_s: Optional[float], tolerances: tuple) -> list[str]:
    if idle_s is None or idle_s <= 0:
        return []
    return [name for name, seconds, tolerance in tolerances if abs(idle_s - seconds) <= tolerance]


@functools.lru_cache(maxsize=64)
def _tolerances(timeouts: tuple, rel: float, abs_s: float) -> tuple:
    """(device, seconds, how far a measured idle may be from it): once per table, not once
    per reset and device."""
    return tuple((name, seconds, max(abs_s, rel * seconds)) for name, seconds in timeouts
                 if seconds)


def measured_idle(rst: RstEvent) -> Optional[float]:
    """The silence the scenario map asks to measure: before the RST itself when the device
    reset at expiry, else before the packet that the RST answered."""
    before, trigger = rst.idle_before_s, rst.idle_before_trigger_s
    if before is None or trigger is None:
        return trigger if before is None else before
    return max(before, trigger)


def _cycle(values: list[float]) -> Optional[float]:
    if len(values) < CYCLE_MIN_RESETS:
        return None
    med = statistics.median(values)
    if med < CYCLE_MIN_PERIOD_S:
        return None
    if all(abs(v - med) <= max(2.0, CYCLE_TOLERANCE * med) for v in values):
        return med
    return None


def _ttl_shift(c: Connection) -> bool:
    """One side's normal packets changed TTL once and kept the new value, with the same initial
    TTL (same sender, other path). Different initial TTLs mean another device answered part of
    the connection (a SYN proxy), which is not a path change."""
    for changes, ttls in ((c.client_ttl_changes, c.client_ttls), (c.server_ttl_changes, c.server_ttls)):
        if changes == 1 and len(ttls) == 2 and len({initial_ttl(t) for t in ttls}) == 1:
            return True
    return False


_start = operator.attrgetter("start")
_syn_time = operator.attrgetter("syn_time")


def _rates(syn_times: list[float], members: list[Connection]) -> list[int]:
    """Each member's SYN rate: the SYNs (of ``syn_times``, sorted) within the second up to
    and including its own, the bisections run at C speed."""
    times = [c.syn_time for c in members]
    ends = map(bisect.bisect_right, repeat(syn_times), times)
    starts = map(bisect.bisect_left, repeat(syn_times), [t - RATE_WINDOW_S for t in times])
    return list(map(operator.sub, ends, starts))


def _per_connection(connections: list[Connection]) -> tuple[dict, dict, dict, dict]:
    """One pass over the connections (20 000 of them on a big capture, each read once):
    the connections by id; those with a SYN grouped by server port; and per client
    address the source ports it used and how often it reused one within
    PORT_REUSE_WINDOW_S, counted in order of start (the order connections come in, by
    first packet; another order is sorted first)."""
    conns: dict[str, Connection] = {}
    per_port: dict[tuple, list[Connection]] = defaultdict(list)
    ports_by_client: dict[str, set[int]] = defaultdict(set)
    reuse_by_client: dict[str, int] = defaultdict(int)
    last_use: dict[tuple, float] = {}
    previous = float("-inf")
    in_order = True
    for c in connections:
        conns[c.id] = c
        client, server = c.client, c.server
        if c.syn_time is not None:
            per_port[(server.ip, server.port)].append(c)
        start = c.start
        if start < previous:
            in_order = False
        previous = start
        if in_order:
            _count_port(c, client, server, ports_by_client, reuse_by_client, last_use)
    if not in_order:
        ports_by_client.clear()
        reuse_by_client.clear()
        last_use.clear()
        for c in sorted(connections, key=_start):
            _count_port(c, c.client, c.server, ports_by_client, reuse_by_client, last_use)
    return conns, per_port, ports_by_client, reuse_by_client


def _count_port(c: Connection, client, server, ports_by_client: dict, reuse_by_client: dict,
                last_use: dict) -> None:
    ip, port = client.ip, client.port
    ports_by_client[ip].add(port)
    key = (ip, port, server.ip, server.port)
    last = last_use.get(key)
    if last is not None and c.start - last <= PORT_REUSE_WINDOW_S:
        reuse_by_client[ip] += 1
    last_use[key] = c.end


def _compiled():
    """facts._ctrack.cross_analyse, unless it is not built or RSTSLEUTH_NO_CEXT is set."""
    from . import ctrack
    if not ctrack.available() or not hasattr(ctrack._ctrack, "cross_analyse"):
        return None
    return ctrack._ctrack.cross_analyse


def _constants() -> tuple:
    """This module's thresholds, in cross_analyse's order (read at each call, so the C code
    follows them)."""
    return (CYCLE_MIN_RESETS, REUSES_FOR_EXHAUSTION, CYCLE_TOLERANCE, CYCLE_MIN_PERIOD_S,
            BURST_WINDOW_S, RATE_WINDOW_S, EPHEMERAL_PORTS * 0.85, PORT_REUSE_WINDOW_S)


def analyse(connections: list[Connection], rsts: list[RstEvent],
            idle_defaults: Iterable[tuple[str, float]] = ()) -> dict[str, CrossEvidence]:
    """CrossEvidence per RST id: computed in C (about a tenth of the time on 20 000
    connections) when every input has the types the readers give, else by ``analyse_python``."""
    tolerances = _tolerances(tuple(idle_defaults), IDLE_MATCH_REL, IDLE_MATCH_ABS_S)
    compiled = _compiled()
    if compiled is not None and type(connections) is list and type(rsts) is list \
            and model_is_plain(CrossEvidence):
        out = compiled(connections, rsts, tolerances, CrossEvidence,
                       tuple(CrossEvidence.model_fields), _constants())
        if out is not None:
            return out
    return _analyse(connections, rsts, tolerances)


def analyse_python(connections: list[Connection], rsts: list[RstEvent],
                   idle_defaults: Iterable[tuple[str, float]] = ()) -> dict[str, CrossEvidence]:
    """``analyse`` without the compiled pass (what it falls back to; the tests compare)."""
    return _analyse(connections, rsts,
                    _tolerances(tuple(idle_defaults), IDLE_MATCH_REL, IDLE_MATCH_ABS_S))


def _analyse(connections: list[Connection], rsts: list[RstEvent],
             tolerances: tuple) -> dict[str, CrossEvidence]:
    conns, per_port, ports_by_client, reuse_by_client = _per_connection(connections)
    first_rst: dict[str, RstEvent] = {}
    for r in rsts:
        first_rst.setdefault(r.connection_id, r)

    # Reconnect cycles: connections between the same pair to the same port, each ended by a
    # reset after the same lifetime or the same idle time.
    groups: dict[tuple, list[RstEvent]] = defaultdict(list)
    for r in first_rst.values():
        c = r.connection
        groups[(c.client.ip, c.server.ip, c.server.port)].append(r)
    cycle_of: dict[str, float] = {}
    for members in groups.values():
        if len(members) < CYCLE_MIN_RESETS:  # _cycle's first test, before any list is made
            continue
        lifetimes = [r.time - r.connection.start for r in members]
        idles = [v for v in (measured_idle(r) for r in members) if v is not None]
        period = _cycle(idles) if len(idles) == len(members) else None
        period = period or _cycle(lifetimes)
        if period:
            for r in members:
                cycle_of[r.connection_id] = period

    # Bursts: distinct connections reset within one second of each other (one stamp per
    # connection: its first reset).
    stamps = sorted(r.time for r in first_rst.values())

    def burst(t: float) -> int:
        lo = bisect.bisect_left(stamps, t - BURST_WINDOW_S / 2)
        hi = bisect.bisect_right(stamps, t + BURST_WINDOW_S / 2)
        return hi - lo

    # SYN rejection per server port, and whether it only happens above a rate.
    rejected = {cid for cid, r in first_rst.items() if r.rst_answers_syn}
    port_stats: dict[tuple, tuple[int, int, Optional[bool]]] = {}
    for key, members in per_port.items():
        members.sort(key=_syn_time)
        syn_times = [c.syn_time for c in members]
        rej = [c for c in members if c.id in rejected]
        acc = [c for c in members if c.handshake in ("syn_synack", "complete")]
        above = None
        if rej and acc:
            # Rate limiting: every rejected SYN came at a higher rate than every accepted one
            # that preceded it in its burst; policy blocks reject regardless of rate.
            above = min(_rates(syn_times, rej)) > statistics.median(_rates(syn_times, acc))
        port_stats[key] = (len(rej), len(acc), above)

    # Source-port use per client address (counted in _per_connection).
    exhausted = {ip for ip, ports in ports_by_client.items()
                 if len(ports) >= EPHEMERAL_PORTS * 0.85
                 or reuse_by_client[ip] >= REUSES_FOR_EXHAUSTION}

    out: dict[str, CrossEvidence] = {}
    shifted: dict[str, bool] = {}
    bursts: dict[str, int] = {}
    for r in rsts:
        c = conns.get(r.connection_id, r.connection)
        rej, acc, above = port_stats.get((c.server.ip, c.server.port), (0, 0, None))
        idle = measured_idle(r)
        matched = _matches(idle, tolerances)
        # per connection, not per reset: a RST storm in one connection stays linear
        shift = shifted.get(c.id)
        if shift is None:
            shift = shifted[c.id] = _ttl_shift(c)
        in_burst = bursts.get(r.connection_id)
        if in_burst is None:
            in_burst = bursts[r.connection_id] = burst(first_rst[r.connection_id].time)
        out[r.id] = construct(
            CrossEvidence,
            cross_reconnect_cycle=r.connection_id in cycle_of,
            cross_cycle_period_s=cycle_of.get(r.connection_id),
            cross_resets_same_second=in_burst,
            cross_port_syn_rejects=rej,
            cross_port_syn_accepts=acc,
            cross_rejects_above_rate=above,
            cross_source_port_exhaustion=c.client.ip in exhausted,
            cross_ttl_shift=shift,
            cross_one_sided_flow=(c.packets_c2s == 0) != (c.packets_s2c == 0),
            cross_idle_matches_default=bool(matched) if idle else None,
            cross_matched_devices=matched,
        )
    return out
