"""``rstsleuth analyze``: captures in, report out.

extract facts from one or two captures → dual-capture and cross-connection evidence → one
inference per distinct evidence set → resets with verdicts, grouped into findings.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from facts import cross as cross_mod
from facts import dual as dual_mod
from facts.evidence import DualEvidence
from facts.extract import Extraction, extract, no_cyclic_gc
from facts.fastmodel import construct, present
from facts.fields import IDENTITY_FIELDS, connection_evidence, evidence_from_rst
from facts.models import RstEvent

from . import fixparams
from .conditions import _evkey
from .kb import KnowledgeBase
from .report_model import (Baseline, CaptureSummary, ConnectionRef, CrossPattern, DualOut,
                           EndpointRef, KbInfo, Reasoning, Report, ResetOut, RstSource,
                           Trigger)
from .report_build import (build_findings, diagnoses_for, evidence_from_template,
                           evidence_template, fired_rules, fixes_for)

VERSION = "0.1.0"
# The applications fixes are written for (fixparams.APP_NAMES), plus names for display only.
APPLICATIONS = {**fixparams.APP_NAMES, 80: "HTTP", 443: "HTTPS", 21: "FTP", 990: "FTPS",
                389: "LDAP", 3306: "MySQL", 5432: "PostgreSQL", 6379: "Redis", 25: "SMTP",
                23: "Telnet"}


def application(port: int) -> str:
    return APPLICATIONS.get(port, f"TCP/{port}")


@dataclass
class Side:
    """One capture and what was derived from it."""

    index: int  # 1 = the capture given first, 2 = --peer; reset ids are "<index>:<rst id>"
    extraction: Extraction
    role: str
    dual: dict[str, DualEvidence]


def idle_defaults(kb: KnowledgeBase) -> list[tuple[str, float]]:
    return [(t.device, t.seconds) for t in kb.reference.idle_timeouts
            if t.seconds and t.family != "host"]


def _dual_verdict(ev: Optional[DualEvidence]) -> str:
    if ev is None or not ev.dual_available:
        return "no_peer_capture"
    if ev.rst_from_capture_host:
        return "sent_by_capture_host"
    if ev.dual_peer_saw_connection is False:
        return "blocked_before_peer"
    if ev.dual_peer_sent_rst is True:
        return "endpoint_sent"
    if ev.dual_peer_sent_rst is False:
        return "both_ends_reset" if ev.dual_peer_received_rst else "middle_injected"
    return "inconclusive"


def _wireshark_filter(rst: RstEvent, prefix: Optional[str] = None) -> str:
    """``prefix``: ``_filter_prefix`` of the reset's connection, when already made."""
    frames = sorted({f for f in (rst.frame, rst.trigger_frame) if f})
    return (f"{prefix or _filter_prefix(rst.connection)}frame.number in "
            f"{{{' '.join(map(str, frames))}}})")


def _filter_prefix(c) -> str:
    addr = "ip.addr" if c.ip_version == 4 else "ipv6.addr"
    return (f"{addr}=={c.client.ip} && {addr}=={c.server.ip} && tcp.port=={c.client.port} && "
            f"tcp.port=={c.server.port} && (tcp.flags.reset==1 || tcp.flags.syn==1 || ")


def _iso(t: float, seconds: Optional[dict] = None) -> str:
    """``datetime.fromtimestamp(t, utc).isoformat(timespec="microseconds")``; ``seconds``
    (a dict kept for one report) holds each whole second's text, so that only the
    microseconds are formatted per reset. They are rounded as datetime rounds them: half to
    even, on the fraction that modf leaves (the tests compare both on edge cases)."""
    if seconds is None:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds")
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        us -= 1_000_000
        whole += 1.0
    elif us < 0:
        us += 1_000_000
        whole -= 1.0
    text = seconds.get(whole)  # float keys: apart from the report cache's tuple keys
    if text is None:
        text = seconds[whole] = _dt.datetime.fromtimestamp(
            whole, _dt.timezone.utc).isoformat(timespec="seconds")
    return f"{text[:-6]}.{us:06d}{text[-6:]}"


def _load_tracert(path: Optional[str]):
    if not path:
        return None
    from facts.errors import UserError
    from facts.pasted import parse
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError as exc:
        raise UserError(f"{path}: cannot read tracert output ({exc.strerror})") from None
    try:
        return parse("tracert", text)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


@dataclass
class Gathered:
    """The captures read and, per reset, the flat evidence the engine reasons over."""

    sides: list[Side]
    dual_summary: Optional[dict[str, Any]]
    peer_ids: dict[str, str]
    patterns: list[CrossPattern]
    jobs: list[tuple[Side, RstEvent, dict[str, Any], DualEvidence]]


def _extracted(capture: Union[str, Extraction], progress) -> Extraction:
    return capture if isinstance(capture, Extraction) else extract(capture, progress=progress)


def gather(capture: Union[str, Extraction], peer: Union[str, Extraction, None], kb: KnowledgeBase,
           progress: Optional[Callable[[int, int], None]] = None) -> Gathered:
    """Read one or two captures (or take them already read, e.g. by ``facts.prefetch``) and
    build each reset's evidence (dual and cross included); shared by ``analyze`` and
    ``ask --capture``."""
    local = _extracted(capture, progress)
    sides = [Side(1, local, dual_mod.capture_role(local.connections), {})]
    dual_summary = None
    if peer:
        other = _extracted(peer, progress)
        result = dual_mod.analyse(local.connections, local.rsts, other.connections, other.rsts)
        sides[0].role, sides[0].dual = result.local_role, result.evidence
        sides.append(Side(2, other, result.peer_role, result.peer_evidence))
        dual_summary = {
            "local_role": result.local_role, "peer_role": result.peer_role,
            "clock_offset_s": result.clock_offset_s,
            "matched_connections": len(result.matches),
            "nat_detected": any(m.nat for m in result.matches.values()),
            "matched_by": sorted({m.how for m in result.matches.values()}),
        }
        peer_ids = {m.local.id: m.peer.id for m in result.matches.values()}
        peer_ids.update({m.peer.id: m.local.id for m in result.matches.values()})
    else:
        peer_ids = {}

    defaults = idle_defaults(kb)
    jobs: list[tuple[Side, RstEvent, dict[str, Any], Any]] = []
    patterns: list[CrossPattern] = []
    for side in sides:
        ex = side.extraction
        crosses = cross_mod.analyse(ex.connections, ex.rsts, defaults)
        patterns.extend(_cross_patterns(ex, crosses))
        # Without a peer capture every reset of a side has one of two dual evidences.
        plain_dual: dict[Any, tuple[DualEvidence, dict[str, Any]]] = {}
        for rst in ex.rsts:
            dual = side.dual.get(rst.id)
            if dual is None:
                from_host = dual_mod.local_role_of_rst(rst, side.role)
                found = plain_dual.get(from_host)
                if found is None:
                    made = DualEvidence(observed_at=side.role, rst_from_capture_host=from_host)
                    found = plain_dual[from_host] = (made, present(made))
                dual, dual_items = found
            else:
                dual_items = present(dual)
            cr = crosses.get(rst.id)
            jobs.append((side, rst, _evidence(rst, dual_items, cr), dual))
    return Gathered(sides, dual_summary, peer_ids, patterns, jobs)


_NO_ITEMS: dict[str, Any] = {}


def _evidence(rst: RstEvent, dual_items: dict[str, Any], cross) -> dict[str, Any]:
    """One reset's flat evidence: its fields (``evidence_from_rst``), then the dual and cross
    evidence and both addresses; merged in C when engine._evkey is built."""
    c = rst.connection
    ips = {"server_ip": c.server.ip, "client_ip": c.client.ip}
    if _evkey is not None and not os.environ.get("RSTSLEUTH_NO_CEXT"):
        return _evkey.merged(rst.__dict__, IDENTITY_FIELDS, connection_evidence(c), dual_items,
                             cross.__dict__ if cross is not None else _NO_ITEMS, ips)
    ev = evidence_from_rst(rst)
    ev.update(dual_items)
    if cross is not None:
        ev.update(present(cross))
    ev.update(ips)
    return ev


def analyze(capture: Union[str, Extraction], peer: Union[str, Extraction, None] = None, *,
            tracert: Optional[str] = None, kb: Optional[KnowledgeBase] = None, reasoner=None,
            lang: str = "en", progress: Optional[Callable[[int, int], None]] = None,
            evidence_out: Optional[dict[str, dict[str, Any]]] = None) -> Report:
    """``evidence_out``, when given, receives each reset's evidence dict by reset id (the
    input of ``Reasoner.why_not`` / ``what_if``, e.g. for the TUI)."""
    from . import Reasoner, load_kb

    kb = kb or load_kb()
    if reasoner is None:
        with Reasoner(kb) as own:
            return analyze(capture, peer, tracert=tracert, kb=kb, reasoner=own, lang=lang,
                           progress=progress, evidence_out=evidence_out)
    # the facts, evidence and report objects all live until the report is written
    with no_cyclic_gc():
        return _analyze(capture, peer, tracert, kb, reasoner, lang, progress, evidence_out)


def _analyze(capture, peer, tracert, kb, reasoner, lang, progress, evidence_out) -> Report:
    trace = _load_tracert(tracert)
    gathered = gather(capture, peer, kb, progress)
    sides, dual_summary, peer_ids = gathered.sides, gathered.dual_summary, gathered.peer_ids
    patterns, jobs = gathered.patterns, gathered.jobs

    inferences = reasoner.infer_many([ev for _, _, ev, _ in jobs], share=False)
    resets: list[ResetOut] = []
    classes: dict[Any, tuple] = {}
    cache: dict[Any, Any] = {}
    for (side, rst, ev, dual), inf in zip(jobs, inferences):
        resets.append(_reset_out(kb, side, rst, ev, dual, inf, trace, peer_ids, lang, classes,
                                 cache))
        if evidence_out is not None:
            evidence_out[resets[-1].id] = ev
    findings = build_findings(kb, resets, [inf for inf in inferences], lang)

    captures = [_capture_summary(s) for s in sides]
    warnings = [f"{s.extraction.capture.path}: {w}" for s in sides for w in s.extraction.capture.warnings]
    return Report(version=VERSION, lang=lang, kb=KbInfo(path=str(kb.path), rules=len(kb.rules)),
                  captures=captures, dual=dual_summary, resets=resets, findings=findings,
                  patterns=patterns, warnings=warnings)


def _capture_summary(side: Side) -> CaptureSummary:
    info = side.extraction.capture
    return CaptureSummary(path=info.path, format=info.format, role=side.role,
                          link_types=list(info.link_types), records=info.records,
                          tcp_packets=info.tcp_packets, rst_packets=info.rst_packets,
                          connections=len(side.extraction.connections),
                          first_time=info.first_time, last_time=info.last_time,
                          warnings=list(info.warnings))


def _verdict_class(kb, inf, lang: str, classes: dict) -> tuple:
    """Diagnoses, evidence template and fired rules: equal for every inference of one run
    class (Reasoner.run_key), so built once per class, not once per reset."""
    # the class object stays alive with the inference, so its id is not reused meanwhile
    key = id(inf.run_class if inf.run_class is not None else inf)
    found = classes.get(key)
    if found is None:
        diagnoses = diagnoses_for(kb, inf, inf.origin, lang)
        found = classes[key] = (diagnoses, evidence_template(inf, inf.origin, diagnoses),
                                fired_rules(inf), inf)
    return found[:3]


def _shared(cache: dict, cls, **values):
    """One object per distinct value set: resets repeat the same RST source and dual
    outcome thousands of times. Report objects are read-only once built (findings only
    write their own ``reasoning``, which is never shared)."""
    key = (cls, *values.values())
    try:
        found = cache.get(key)
    except TypeError:  # an unhashable value (a list): not shared
        return construct(cls, **values)
    if found is None:
        found = cache[key] = construct(cls, **values)
    return found


def _baseline(cache: dict, rst: RstEvent) -> Baseline:
    """``_shared`` for the baseline, whose TTL values are a list."""
    ttl = rst.baseline_ttl_conn if rst.baseline_ttl_conn is not None else rst.baseline_ttl_host
    values = rst.baseline_ttl_conn_values
    key = (Baseline, ttl, rst.baseline_initial_ttl, rst.baseline_decrements, rst.baseline_source,
           None if values is None else tuple(values))
    found = cache.get(key)
    if found is None:
        found = cache[key] = construct(Baseline, ttl=ttl, initial_ttl=rst.baseline_initial_ttl,
                                       decrements=rst.baseline_decrements,
                                       source=rst.baseline_source, values=values)
    return found


def _connection_ref(cache: dict, side: Side, c, peer_ids: dict) -> tuple[ConnectionRef, str]:
    """The connection's report object and its Wireshark filter prefix, made once per
    connection."""
    key = (side.index, c.id)
    found = cache.get(key)
    if found is None:
        found = cache[key] = (construct(
            ConnectionRef, id=c.id, client=construct(EndpointRef, ip=c.client.ip, port=c.client.port),
            server=construct(EndpointRef, ip=c.server.ip, port=c.server.port),
            ip_version=c.ip_version, handshake=c.handshake, start=c.start, end=c.end,
            application=application(c.server.port), peer_connection_id=peer_ids.get(c.id)),
            _filter_prefix(c))
    return found


def _reset_out(kb, side: Side, rst: RstEvent, ev: dict, dual: DualEvidence, inf, trace,
               peer_ids: dict, lang: str, classes: dict, cache: dict) -> ResetOut:
    c = rst.connection
    hop_addr = hop_name = None
    if trace is not None:
        hop = trace.hop(rst.tracert_hop)
        if hop is not None:
            hop_addr, hop_name = hop.address, hop.name
    origin = inf.origin
    origin_cf = max(0.0, inf.cf(f"origin.{origin}")) if origin != "undetermined" else 0.0
    diagnoses, template, fired = _verdict_class(kb, inf, lang, classes)
    measured = cross_mod.measured_idle(rst)
    connection, filter_prefix = _connection_ref(cache, side, c, peer_ids)
    # Everything below is built from typed facts and KB objects: constructed without
    # re-validation (most of analyze's time on 5 000 resets); the JSON report is checked
    # against the generated schema by the tests.
    trigger = None
    if rst.trigger_len:
        trigger = construct(Trigger, frame=rst.trigger_frame, length=rst.trigger_len,
                            delta_s=rst.trigger_delta_s, excerpt=rst.trigger_excerpt)
    return construct(
        ResetOut,
        id=f"{side.index}:{rst.id}",
        capture=rst.capture, frame=rst.frame,
        connection=connection,
        observed_at=side.role if side.role in ("client", "server") else "unknown",
        claimed_sender=rst.claimed_sender, time=rst.time, time_iso=_iso(rst.time, cache),
        flags=rst.flags,
        origin=origin, origin_confidence=round(min(1.0, origin_cf), 3), pattern=inf.pattern,
        rst_source=_shared(cache, RstSource, ttl=rst.ttl, initial_ttl=rst.initial_ttl,
                           decrements=rst.ttl_decrements, tracert_hop=rst.tracert_hop,
                           tracert_address=hop_addr, tracert_name=hop_name),
        baseline=_baseline(cache, rst),
        idle_before_s=rst.idle_before_s, measured_idle_s=measured,
        idle_matches=list(ev.get("cross_matched_devices") or []),
        trigger=trigger,
        dual=_shared(cache, DualOut, peer_saw_connection=dual.dual_peer_saw_connection,
                     peer_sent_rst=dual.dual_peer_sent_rst,
                     peer_received_rst=dual.dual_peer_received_rst,
                     clock_offset_s=dual.dual_clock_offset_s, nat_between=dual.dual_nat_between,
                     verdict=_dual_verdict(dual)),
        diagnoses=diagnoses,
        fixes=fixes_for(kb, inf, origin, diagnoses, c.server.port,
                        lambda names: fixparams.compute(ev, kb, names), lang, cache),
        evidence=evidence_from_template(template, inf.evidence, cache),
        wireshark_filter=_wireshark_filter(rst, filter_prefix),
        reasoning=construct(Reasoning, finding="", fired=fired),
    )


def _cross_patterns(ex: Extraction, crosses: dict) -> list[CrossPattern]:
    """One pattern per (kind, what it is about), listing every connection that shows it."""
    found: dict[tuple, CrossPattern] = {}
    name = ex.capture.path
    for rst in ex.rsts:
        cr = crosses.get(rst.id)
        if cr is None:
            continue
        c = rst.connection
        items = []
        if cr.cross_reconnect_cycle:
            items.append(("reconnect_cycle", (c.client.ip, c.server.ip, c.server.port),
                          f"{name}: connections {c.client.ip} → {c.server.ip}:{c.server.port} are "
                          f"reset in a cycle of {cr.cross_cycle_period_s:.1f} s: that period is the timeout",
                          cr.cross_cycle_period_s))
        if (cr.cross_resets_same_second or 0) >= 5:
            items.append(("reset_burst", (int(rst.time),),
                          f"{name}: {cr.cross_resets_same_second} connections reset within one second "
                          f"(load-balancer failover / health check, or a device flushing its table)",
                          float(cr.cross_resets_same_second)))
        if (cr.cross_port_syn_rejects or 0) >= 3:
            kind = "rate_limited" if cr.cross_rejects_above_rate else "port_rejects_syn"
            items.append((kind, (c.server.ip, c.server.port),
                          f"{name}: {cr.cross_port_syn_rejects} SYNs to {c.server.ip}:{c.server.port} "
                          f"answered by RST, {cr.cross_port_syn_accepts} accepted"
                          + (" — only above a connection rate" if cr.cross_rejects_above_rate else ""),
                          float(cr.cross_port_syn_rejects)))
        if cr.cross_source_port_exhaustion:
            items.append(("source_port_exhaustion", (c.client.ip,),
                          f"{name}: {c.client.ip} cycles through its source ports (NAT / ephemeral "
                          f"port exhaustion)", None))
        if cr.cross_ttl_shift:
            items.append(("ttl_shift", (c.id,), f"{name}: TTL of normal packets shifted mid-connection "
                          f"in {c.id} (route change)", None))
        if cr.cross_one_sided_flow:
            items.append(("one_sided_flow", (c.id,), f"{name}: only one direction of {c.id} was "
                          f"captured (asymmetric routing?)", None))
        for kind, key, text, value in items:
            pattern = found.get((kind, key))
            if pattern is None:
                found[(kind, key)] = CrossPattern(kind=kind, description=text, connections=[c.id],
                                                  value=value)
            elif c.id not in pattern.connections:
                pattern.connections.append(c.id)
    return list(found.values())
