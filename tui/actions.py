"""The action registry: what the TUI can do, named once, separate from the keys that do it.

Key maps (``tui.bindings``) and the command palette (:class:`ActionsProvider`) both refer to
actions by id, so a key can be remapped without touching what it does, and the palette
offers every main action whether or not a key is bound to it (harlequin style).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class ActionSpec:
    id: str
    action: str  # Textual action string, resolved on the node that owns the binding
    title_en: str
    title_zh: str
    palette: bool = False  # offered in the command palette (app-level actions only)

    def title(self, lang: str) -> str:
        return self.title_zh if lang == "zh" else self.title_en


_SPECS = [
    # app level: available everywhere, offered in the palette
    ActionSpec("show_resets", "app.show_resets", "Resets and findings", "RST 列表与结论", True),
    ActionSpec("open_detail", "app.open_detail", "Reset detail (ladder, evidence, fixes)",
               "RST 详情(时序图、证据、解决方案)", True),
    ActionSpec("open_reasoning", "app.open_reasoning", "Reasoning: HOW, WHY-NOT, what-if",
               "推理:HOW、WHY-NOT、假设分析", True),
    ActionSpec("show_interview", "app.show_interview", "Guided interview", "引导式问答", True),
    ActionSpec("show_kb", "app.show_kb", "Knowledge base", "知识库", True),
    ActionSpec("reload_kb", "app.reload_kb", "Reload the knowledge base from disk",
               "从磁盘重新加载知识库", True),
    ActionSpec("toggle_lang", "app.toggle_lang", "English / 中文", "English / 中文", True),
    ActionSpec("help", "app.help", "Keys (help)", "快捷键(帮助)", True),
    ActionSpec("quit", "app.quit", "Quit", "退出", True),
    ActionSpec("back", "app.back", "Back", "返回"),
    # resets screen
    ActionSpec("filter", "focus_filter", "Filter", "筛选"),
    ActionSpec("clear_filter", "clear_filter", "Clear filter", "清除筛选"),
    ActionSpec("sort_next", "sort_next", "Sort by next column", "按下一列排序"),
    ActionSpec("sort_reverse", "sort_reverse", "Reverse sort", "反向排序"),
    # virtual table
    ActionSpec("cursor_up", "cursor_up", "Up", "上"),
    ActionSpec("cursor_down", "cursor_down", "Down", "下"),
    ActionSpec("page_up", "page_up", "Page up", "上一页"),
    ActionSpec("page_down", "page_down", "Page down", "下一页"),
    ActionSpec("first_row", "first_row", "First row", "第一行"),
    ActionSpec("last_row", "last_row", "Last row", "最后一行"),
    ActionSpec("select_row", "select_row", "Open", "打开"),
    # detail screen
    ActionSpec("copy_fix", "copy_fix", "Copy the selected fix", "复制所选解决方案"),
    ActionSpec("copy_filter", "copy_filter", "Copy the Wireshark filter", "复制 Wireshark 过滤器"),
    # reasoning screen
    ActionSpec("focus_why_not", "focus_why_not", "WHY-NOT: pick a sub-type", "WHY-NOT:选择子类型"),
    ActionSpec("focus_what_if", "focus_what_if", "What-if: edit a fact", "假设分析:修改事实"),
    # interview screen
    ActionSpec("why", "why", "Why is this asked?", "为什么问这个?"),
    ActionSpec("how", "how", "How was this concluded?", "结论是如何得出的?"),
    ActionSpec("back_question", "back_question", "Previous question", "上一个问题"),
    ActionSpec("restart", "restart", "Restart the interview", "重新开始问答"),
    ActionSpec("submit_paste", "submit_paste", "Submit the pasted text", "提交粘贴的文本"),
    # help screen
    ActionSpec("close", "close", "Close", "关闭"),
    # knowledge base screen
    ActionSpec("toggle_watch", "toggle_watch", "Watch the KB files (auto reload)",
               "监视知识库文件(自动重新加载)"),
]

ACTIONS: dict[str, ActionSpec] = {spec.id: spec for spec in _SPECS}


def action(action_id: str) -> ActionSpec:
    return ACTIONS[action_id]


class ActionsProvider(Provider):
    """Command palette: the main actions from the registry, titled in the app's language."""

    def _specs(self):
        lang = getattr(self.app, "lang", "en")
        return [(spec, spec.title(lang)) for spec in _SPECS if spec.palette]

    async def discover(self) -> Hits:
        for spec, title in self._specs():
            yield DiscoveryHit(title, partial(self.app.run_action, spec.action), help=spec.id)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for spec, title in self._specs():
            score = max(matcher.match(title), matcher.match(spec.id))
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, spec.action),
                          help=spec.id)
