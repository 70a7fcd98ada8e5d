"""Facts about a reset phrased once, shared by the text and Markdown renderers."""
from __future__ import annotations

from engine.report_model import Finding, Report, ResetOut

from .labels import LABELS


def source_line(r: ResetOut, lang: str) -> str:
    L = LABELS[lang]
    s = r.rst_source
    line = (f"TTL {s.ttl} ({L['initial']} {s.initial_ttl}, {L['routers']} {s.decrements} "
            f"→ {L['hop']} {s.tracert_hop}")
    if s.tracert_address or s.tracert_name:
        line += f": {s.tracert_name or ''} [{s.tracert_address or '?'}]".replace(" [", " [", 1)
    return line + ")"


def baseline_line(r: ResetOut, lang: str) -> str:
    L = LABELS[lang]
    b = r.baseline
    if b.ttl is None:
        return L["none"]
    where = L["from_conn"] if b.source == "connection" else L["from_host"]
    values = f"; {', '.join(map(str, b.values))}" if len(b.values) > 1 else ""
    return (f"TTL {b.ttl} ({L['initial']} {b.initial_ttl}, {L['routers']} {b.decrements}; "
            f"{where}{values})")


def idle_line(r: ResetOut, lang: str) -> str | None:
    if r.measured_idle_s is None:
        return None
    L = LABELS[lang]
    line = f"{r.measured_idle_s:.1f} s"
    if r.idle_matches:
        line += f" — {L['matches']} {', '.join(r.idle_matches)}"
    return line


def dual_line(r: ResetOut, lang: str) -> str | None:
    if r.dual is None or r.dual.verdict == "no_peer_capture":
        return None
    return LABELS[lang]["dual_verdict"][r.dual.verdict]


def example(report: Report, finding: Finding) -> ResetOut:
    for r in report.resets:
        if r.id == finding.example_reset:
            return r
    raise KeyError(finding.example_reset)


def how_lines(tree: dict, lang: str, depth: int = 0, limit: int = 40) -> list[str]:
    """Indented HOW tree: conclusion ← rule (cf): premises."""
    pad = "  " * depth
    out = [f"{pad}{tree.get('conclusion')} (cf {float(tree.get('cf', 0)):.2f})"]
    for support in tree.get("supports", []):
        rationale = support.get("rationale") or {}
        text = rationale.get(lang) or rationale.get("en") or ""
        out.append(f"{pad}  ← {support.get('rule_id')} (cf {float(support.get('cf', 0)):.2f}): {text}")
        for premise in support.get("premises", []):
            if "supports" in premise:
                out.extend(how_lines(premise, lang, depth + 2, limit))
            else:
                out.append(f"{pad}      · {premise.get('field')} {premise.get('op')} "
                           f"{premise.get('expected')!r}: {premise.get('actual')!r}")
        if len(out) > limit:
            out.append(f"{pad}  …")
            break
    return out
