"""Words of the interview (English and Chinese): questions, WHY / HOW / WHY-NOT replies, help.

KB texts (questions, rule titles and rationales) come from the KB in the chosen language; the
fixed phrases are here so every front end (CLI, TUI) says the same thing.
"""
from __future__ import annotations

from typing import Any

from .conditions import render_value

PHRASES = {
    "en": {
        "yes_no": "yes / no / unknown", "number": "a number", "duration": "a duration, e.g. 90s, 30m, 1h30m, 1:00:00",
        "choice": "a number or a value", "text": "paste the output, then a line with a single '.'",
        "unit": "unit", "prompt_help": "(why, how FIELD, back, unknown, quit, help)",
        "why_rule": "WHY: this question serves rule {rule} — {title}",
        "why_climb": "WHY (level {level}): rule {prev} concludes {concl}, a premise of rule {rule} — {title}",
        "why_still": "  it still needs: {needs}",
        "why_goal": "WHY (level {level}): {concl} is what the interview is settling ({kind}: the origin and the diagnosis are the outcome).",
        "why_top": "WHY: there is nothing higher — the interview settles who sent the RST (origin) and which device and why (diagnosis).",
        "why_param": "WHY: the diagnosis is settled; the fixes need {param} to give real numbers (keepalive, timeouts) or the per-application steps.",
        "rationale": "  because: {text}",
        "how_known": "{field} = {value}: {source}",
        "how_unknown": "{field} is not known{more}",
        "how_answered_unknown": " (answered 'unknown' to {question})",
        "src_answer": "you answered {question} ({text})", "src_paste": "from the {parser} output you pasted for {question}",
        "src_capture": "measured in the capture ({detail})",
        "how_concl": "{concl}: cf {cf:+.2f}{title}",
        "how_none": "  not concluded (yet): no rule for it has fired; try why-not {concl}",
        "whynot_fired": "  {rule}: fired",
        "whynot_fail": "  {rule}: fails at {cond} — {field} is {actual}",
        "whynot_fail_c": "  {rule}: fails at {cond} — {concl} has cf {cf:+.2f}",
        "whynot_head": "WHY NOT {concl} (cf {cf:+.2f}):",
        "whynot_none": "  no rule concludes {concl}",
        "back_done": "Withdrawn; the question is asked again.", "back_none": "Nothing to go back to.",
        "how_usage": "usage: how FIELD_OR_CONCLUSION (e.g. how ttl_matches_baseline, how origin.middle_device)",
        "whynot_usage": "usage: why-not CONCLUSION (e.g. why-not firewall.idle_timeout)",
        "finished_commands": "the interview is over: how ID, why-not ID or quit",
        "help": ["Answer the question, or type:",
                 "  why          the rule this question serves (again: the rule above it)",
                 "  how X        how fact X (a field or question id) is known, or how conclusion X was reached",
                 "  back         change the previous answer",
                 "  unknown      you do not know (the verdict uses what is known)",
                 "  quit         stop now and show the verdict",
                 "After the verdict: how ID, why-not ID, quit."],
        "unknown_word": "unknown",
    },
    "zh": {
        "yes_no": "是 / 否 / 不知道", "number": "一个数字", "duration": "时长,例如 90s、30m、1h30m、1:00:00",
        "choice": "编号或取值", "text": "粘贴输出,然后单独一行输入 '.'",
        "unit": "单位", "prompt_help": "(why、how 字段、back、unknown、quit、help)",
        "why_rule": "为什么:该问题服务于规则 {rule} — {title}",
        "why_climb": "为什么(第 {level} 层):规则 {prev} 得出 {concl},它是规则 {rule} 的前提 — {title}",
        "why_still": "  仍需要:{needs}",
        "why_goal": "为什么(第 {level} 层):{concl} 正是本次问诊要确定的({kind}:来源与诊断就是结论)。",
        "why_top": "为什么:没有更上层了 — 问诊要确定谁发送了 RST(来源),以及是哪种设备、什么原因(诊断)。",
        "why_param": "为什么:诊断已确定;解决方案需要 {param} 才能给出具体数值(keepalive、超时)或针对应用的步骤。",
        "rationale": "  依据:{text}",
        "how_known": "{field} = {value}:{source}",
        "how_unknown": "{field} 未知{more}",
        "how_answered_unknown": "(对 {question} 回答了“不知道”)",
        "src_answer": "您对 {question} 的回答({text})", "src_paste": "来自您为 {question} 粘贴的 {parser} 输出",
        "src_capture": "在抓包中测得({detail})",
        "how_concl": "{concl}:cf {cf:+.2f}{title}",
        "how_none": "  尚未得出:没有相关规则触发;可尝试 why-not {concl}",
        "whynot_fired": "  {rule}:已触发",
        "whynot_fail": "  {rule}:在 {cond} 处不成立 — {field} 为 {actual}",
        "whynot_fail_c": "  {rule}:在 {cond} 处不成立 — {concl} 的 cf 为 {cf:+.2f}",
        "whynot_head": "为什么不是 {concl}(cf {cf:+.2f}):",
        "whynot_none": "  没有规则得出 {concl}",
        "back_done": "已撤回;将重新提问。", "back_none": "没有可撤回的回答。",
        "how_usage": "用法:how 字段或结论(例如 how ttl_matches_baseline、how origin.middle_device)",
        "whynot_usage": "用法:why-not 结论(例如 why-not firewall.idle_timeout)",
        "finished_commands": "问诊已结束:可输入 how ID、why-not ID 或 quit",
        "help": ["回答问题,或输入:",
                 "  why          该问题服务的规则(再次输入:上一层规则)",
                 "  how X        事实 X(字段或问题 id)是如何得知的,或结论 X 是如何得出的",
                 "  back         修改上一个回答",
                 "  unknown      不知道(结论基于已知信息)",
                 "  quit         立即结束并显示结论",
                 "结论之后:how ID、why-not ID、quit。"],
        "unknown_word": "不知道",
    },
}


def t(key: str, lang: str, **kw: Any):
    phrase = PHRASES.get(lang, PHRASES["en"])[key]
    return phrase.format(**kw) if kw else phrase


def _txt(text, lang: str) -> str:
    return "" if text is None else (getattr(text, lang, None) or text.en)


def question_lines(question, lang: str, number: int | None = None) -> list[str]:
    """The question as shown: text, answer form (choices listed), help."""
    head = f"[{number}] " if number else ""
    lines = [f"{head}{_txt(question.text, lang)}  ({question.id})"]
    if question.answer == "choice":
        lines += [f"   {i}. {c.value}: {_txt(c.label, lang)}" for i, c in enumerate(question.choices, 1)]
    form = t(question.answer, lang)
    if question.unit:
        form += f"; {t('unit', lang)}: {question.unit}"
    lines.append(f"   → {form}  {t('prompt_help', lang)}")
    if question.help:
        lines.append(f"   ({_txt(question.help, lang)})")
    return lines


def render_why(interview, step) -> list[str]:
    lang = interview.lang
    if step.parameter:
        return [t("why_param", lang, param=step.parameter)]
    if step.goal and step.conclusion is None:
        return [t("why_top", lang)]
    if step.goal:
        return [t("why_goal", lang, level=step.level, concl=step.conclusion,
                  kind=step.needs[0] if step.needs else "")]
    if step.level == 1:
        lines = [t("why_rule", lang, rule=step.rule_id, title=_txt(step.title, lang))]
    else:
        chain = interview.why_chain()
        prev = chain[step.level - 2]
        lines = [t("why_climb", lang, level=step.level, prev=prev.rule_id, concl=prev.conclusion,
                   rule=step.rule_id, title=_txt(step.title, lang))]
    lines.append(t("rationale", lang, text=_txt(step.rationale, lang)))
    if step.needs:
        lines.append(t("why_still", lang, needs=", ".join(step.needs)))
    return lines


def _value(value: Any) -> str:
    return render_value(value)


def render_how(interview, result) -> list[str]:
    from .explain import HowNode
    lang = interview.lang
    if isinstance(result, HowNode):
        return how_tree_lines(interview, result.model_dump(), lang)
    if not result.known:
        more = (t("how_answered_unknown", lang, question=result.question) if result.question else "")
        return [t("how_unknown", lang, field=result.field, more=more)]
    if result.source == "capture":
        source = t("src_capture", lang, detail=result.detail or "")
    elif result.source == "paste":
        source = t("src_paste", lang, parser=result.detail, question=result.question)
    else:
        step = next((s for s in interview.steps if s.question == result.question), None)
        source = t("src_answer", lang, question=result.question,
                   text=repr(step.answer) if step else "")
    return [t("how_known", lang, field=result.field, value=_value(result.value), source=source)]


def how_tree_lines(interview, tree: dict, lang: str, depth: int = 0) -> list[str]:
    pad = "  " * depth
    title = tree.get("title") or {}
    title_text = f" — {title.get(lang) or title.get('en')}" if title else ""
    out = [pad + t("how_concl", lang, concl=tree.get("conclusion"), cf=float(tree.get("cf", 0)),
                   title=title_text)]
    if not tree.get("supports"):
        out.append(pad + t("how_none", lang, concl=tree.get("conclusion")))
    for support in tree.get("supports", []):
        rationale = support.get("rationale") or {}
        out.append(f"{pad}  ← {support.get('rule_id')} (cf {float(support.get('cf', 0)):+.2f}): "
                   f"{rationale.get(lang) or rationale.get('en') or ''}")
        for premise in support.get("premises", []):
            if "supports" in premise:
                out.extend(how_tree_lines(interview, premise, lang, depth + 2))
            else:
                fact = interview.how_fact(premise.get("field"))
                origin = {"capture": "capture", "paste": "paste", "answer": fact.question}.get(
                    fact.source or "", "")
                out.append(f"{pad}      · {premise.get('field')} {premise.get('op')} "
                           f"{_value(premise.get('expected'))}: {_value(premise.get('actual'))}"
                           + (f"  [{origin}]" if origin else ""))
    return out


def render_whynot(interview, conclusion: str, results) -> list[str]:
    lang = interview.lang
    lines = [t("whynot_head", lang, concl=conclusion, cf=interview.inference.cf(conclusion))]
    if not results:
        lines.append(t("whynot_none", lang, concl=conclusion))
    lines += _whynot_lines(results, lang, 0)
    return lines


def _whynot_lines(results, lang: str, depth: int) -> list[str]:
    out = []
    pad = "    " * depth
    for w in results:
        if w.fired:
            out.append(pad + t("whynot_fired", lang, rule=w.rule_id))
        elif w.field:
            actual = t("unknown_word", lang) if w.actual == "unknown" else _value(w.actual)
            out.append(pad + t("whynot_fail", lang, rule=w.rule_id, cond=w.condition,
                               field=w.field, actual=actual))
        else:
            out.append(pad + t("whynot_fail_c", lang, rule=w.rule_id, cond=w.condition,
                               concl=w.concluded, cf=w.concluded_cf or 0.0))
        out += _whynot_lines(w.nested, lang, depth + 1)
    return out


def help_lines(interview) -> list[str]:
    return list(t("help", interview.lang))
