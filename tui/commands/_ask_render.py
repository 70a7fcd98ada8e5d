"""Text and Markdown renderings of an interview verdict (``rstsleuth ask``), en and zh.

The shared words (origin, diagnoses, fixes …) come from the report renderers' labels so that
``ask`` and ``analyze`` say the same thing; the HOW trees use the same indented form."""
from __future__ import annotations

from tui.render.common import how_lines
from tui.render.labels import LABELS

ASK = {
    "en": {"title": "rstsleuth ask — verdict", "asked": "questions answered", "settled":
           "settled: no remaining question could change the origin or the top diagnosis",
           "quit": "stopped early: the verdict uses what is known so far", "facts": "Facts",
           "capture": "Capture", "notes": "Notes", "none_diag": "no diagnosis reached yet",
           "src": {"answer": "answer", "paste": "pasted", "capture": "capture"},
           "explain": "(type 'how {id}' or 'why-not ID' at the prompt; --format markdown has the HOW trees)"},
    "zh": {"title": "rstsleuth ask — 结论", "asked": "已回答问题数", "settled":
           "已确定:剩余问题都无法改变来源或首要诊断", "quit": "提前结束:结论基于目前已知的信息",
           "facts": "事实", "capture": "抓包", "notes": "备注", "none_diag": "尚未得出诊断",
           "src": {"answer": "回答", "paste": "粘贴", "capture": "抓包"},
           "explain": "(在提示符处输入 'how {id}' 或 'why-not ID';--format markdown 含 HOW 推理树)"},
}


def _fact(f, lang: str) -> str:
    src = ASK[lang]["src"][f.source]
    where = f.question or f.detail or ""
    return f"{f.field} = {f.value!r}  ({src}{': ' + where if where else ''})"


def render_text(v, lang: str = "en") -> str:
    L, A = LABELS[lang], ASK[lang]
    out = ["", A["title"], f"{L['origin']}: {L[v.origin]} ({L['confidence']} {v.origin_confidence:.2f})"]
    if v.pattern:
        out.append(f"{L['pattern']}: {v.pattern}")
    out.append(f"{A['asked']}: {v.questions_asked}; {A[v.stopped]}")
    if v.capture:
        out.append(f"{A['capture']}: {v.capture}")
    out.append(f"{L['diagnoses']}:")
    if not v.diagnoses:
        out.append(f"  {A['none_diag']}")
    for d in v.diagnoses:
        out.append(f"  {d.confidence:.2f}  {d.id:<36} {d.title}")
    if v.evidence:
        out.append(f"{L['evidence']}:")
        out += [f"  - {e.text}" for e in v.evidence]
    if v.fixes:
        out.append(f"{L['fixes']}:")
        for i, fix in enumerate(v.fixes, 1):
            out.append(f"  {i}. {fix.title}")
            out += [f"     {line}" for line in fix.text.splitlines()]
    told = [f for f in v.facts if f.source != "capture"]  # capture facts: see Evidence
    if told:
        out.append(f"{A['facts']}:")
        out += [f"  - {_fact(f, lang)}" for f in told][:40]
    if v.top_diagnosis:
        out.append(A["explain"].format(id=v.top_diagnosis.id))
    if v.notes:
        out.append(f"{A['notes']}:")
        out += [f"  - {n}" for n in v.notes]
    return "\n".join(out) + "\n"


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(v, lang: str = "en") -> str:
    L, A = LABELS[lang], ASK[lang]
    out = [f"# {A['title']}", "", f"- **{L['origin']}**: `{v.origin}` ({L['confidence']} "
           f"{v.origin_confidence:.2f})"]
    if v.pattern:
        out.append(f"- **{L['pattern']}**: `{v.pattern}`")
    out.append(f"- **{A['asked']}**: {v.questions_asked} ({A[v.stopped]})")
    if v.capture:
        out.append(f"- **{A['capture']}**: `{_cell(v.capture)}`")
    out += ["", f"## {L['diagnoses']}", ""]
    if v.diagnoses:
        out += ["| id | " + L["confidence"] + " | |", "|---|---|---|"]
        out += [f"| `{d.id}` | {d.confidence:.2f} | {_cell(d.title)} |" for d in v.diagnoses]
    else:
        out.append(A["none_diag"])
    if v.evidence:
        out += ["", f"## {L['evidence']}", ""] + [f"- {_cell(e.text)}" for e in v.evidence]
    if v.fixes:
        out += ["", f"## {L['fixes']}", ""]
        for i, fix in enumerate(v.fixes, 1):
            out += [f"{i}. **{fix.title}**", "", "   ```", *[f"   {x}" for x in fix.text.splitlines()],
                    "   ```"]
    if v.facts:
        out += ["", f"## {A['facts']}", "", "| field | value | source |", "|---|---|---|"]
        out += [f"| `{f.field}` | `{_cell(repr(f.value))}` | {A['src'][f.source]} "
                f"{_cell(f.question or f.detail or '')} |" for f in v.facts][:80]
    if v.how:
        out += ["", "<details><summary>" + L["how"] + "</summary>", "", "```"]
        for tree in v.how:
            out += how_lines(tree.model_dump(), lang)
        out += ["```", "", "</details>"]
    if v.notes:
        out += ["", f"## {A['notes']}", ""] + [f"- {_cell(n)}" for n in v.notes]
    return "\n".join(out) + "\n"
