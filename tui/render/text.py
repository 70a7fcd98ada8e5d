"""Terminal report: findings first (one block per story), colour when writing to a TTY."""
from __future__ import annotations

import datetime as _dt

from engine.report_model import Report

from .common import baseline_line, dual_line, example, how_lines, idle_line, source_line
from .labels import LABELS

_COLORS = {"middle_device": "\033[1;31m", "endpoint": "\033[1;32m", "undetermined": "\033[1;33m",
           "head": "\033[1m", "dim": "\033[2m", "reset": "\033[0m"}
MAX_RESETS_LISTED = 10


def _c(text: str, key: str, color: bool) -> str:
    return f"{_COLORS[key]}{text}{_COLORS['reset']}" if color else text


def _when(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def render_text(report: Report, lang: str = "en", color: bool = False) -> str:
    L = LABELS[lang]
    out: list[str] = []
    n_resets = len(report.resets)
    out.append(_c(f"{L['title']}: {len(report.captures)} capture(s), {n_resets} RST, "
                  f"{len(report.findings)} {L['findings'].lower() if lang == 'en' else L['findings']}",
                  "head", color))
    out.append(f"{L['captures']}:")
    for cap in report.captures:
        out.append(f"  {cap.path}  [{cap.format}, {L['role']}: {cap.role}]  {cap.tcp_packets} TCP, "
                   f"{cap.rst_packets} RST, {cap.connections} {L['connection']}")
    if report.dual:
        d = report.dual
        off = d.get("clock_offset_s")
        out.append(f"{L['dual']}: {d.get('matched_connections')} matched"
                   + (f", clock offset {off:+.3f} s" if off is not None else "")
                   + (", NAT" if d.get("nat_detected") else ""))
    if not report.resets:
        out.append(L["no_resets"])
    for f in report.findings:
        r = example(report, f)
        out.append("")
        badge = _c(f"{L[f.origin]} ({f.origin_confidence:.2f})", f.origin, color)
        out.append(_c(f"{L['finding']} {f.id} ×{f.count}", "head", color) + f"  {badge}"
                   + (f"  {L['pattern']}: {f.pattern}" if f.pattern else ""))
        out.append(f"  {f.summary}")
        out.append(f"  {L['rst_source']}: {source_line(r, lang)}")
        out.append(f"  {L['baseline']}: {baseline_line(r, lang)}")
        idle = idle_line(r, lang)
        if idle:
            out.append(f"  {L['measured_idle']}: {idle}")
        dual = dual_line(r, lang)
        if dual:
            out.append(f"  {L['dual']}: {dual}")
        if r.trigger and r.trigger.excerpt:
            out.append(f"  {L['trigger']}: {r.trigger.length} B, {r.trigger.delta_s or 0:.3f} s "
                       f"before: {r.trigger.excerpt[:64]!s}")
        if f.diagnoses:
            out.append(f"  {L['diagnoses']}:")
            for d in f.diagnoses:
                out.append(f"    {d.confidence:.2f}  {d.id:<36} {d.title}")
        if r.evidence:
            out.append(f"  {L['evidence']}:")
            for e in r.evidence[:8]:
                out.append(f"    - {e.text}")
        if f.fixes:
            out.append(f"  {L['fixes']}:")
            for i, fix in enumerate(f.fixes, 1):
                out.append(f"    {i}. {fix.title}")
                out.extend(f"       {line}" for line in fix.text.splitlines())
        out.append(f"  {L['wireshark']}: {r.wireshark_filter}")
        listed = ", ".join(f"{rid}" for rid in f.reset_ids[:MAX_RESETS_LISTED])
        more = f" (+{f.count - MAX_RESETS_LISTED} {L['more']})" if f.count > MAX_RESETS_LISTED else ""
        out.append(_c(f"  {L['reset_list']}: {listed}{more}; {_when(f.first_time)}", "dim", color))
    if report.patterns:
        out.append("")
        out.append(_c(f"{L['patterns']}:", "head", color))
        out.extend(f"  - {p.description}" for p in report.patterns)
    if report.warnings:
        out.append("")
        out.append(f"{L['warnings']}:")
        out.extend(f"  - {w}" for w in report.warnings)
    return "\n".join(out) + "\n"


__all__ = ["render_text", "how_lines"]
