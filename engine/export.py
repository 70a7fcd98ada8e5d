"""Mermaid exports regenerated from the knowledge base.

``mindmap``: the scenario map's sub-type mind map. The layout (branch labels, their order and
the intermediate nodes) comes from each family file's ``meta.mindmap``; the leaves are the
sub-type conclusions' ``mindmap`` texts, with line breaks written as ``<br/>``.

``flowchart``: the troubleshooting flowchart: dual capture and TTL analysis from the origin
rules, one branch per timing pattern (its title, the sub-types rules derive from it, its
checks and its fixes).
"""
from __future__ import annotations

import os
import re
from typing import Any

from .kb import KnowledgeBase
from .kb_model import Concluded, Test
from .loader import Locator, read_kb
from .validate import walk_conditions

DEFAULT_ROOT = "Connection Reset\nby Middle Device"
PATTERN_ORDER = ("pattern.idle_timeout", "pattern.syn_rejected", "pattern.payload_triggered",
                 "pattern.during_transfer", "pattern.unpredictable", "pattern.after_close")


def _br(text: str) -> str:
    return text.replace("\n", "<br/>")


def _label(text: str) -> str:
    """A quoted Mermaid flowchart label (quotes escaped, line breaks as <br/>)."""
    return '"' + _br(text).replace('"', "#quot;") + '"'


def mindmap_layout(kb: KnowledgeBase, loc: Locator, lang: str = "en"
                   ) -> tuple[str, list[dict[str, Any]]]:
    """(root text, [{branch, order, nodes: [{label, conclusions}]}]) from the files' meta
    (``branch_zh``/``label_zh``/``mindmap_root_zh`` for Chinese); sub-types no layout mentions
    get a branch per family with their titles as nodes."""
    suffix = "_zh" if lang == "zh" else ""
    root, branches, placed = DEFAULT_ROOT, [], set()
    for meta in loc.meta.values():
        if isinstance(meta.get("mindmap_root" + suffix) or meta.get("mindmap_root"), str):
            root = meta.get("mindmap_root" + suffix) or meta["mindmap_root"]
        layout = meta.get("mindmap")
        if isinstance(layout, dict) and isinstance(layout.get("nodes"), list):
            nodes = [{"label": n.get("label" + suffix) or n.get("label", "?"),
                      "conclusions": n.get("conclusions") or []}
                     for n in layout["nodes"] if isinstance(n, dict)]
            branches.append({"branch": str(layout.get("branch" + suffix) or layout.get("branch", "?")),
                             "order": layout.get("order", 999), "nodes": nodes})
            for node in nodes:
                placed.update(node.get("conclusions") or [])
    leftovers: dict[str, list] = {}
    for c in kb.conclusions.values():
        if c.kind == "subtype" and c.id not in placed and c.mindmap:
            leftovers.setdefault(c.family or "other", []).append(c)
    for family, items in sorted(leftovers.items()):
        branches.append({"branch": family, "order": 1000, "nodes": [
            {"label": getattr(c.title, lang), "conclusions": [c.id]} for c in items]})
    branches.sort(key=lambda b: (b["order"] if isinstance(b["order"], (int, float)) else 999,
                                 b["branch"]))
    return root, branches


def mindmap(kb: KnowledgeBase, loc: Locator, lang: str = "en") -> str:
    root, branches = mindmap_layout(kb, loc, lang)
    lines = ["mindmap", f"  root(({_br(root)}))"]
    for branch in branches:
        lines.append(f"    {branch['branch']}")
        for node in branch["nodes"]:
            lines.append(f"      {node.get('label', '?')}")
            for cid in node.get("conclusions") or []:
                conclusion = kb.conclusions.get(cid)
                for leaf in (conclusion.mindmap if conclusion else []):
                    lines.append(f"        {_br(getattr(leaf, lang))}")
    return "\n".join(lines) + "\n"


def _fields(rule) -> set[str]:
    return {c.field for _, c in walk_conditions(rule.when, ()) if isinstance(c, Test)}


def _premises(rule) -> set[str]:
    return {c.concluded for _, c in walk_conditions(rule.when, ()) if isinstance(c, Concluded)}


def _short(text: str, limit: int = 60) -> str:
    first = re.split(r"(?<=[.])\s", text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


# The flowchart's own connecting labels (everything else comes from the KB's texts).
_FLOW = {
    "en": {"start": "TCP RST received\nConnection drops unexpectedly", "step1": "Step 1: ",
           "did_send": "Did the claimed sender's own capture\nshow it sending the RST?",
           "ttl": "Step 2: TTL analysis\nRST TTL vs the sender's normal packets",
           "no_peer": "No second capture", "match": "TTL values match?",
           "different": "TTL different", "same": "TTL same", "hop": "Map to tracert output",
           "timing": "Step 3: When does the RST occur?", "fix": "Fix: "},
    "zh": {"start": "收到 TCP RST\n连接意外断开", "step1": "第 1 步:",
           "did_send": "声称发送方自己的抓包中\n是否有它发出的 RST?",
           "ttl": "第 2 步:TTL 分析\n对比 RST 与发送方正常包的 TTL",
           "no_peer": "没有另一端的抓包", "match": "TTL 是否相同?",
           "different": "TTL 不同", "same": "TTL 相同", "hop": "对照 tracert 输出",
           "timing": "第 3 步:RST 何时出现?", "fix": "修复:"},
}


def flowchart(kb: KnowledgeBase, lang: str = "en") -> str:
    """The troubleshooting flowchart, derived from the origin and pattern rules."""
    t = lambda text: getattr(text, lang)  # noqa: E731
    w = _FLOW.get(lang, _FLOW["en"])
    c = kb.conclusions
    out = ["flowchart TD"]
    node = lambda name, text, shape="[]": out.append(  # noqa: E731
        f"    {name}{shape[0]}{_label(text)}{shape[1]}")
    edge = lambda a, b, text=None: out.append(  # noqa: E731
        f"    {a} -->|{_label(text)}| {b}" if text else f"    {a} --> {b}")

    node("Start", w["start"])
    if "fix.dual_capture" in kb.fixes:
        node("DualCapture", w["step1"] + t(kb.fixes["fix.dual_capture"].title))
    else:
        node("DualCapture", w["step1"] + "Capture on BOTH ends")
    edge("Start", "DualCapture")
    node("DidSend", w["did_send"], "{}")
    edge("DualCapture", "DidSend")
    dual_rules = [r for r in kb.rules if "dual_peer_sent_rst" in _fields(r) and r.conclude.cf > 0]
    for rule in dual_rules:
        target = "EndpointRST" if rule.conclude.id == "origin.endpoint" else "DualProof"
        edge("DidSend", target, t(rule.title))
    endpoint_subtypes = [t(x.title) for x in c.values() if x.kind == "subtype" and x.family == "endpoint"]
    if "origin.endpoint" in c:
        node("EndpointRST", t(c["origin.endpoint"].title) + "\n" + " / ".join(endpoint_subtypes))
    if "finding.dual_capture_proof" in c:
        node("DualProof", t(c["finding.dual_capture_proof"].title))
        edge("DualProof", "MiddleConfirmed")
    if "origin.middle_device" in c:
        node("MiddleConfirmed", t(c["origin.middle_device"].title))
    node("TTLAnalysis", w["ttl"])
    edge("MiddleConfirmed", "TTLAnalysis")
    edge("DidSend", "TTLAnalysis", w["no_peer"])
    node("TTLMatch", w["match"], "{}")
    edge("TTLAnalysis", "TTLMatch")
    if "finding.ttl_anomaly" in c:
        node("TTLCalc", t(c["finding.ttl_anomaly"].checks[0]) if c["finding.ttl_anomaly"].checks
             else t(c["finding.ttl_anomaly"].title))
        edge("TTLMatch", "TTLCalc", w["different"])
        hop = c.get("finding.hop_located")
        node("HopMap", t(hop.checks[0]) if hop and hop.checks else w["hop"])
        edge("TTLCalc", "HopMap")
        edge("HopMap", "Timing")
    if "finding.ttl_consistent" in c:
        note = c["finding.ttl_consistent"]
        node("TimingNote", t(note.checks[0]) if note.checks else t(note.title))
        edge("TTLMatch", "TimingNote", w["same"])
        edge("TimingNote", "Timing")
    node("Timing", w["timing"], "{}")
    patterns = [p for p in PATTERN_ORDER if p in c] + sorted(
        x.id for x in c.values() if x.kind == "pattern" and x.id not in PATTERN_ORDER)
    for index, pid in enumerate(patterns, 1):
        pattern = c[pid]
        derived = sorted({r.conclude.id for r in kb.rules if pid in _premises(r)
                          and r.conclude.id in c and c[r.conclude.id].kind == "subtype"})
        names = " / ".join(t(c[d].title) for d in derived)
        node(f"P{index}", t(pattern.title) + ("\n→ " + names if names else ""))
        edge("Timing", f"P{index}", _short(t(pattern.title)))
        previous = f"P{index}"
        for j, check in enumerate(pattern.checks, 1):
            node(f"P{index}C{j}", _short(t(check), 90))
            edge(previous, f"P{index}C{j}")
            previous = f"P{index}C{j}"
        fixes = [t(kb.fixes[f].title) for f in pattern.fixes if f in kb.fixes]
        if fixes:
            node(f"P{index}F", w["fix"] + "\n".join(fixes))
            edge(previous, f"P{index}F")
            out.append(f"    style P{index}F fill:#f39c12,stroke:#e67e22,color:#fff")
    out.append("    style Start fill:#ff6b6b,stroke:#c0392b,color:#fff")
    out.append("    style MiddleConfirmed fill:#2ecc71,stroke:#27ae60,color:#fff")
    out.append("    style EndpointRST fill:#95a5a6,stroke:#7f8c8d,color:#fff")
    return "\n".join(out) + "\n"


def export(what: str, path: str | os.PathLike | None = None, lang: str = "en") -> str:
    """``what`` is ``mindmap`` or ``flowchart``; the KB at ``path`` must load cleanly."""
    from .loader import load_kb

    kb = load_kb(path)  # raises KBError on an invalid KB
    if what == "mindmap":
        _, _, loc = read_kb(path)  # the layout lives in the files' meta
        return mindmap(kb, loc, lang)
    if what == "flowchart":
        return flowchart(kb, lang)
    raise ValueError(f"unknown export {what!r}")


def mindmap_tree(text: str) -> list[tuple[int, str]]:
    """(indent, text) per line of a Mermaid mindmap block, for comparing two mind maps."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.strip() == "mindmap":
            continue
        out.append((len(line) - len(line.lstrip()), line.strip()))
    return out


__all__ = ["mindmap", "flowchart", "export", "mindmap_layout", "mindmap_tree"]
