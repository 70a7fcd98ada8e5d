"""Markdown report for a ticket: the same content as the text report, with HOW trees."""
from __future__ import annotations

from engine.report_model import Report

from .common import baseline_line, dual_line, example, how_lines, idle_line, source_line
from .labels import LABELS


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, lang: str = "en") -> str:
    L = LABELS[lang]
    out = [f"# {L['title']}", "", f"## {L['captures']}", "",
           "| file | format | " + L["role"] + " | TCP | RST |", "|---|---|---|---|---|"]
    for cap in report.captures:
        out.append(f"| `{_cell(cap.path)}` | {cap.format} | {cap.role} | {cap.tcp_packets} | {cap.rst_packets} |")
    if not report.resets:
        out += ["", L["no_resets"]]
    out += ["", f"## {L['findings']}"]
    for f in report.findings:
        r = example(report, f)
        out += ["", f"### {f.id}: {L[f.origin]} ({L['confidence']} {f.origin_confidence:.2f}) ×{f.count}",
                "", f.summary, ""]
        out.append(f"- **{L['origin']}**: `{f.origin}`")
        if f.pattern:
            out.append(f"- **{L['pattern']}**: `{f.pattern}`")
        out.append(f"- **{L['rst_source']}**: {source_line(r, lang)}")
        out.append(f"- **{L['baseline']}**: {baseline_line(r, lang)}")
        idle = idle_line(r, lang)
        if idle:
            out.append(f"- **{L['measured_idle']}**: {idle}")
        dual = dual_line(r, lang)
        if dual:
            out.append(f"- **{L['dual']}**: {dual}")
        if r.trigger and r.trigger.excerpt:
            out.append(f"- **{L['trigger']}**: `{_cell(r.trigger.excerpt[:64])}`")
        out.append(f"- **{L['wireshark']}**: `{r.wireshark_filter}`")
        if f.diagnoses:
            out += ["", f"**{L['diagnoses']}**", "", "| id | " + L["confidence"] + " | |", "|---|---|---|"]
            out += [f"| `{d.id}` | {d.confidence:.2f} | {_cell(d.title)} |" for d in f.diagnoses]
        if r.evidence:
            out += ["", f"**{L['evidence']}**", ""]
            out += [f"- {_cell(e.text)}" for e in r.evidence]
        if f.fixes:
            out += ["", f"**{L['fixes']}**", ""]
            for i, fix in enumerate(f.fixes, 1):
                out += [f"{i}. **{fix.title}**", "", "   ```", *[f"   {x}" for x in fix.text.splitlines()], "   ```"]
        if f.how:
            out += ["", "<details><summary>" + L["how"] + "</summary>", "", "```"]
            for tree in f.how:
                out += how_lines(tree.model_dump(), lang)
            out += ["```", "", "</details>"]
        out += ["", f"{L['reset_list']}: " + ", ".join(f"`{x}`" for x in f.reset_ids[:50])
                + (" …" if f.count > 50 else "")]
    if report.patterns:
        out += ["", f"## {L['patterns']}", ""] + [f"- {_cell(p.description)}" for p in report.patterns]
    if report.warnings:
        out += ["", f"## {L['warnings']}", ""] + [f"- {_cell(w)}" for w in report.warnings]
    return "\n".join(out) + "\n"
