"""``rstsleuth analyze``: captures in, report out.

extract facts from one or two captures → dual-capture and cross-connection evidence → one
inference per run class → resets with verdicts (``reset_entry``), grouped into findings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from facts import cross as cross_mod
from facts import dual as dual_mod
from facts.evidence import DualEvidence
from facts.extract import Extraction, extract, no_cyclic_gc
from facts.fastmodel import present
from facts.fields import IDENTITY_FIELDS, connection_evidence, evidence_from_rst
from facts.models import RstEvent

from .conditions import compiled_evkey
from .kb import KnowledgeBase
from .report_build import build_findings
from .report_model import CaptureSummary, CrossPattern, KbInfo, Report, ResetOut
from .reset_entry import reset_outs

VERSION = "0.1.0"
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


def load_tracert(path: Optional[str]):
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


class Collected:
    """The captures read with their dual and cross evidence: everything ``gather`` makes
    but each reset's flat evidence, which :meth:`jobs` makes for any run of the resets (a
    forked worker makes its own slice's, engine.report_json), and the cross patterns."""

    def __init__(self, sides: list[Side], dual_summary: Optional[dict[str, Any]],
                 peer_ids: dict[str, str], crosses: list[dict]):
        self.sides, self.dual_summary, self.peer_ids = sides, dual_summary, peer_ids
        self.crosses = crosses  # per side: CrossEvidence by RST id
        self.resets = [(side, rst) for side in sides for rst in side.extraction.rsts]
        # Without a peer capture every reset of a side has one of two dual evidences,
        # shared by all the resets of that side whatever slice they are made in.
        self._plain_dual: list[dict] = [{} for _ in sides]
        self._patterns: Optional[list[CrossPattern]] = None

    @property
    def patterns(self) -> list[CrossPattern]:
        if self._patterns is None:
            self._patterns = [p for side, crosses in zip(self.sides, self.crosses)
                              for p in _cross_patterns(side.extraction, crosses)]
        return self._patterns

    def jobs(self, start: int = 0, stop: Optional[int] = None
             ) -> list[tuple[Side, RstEvent, dict[str, Any], DualEvidence]]:
        """(side, RST, flat evidence, dual evidence) of resets ``start`` to ``stop``."""
        compiled = compiled_evkey()
        out = []
        for side, rst in self.resets[start:stop]:
            dual = side.dual.get(rst.id)
            if dual is None:
                plain = self._plain_dual[side.index - 1]
                from_host = dual_mod.local_role_of_rst(rst, side.role)
                found = plain.get(from_host)
                if found is None:
                    made = DualEvidence(observed_at=side.role, rst_from_capture_host=from_host)
                    found = plain[from_host] = (made, present(made))
                dual, dual_items = found
            else:
                dual_items = present(dual)
            cr = self.crosses[side.index - 1].get(rst.id)
            out.append((side, rst, _evidence(rst, dual_items, cr, compiled), dual))
        return out

    def gathered(self) -> Gathered:
        return Gathered(self.sides, self.dual_summary, self.peer_ids, self.patterns,
                        self.jobs())


def _extracted(capture: Union[str, Extraction], progress) -> Extraction:
    return capture if isinstance(capture, Extraction) else extract(capture, progress=progress)


def gather(capture: Union[str, Extraction], peer: Union[str, Extraction, None], kb: KnowledgeBase,
           progress: Optional[Callable[[int, int], None]] = None) -> Gathered:
    """Read one or two captures (or take them already read, e.g. by ``facts.prefetch``) and
    build each reset's evidence (dual and cross included); shared by ``analyze`` and
    ``ask --capture``."""
    return collect(capture, peer, kb, progress).gathered()


def collect(capture: Union[str, Extraction], peer: Union[str, Extraction, None],
            kb: KnowledgeBase, progress: Optional[Callable[[int, int], None]] = None
            ) -> Collected:
    """``gather`` up to the per-reset evidence: the captures, their roles, the dual match
    and each side's cross-connection evidence."""
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
    crosses = [cross_mod.analyse(s.extraction.connections, s.extraction.rsts, defaults)
               for s in sides]
    return Collected(sides, dual_summary, peer_ids, crosses)


_NO_ITEMS: dict[str, Any] = {}


def _evidence(rst: RstEvent, dual_items: dict[str, Any], cross, compiled) -> dict[str, Any]:
    """One reset's flat evidence: its fields (``evidence_from_rst``), then the dual and cross
    evidence and both addresses; merged in C when engine._evkey (``compiled``) is given."""
    c = rst.connection
    ips = {"server_ip": c.server.ip, "client_ip": c.client.ip}
    if compiled is not None:
        return compiled.merged(rst.__dict__, IDENTITY_FIELDS, connection_evidence(c),
                               dual_items, cross.__dict__ if cross is not None else _NO_ITEMS,
                               ips)
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
    trace = load_tracert(tracert)  # a bad file fails before the capture is read
    return reason(kb, reasoner, gather(capture, peer, kb, progress), trace, lang, evidence_out)


def reason(kb: KnowledgeBase, reasoner, gathered: Gathered, trace, lang: str,
           evidence_out: Optional[dict[str, dict[str, Any]]] = None) -> Report:
    """The report on what ``gather`` found: one inference per reset, its entry, findings."""
    jobs = gathered.jobs
    inferences = reasoner.infer_many([ev for _, _, ev, _ in jobs], share=False)
    resets = entries(kb, gathered, jobs, inferences, trace, lang, {}, {})
    if evidence_out is not None:
        evidence_out.update((r.id, ev) for r, (_, _, ev, _) in zip(resets, jobs))
    findings = build_findings(kb, resets, inferences, lang)
    return report_of(kb, gathered, resets, findings, lang)


def entries(kb: KnowledgeBase, gathered: Union[Gathered, "Collected"], jobs: list, inferences: list, trace,
            lang: str, classes: dict, cache: dict) -> list[ResetOut]:
    """The report entries of ``jobs`` (some or all of the gathered resets') with their
    inferences; ``classes`` and ``cache``: ``reset_out``'s dicts, kept for one report."""
    return reset_outs(kb, jobs, inferences, trace, gathered.peer_ids, lang, classes, cache)


def report_of(kb: KnowledgeBase, gathered: Union[Gathered, "Collected"], resets: list[ResetOut],
              findings: list, lang: str) -> Report:
    sides = gathered.sides
    captures = [_capture_summary(s) for s in sides]
    warnings = [f"{s.extraction.capture.path}: {w}" for s in sides for w in s.extraction.capture.warnings]
    return Report(version=VERSION, lang=lang, kb=KbInfo(path=str(kb.path), rules=len(kb.rules)),
                  captures=captures, dual=gathered.dual_summary, resets=resets,
                  findings=findings, patterns=gathered.patterns, warnings=warnings)


def _capture_summary(side: Side) -> CaptureSummary:
    info = side.extraction.capture
    return CaptureSummary(path=info.path, format=info.format, role=side.role,
                          link_types=list(info.link_types), records=info.records,
                          tcp_packets=info.tcp_packets, rst_packets=info.rst_packets,
                          connections=len(side.extraction.connections),
                          first_time=info.first_time, last_time=info.last_time,
                          warnings=list(info.warnings))


def _cross_patterns(ex: Extraction, crosses: dict) -> list[CrossPattern]:
    """One pattern per (kind, what it is about), listing every connection that shows it.
    Each pattern's text is made from the first reset that shows it; thousands of resets
    can show one pattern (every refused SYN to a port), so the rest only add their
    connection, checked against a set."""
    found: dict[tuple, CrossPattern] = {}
    listed: dict[tuple, set] = {}
    name = ex.capture.path

    def add(kind: str, key: tuple, c, describe, value) -> None:
        at = (kind, key)
        members = listed.get(at)
        if members is None:
            found[at] = CrossPattern(kind=kind, description=describe(), connections=[c.id],
                                     value=value)
            listed[at] = {c.id}
        elif c.id not in members:
            members.add(c.id)
            found[at].connections.append(c.id)

    for rst in ex.rsts:
        cr = crosses.get(rst.id)
        if cr is None:
            continue
        c = rst.connection
        if cr.cross_reconnect_cycle:
            add("reconnect_cycle", (c.client.ip, c.server.ip, c.server.port), c,
                lambda: f"{name}: connections {c.client.ip} → {c.server.ip}:{c.server.port} are "
                        f"reset in a cycle of {cr.cross_cycle_period_s:.1f} s: that period is the timeout",
                cr.cross_cycle_period_s)
        if (cr.cross_resets_same_second or 0) >= 5:
            add("reset_burst", (int(rst.time),), c,
                lambda: f"{name}: {cr.cross_resets_same_second} connections reset within one second "
                        f"(load-balancer failover / health check, or a device flushing its table)",
                float(cr.cross_resets_same_second))
        if (cr.cross_port_syn_rejects or 0) >= 3:
            add("rate_limited" if cr.cross_rejects_above_rate else "port_rejects_syn",
                (c.server.ip, c.server.port), c,
                lambda: f"{name}: {cr.cross_port_syn_rejects} SYNs to {c.server.ip}:{c.server.port} "
                        f"answered by RST, {cr.cross_port_syn_accepts} accepted"
                        + (" — only above a connection rate" if cr.cross_rejects_above_rate else ""),
                float(cr.cross_port_syn_rejects))
        if cr.cross_source_port_exhaustion:
            add("source_port_exhaustion", (c.client.ip,), c,
                lambda: f"{name}: {c.client.ip} cycles through its source ports (NAT / ephemeral "
                        f"port exhaustion)", None)
        if cr.cross_ttl_shift:
            add("ttl_shift", (c.id,), c,
                lambda: f"{name}: TTL of normal packets shifted mid-connection in {c.id} "
                        f"(route change)", None)
        if cr.cross_one_sided_flow:
            add("one_sided_flow", (c.id,), c,
                lambda: f"{name}: only one direction of {c.id} was captured (asymmetric "
                        f"routing?)", None)
    return list(found.values())
