"""The knowledge base: rules by sub-type with their conditions and test cases, validation
problems with file:line, and reload from disk (a failed reload keeps the KB in use)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static, Tree

from engine.conditions import render
from engine.kb import KnowledgeBase
from engine.loader import display_name

from ..bindings import bindings
from .i18n import kb_text, t
from .live import LiveScreen

KIND_ORDER = ("subtype", "origin", "pattern", "finding")


def _facts(case) -> str:
    items = [f"{k}={v!r}" for k, v in case.facts.items()]
    items += [f"{k} cf {v:+.2f}" for k, v in case.given.items()]
    return ", ".join(items) or "{}"


def fill_tree(tree: Tree, kb: KnowledgeBase, lang: str) -> None:
    tree.clear()
    tree.root.set_label(Text(f"{display_name(kb.path)} — {len(kb.rules)} rules", style="bold"))
    tree.root.expand()
    by_conclusion: dict[str, list] = {}
    for rule in kb.rules:
        by_conclusion.setdefault(rule.conclude.id, []).append(rule)
    ids = list(kb.conclusions) + [cid for cid in by_conclusion if cid not in kb.conclusions]
    kinds: dict[str, list[str]] = {}
    for cid in ids:
        concl = kb.conclusions.get(cid)
        kinds.setdefault(concl.kind if concl else "finding", []).append(cid)
    for kind in KIND_ORDER:
        if kind not in kinds:
            continue
        group = tree.root.add(Text(kind, style="bold magenta"), expand=kind == "subtype")
        for cid in sorted(kinds[kind]):
            concl = kb.conclusions.get(cid)
            rules = by_conclusion.get(cid, [])
            node = group.add(Text.assemble((cid, "bold"), f"  ({len(rules)})  ",
                                           (kb_text(concl.title if concl else None, lang), "italic")),
                             data=cid)
            for rule in rules:
                where = f"{rule.source.file}:{rule.source.line}" if rule.source else ""
                r = node.add(Text.assemble((rule.id, "cyan"), f" r{rule.rev} [{rule.status}] "
                                           f"cf {rule.conclude.cf:+.2f}  ", (where, "dim")),
                             data=rule.id, expand=True)
                r.add_leaf(Text(kb_text(rule.rationale, lang), style="italic"))
                r.add_leaf(Text.assemble((f"{t(lang, 'when')}: ", "bold"), render(rule.when)))
                tests = r.add(Text(f"{t(lang, 'tests')} ({len(rule.tests)})", style="bold"))
                for case in rule.tests:
                    style = "green" if case.expect == "fires" else "yellow"
                    tests.add_leaf(Text.assemble((f"{case.expect:<14}", style), f"{case.name}: ",
                                                 (_facts(case), "dim")))


def problems_text(session, lang: str, watching: bool) -> Text:
    out = Text()
    kb = session.kb
    out.append(f"{t(lang, 'watching') if watching else t(lang, 'not_watching')}\n", style="dim")
    if session.problems:
        out.append(t(lang, "kb_errors", n=len(session.problems)) + "\n", style="bold red")
        for p in session.problems:
            out.append(f"{p.file}:{p.line}:{p.col}", style="red")
            out.append(f" {p.path}: {p.message}\n")
    else:
        out.append(t(lang, "kb_ok", path=display_name(kb.path), rules=len(kb.rules)) + "\n", style="bold green")
    if kb.warnings:
        out.append(f"{t(lang, 'warnings')}:\n", style="bold yellow")
        for p in kb.warnings:
            out.append(f"{p}\n", style="yellow")
    return out


class KbScreen(LiveScreen):
    BINDINGS = bindings("kb")

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="kb-body"):
            yield Tree("KB", id="kb-tree")
            with VerticalScroll(id="kb-side"):
                yield Static(id="kb-node")
                yield Static(id="kb-problems")
        yield Footer()


    def on_screen_resume(self) -> None:
        self.query_one("#kb-tree", Tree).focus()

    def show(self) -> None:
        lang = self.app.lang
        self.sub_title = t(lang, "kb_rules")
        fill_tree(self.query_one("#kb-tree", Tree), self.app.session.kb, lang)
        self.query_one("#kb-problems", Static).update(
            problems_text(self.app.session, lang, self.app.watch_kb))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        # labels are cut at the pane's edge; the highlighted one is shown whole here
        label = event.node.label
        node = self.query_one("#kb-node", Static)
        node.display = not event.node.is_root
        node.update(label.copy() if isinstance(label, Text) else Text(str(label)))

    def action_reload_kb(self) -> None:
        self.app.reload_kb()

    def action_toggle_watch(self) -> None:
        self.app.watch_kb = not self.app.watch_kb
        self.show()
