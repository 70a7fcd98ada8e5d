"""Pair firewall teardown log lines with the RSTs seen in a capture.

A log line is evidence for a reset when its time (within a tolerance) and its 4-tuple match,
and the session duration it reports is consistent with the connection's age at the RST. NAT
between the firewall and the capture point changes one side of the tuple, so when the full tuple
fails the unchanged side plus the time still match (weaker quality). Lines without a zone may be
in the firewall's local time: for full-tuple matches whole quarter-hour offsets are tried.
"""
from __future__ import annotations

import calendar
from datetime import datetime, timezone
from typing import Any, Iterable, Literal, Optional

from pydantic import ConfigDict, Field

from ._util import PastedModel
from .firewall_log import FirewallLogEntry

Quality = Literal["tuple", "one_side"]
_ZONE_STEP_S = 900           # every real zone offset is a multiple of 15 minutes
_MAX_ZONE_S = 14 * 3600
_DURATION_SLACK_S = 1.0      # ASA/PAN-OS durations are whole seconds


class LogResetMatch(PastedModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    entry: FirewallLogEntry
    rst_id: str
    rst: Any = Field(exclude=True, description="The RstEvent (not serialised)")
    quality: Quality
    matched_side: Optional[Literal["client", "server"]] = Field(
        None, description="For one_side matches: the RST endpoint the log line shares")
    nat_seen: bool = Field(False, description="The match needed the log's NAT columns or only "
                           "one side matched: addresses differ between log and capture")
    time_delta_s: float = Field(description="Log time minus RST time, after zone_offset_s")
    zone_offset_s: int = Field(0, description="Offset removed from a zone-less log time")
    duration_consistent: Optional[bool] = None


def _endpoints(entry: FirewallLogEntry) -> tuple[set, set]:
    """Possible (ip, port) of each log side: as logged and after the firewall's NAT."""
    a = {(entry.src, entry.sport)}
    b = {(entry.dst, entry.dport)}
    if entry.nat_src:
        a.add((entry.nat_src, entry.nat_sport or entry.sport))
    if entry.nat_dst:
        b.add((entry.nat_dst, entry.nat_dport or entry.dport))
    return a, b


def _rst_endpoints(rst) -> tuple[tuple, tuple]:
    conn = rst.connection
    return (conn.client.ip, conn.client.port), (conn.server.ip, conn.server.port)


def _log_time(entry: FirewallLogEntry, rst_time: float) -> Optional[float]:
    if entry.time is not None:
        return entry.time
    # No year on the line: borrow the RST's, trying the neighbours for logs across New Year.
    wall = entry.wall_clock
    year = datetime.fromtimestamp(rst_time, timezone.utc).year
    candidates = []
    for y in (year - 1, year, year + 1):
        try:
            candidates.append(calendar.timegm(wall.replace(year=y).timetuple())
                              + wall.microsecond / 1e6)
        except ValueError:  # Feb 29 in a non-leap year
            continue
    return min(candidates, key=lambda t: abs(t - rst_time)) if candidates else None


def _time_fit(entry: FirewallLogEntry, log_time: float, rst_time: float, tolerance_s: float,
              allow_zone: bool) -> Optional[tuple[float, int]]:
    delta = log_time - rst_time
    if abs(delta) <= tolerance_s:
        return delta, 0
    if not (allow_zone and entry.time_naive):
        return None
    offset = round(delta / _ZONE_STEP_S) * _ZONE_STEP_S
    if offset == 0 or abs(offset) > _MAX_ZONE_S or abs(delta - offset) > tolerance_s:
        return None
    return delta - offset, int(offset)


def _duration_consistent(entry: FirewallLogEntry, rst, tolerance_s: float) -> Optional[bool]:
    if entry.duration_s is None:
        return None
    conn = rst.connection
    age = rst.time - conn.start
    slack = tolerance_s + _DURATION_SLACK_S
    if conn.roles_inferred or conn.handshake == "none":
        # The capture began mid-connection: the session is at least as old as what we saw.
        return entry.duration_s >= age - slack
    return abs(entry.duration_s - age) <= slack


def _tuple_match(entry: FirewallLogEntry, rst) -> tuple[Optional[Quality], Optional[str], bool]:
    side_a, side_b = _endpoints(entry)
    client, server = _rst_endpoints(rst)
    for x, y in ((side_a, side_b), (side_b, side_a)):
        if client in x and server in y:
            nat = (entry.src, entry.sport) not in (client, server) or \
                (entry.dst, entry.dport) not in (client, server)
            return "tuple", None, nat
    # NAT the log does not describe: the server side usually survives (source NAT).
    if server in side_a | side_b:
        return "one_side", "server", True
    if client in side_a | side_b:
        return "one_side", "client", True
    return None, None, False


def match_log_to_resets(entries: Iterable[FirewallLogEntry], rsts: Iterable[Any],
                        tolerance_s: float = 2.0) -> list[LogResetMatch]:
    """Pairs (log line, RST) that are the same event, best first per RST.

    ``rsts`` are objects with ``.id``, ``.time`` (UTC) and ``.connection.client/.server``
    (``facts.models.RstEvent``). A RST with a full-tuple match keeps only those; one-side
    matches are reported only for RSTs that have no full-tuple match.
    """
    entries = list(entries)
    out: list[LogResetMatch] = []
    for rst in rsts:
        found: list[LogResetMatch] = []
        for entry in entries:
            quality, side, nat = _tuple_match(entry, rst)
            if quality is None:
                continue
            log_time = _log_time(entry, rst.time)
            if log_time is None:
                continue
            fit = _time_fit(entry, log_time, rst.time, tolerance_s, allow_zone=quality == "tuple")
            if fit is None:
                continue
            consistent = _duration_consistent(entry, rst, tolerance_s)
            if consistent is False:
                continue
            found.append(LogResetMatch(
                entry=entry, rst_id=getattr(rst, "id", ""), rst=rst, quality=quality,
                matched_side=side, nat_seen=nat, time_delta_s=round(fit[0], 6),
                zone_offset_s=fit[1], duration_consistent=consistent))
        if any(m.quality == "tuple" for m in found):
            found = [m for m in found if m.quality == "tuple"]
        found.sort(key=lambda m: (m.zone_offset_s != 0, abs(m.time_delta_s)))
        out.extend(found)
    return out


def evidence_for_reset(matches: Iterable[LogResetMatch], rst_id: str) -> dict:
    """ContextEvidence fields for one RST from its best log match (empty when none)."""
    best = next((m for m in matches if m.rst_id == rst_id), None)
    if best is None:
        return {}
    out = {"firewall_log_reason": best.entry.reason, "path_has_firewall": True}
    if best.nat_seen:
        out["path_has_nat"] = True
    return out
