"""Labels of the TUI's own texts (the report's fixed labels come from tui.render.labels)."""
from __future__ import annotations

from typing import Any

from ..render.labels import LABELS

TUI = {
    "en": {
        "reset": "reset", "time": "time", "conn": "connection", "claimed": "claimed",
        "conf": "conf", "subtype": "top sub-type", "ttl": "TTL", "hop": "hop",
        "filter_placeholder": "filter: words or origin:… pattern:… sub:… (e.g. origin:middle sub:firewall)",
        "shown": "{shown} of {total} resets", "no_capture": "No capture loaded: start the interview (F3).",
        "loading": "analysing…", "ladder": "Packets around the reset (as captured at the {side})",
        "client": "client", "server": "server", "middle": "middle device",
        "forged": "forged RST from hop {hop}", "no_packets": "no packets of this connection found",
        "copied": "copied to the clipboard", "nothing_selected": "select a reset first",
        "how_title": "HOW (justification)", "why_not_title": "WHY-NOT",
        "why_not_prompt": "pick a sub-type", "what_if_title": "WHAT-IF",
        "what_if_placeholder": "field=value … (e.g. ttl_matches_baseline=true)",
        "fired": "fired", "fails": "first failing condition", "actual": "actual",
        "no_rule": "no rule concludes it", "before": "before", "after": "after",
        "changed": "changed", "unknown_field": "unknown field: {name}",
        "bad_change": "write field=value (e.g. ttl_delta=0)", "observed": "observed",
        "rule": "rule", "kb_rules": "Rules by sub-type", "kb_problems": "Validation",
        "kb_ok": "{path}: {rules} rules, no errors", "kb_errors": "{n} error(s): the previous KB stays in use",
        "kb_reloaded": "knowledge base reloaded ({rules} rules)", "watching": "watching for changes",
        "not_watching": "not watching", "tests": "tests", "when": "when", "conclude": "conclude",
        "interview": "Interview", "question": "Question", "answer_placeholder": "your answer (or why / how / back / unknown)",
        "verdict": "Verdict", "help_title": "Keys", "key": "key", "action": "action",
        "binding": "binding id", "warnings": "warnings", "evidence_from": "evidence from {what}",
        "other_conclusions": "other conclusions", "reasoning_for": "Reasoning for reset {id}",
    },
    "zh": {
        "reset": "RST", "time": "时间", "conn": "连接", "claimed": "声称发送方",
        "conf": "置信度", "subtype": "首要子类型", "ttl": "TTL", "hop": "跳数",
        "filter_placeholder": "筛选:关键词或 origin:… pattern:… sub:…(例如 origin:middle sub:firewall)",
        "shown": "显示 {shown} / {total} 个 RST", "no_capture": "未加载抓包:开始问答(F3)。",
        "loading": "分析中…", "ladder": "RST 前后的数据包(在{side}抓取)",
        "client": "客户端", "server": "服务器", "middle": "中间设备",
        "forged": "伪造的 RST,来自第 {hop} 跳", "no_packets": "未找到该连接的数据包",
        "copied": "已复制到剪贴板", "nothing_selected": "请先选择一个 RST",
        "how_title": "HOW(推理依据)", "why_not_title": "WHY-NOT(为何不是)",
        "why_not_prompt": "选择子类型", "what_if_title": "假设分析",
        "what_if_placeholder": "字段=值 …(例如 ttl_matches_baseline=true)",
        "fired": "已触发", "fails": "第一个不满足的条件", "actual": "实际值",
        "no_rule": "没有规则得出该结论", "before": "之前", "after": "之后",
        "changed": "变化", "unknown_field": "未知字段:{name}",
        "bad_change": "请输入 字段=值(例如 ttl_delta=0)", "observed": "观测值",
        "rule": "规则", "kb_rules": "按子类型列出的规则", "kb_problems": "校验",
        "kb_ok": "{path}:{rules} 条规则,无错误", "kb_errors": "{n} 个错误:继续使用之前的知识库",
        "kb_reloaded": "知识库已重新加载({rules} 条规则)", "watching": "正在监视变更",
        "not_watching": "未监视", "tests": "测试", "when": "条件", "conclude": "结论",
        "interview": "问答", "question": "问题", "answer_placeholder": "你的回答(或 why / how / back / unknown)",
        "verdict": "结论", "help_title": "快捷键", "key": "按键", "action": "操作",
        "binding": "绑定 id", "warnings": "警告", "evidence_from": "证据来自 {what}",
        "other_conclusions": "其他结论", "reasoning_for": "RST {id} 的推理",
    },
}


def t(lang: str, key: str, **values: Any) -> str:
    table = TUI.get(lang, TUI["en"])
    text = table.get(key)
    if text is None:
        text = LABELS.get(lang, LABELS["en"]).get(key, key)
    return text.format(**values) if values else text


def kb_text(text, lang: str) -> str:
    """A KB Text (en/zh) or a plain string, in ``lang``."""
    if text is None:
        return ""
    if isinstance(text, dict):
        return text.get(lang) or text.get("en") or ""
    return getattr(text, lang, None) or getattr(text, "en", None) or str(text)
