"""Reasoning for one reset: the HOW tree down to the observed facts, WHY-NOT for any other
sub-type, and WHAT-IF a fact had another value."""
from __future__ import annotations

from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Select, Static, Tree
from textual.widgets.tree import TreeNode

from engine.conditions import render_value
from engine.explain import FactPremise, HowNode
from facts.fields import FIELDS

from ..bindings import bindings
from .i18n import kb_text, t
from .live import LiveScreen

EXPAND_DEPTH = 3


class ChangeError(ValueError):
    pass


def _value(text: str, kind: str) -> Any:
    low = text.strip().lower()
    if low in ("unknown", "none", "null", ""):
        return None
    if kind == "bool":
        if low in ("true", "yes", "1", "y"):
            return True
        if low in ("false", "no", "0", "n"):
            return False
        raise ChangeError(f"{text!r} is not true/false")
    if kind == "int":
        try:
            return int(low)
        except ValueError:
            raise ChangeError(f"{text!r} is not an integer") from None
    if kind == "float":
        try:
            return float(low)
        except ValueError:
            raise ChangeError(f"{text!r} is not a number") from None
    if kind == "list":
        return [part.strip() for part in text.split("|") if part.strip()]
    return text.strip()


def parse_changes(text: str, lang: str = "en") -> dict[str, Any]:
    """``field=value`` pairs separated by spaces or commas; ``unknown`` removes a fact.
    Values are typed by the field registry; nothing is evaluated."""
    changes: dict[str, Any] = {}
    for part in text.replace(",", " ").split():
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise ChangeError(t(lang, "bad_change"))
        spec = FIELDS.get(name)
        if spec is None:
            raise ChangeError(t(lang, "unknown_field", name=name))
        parsed = _value(value, spec.kind)
        if spec.choices and parsed is not None and parsed not in spec.choices:
            raise ChangeError(f"{name}: {value!r} not in {', '.join(map(str, spec.choices))}")
        changes[name] = parsed
    if not changes:
        raise ChangeError(t(lang, "bad_change"))
    return changes


def add_how(parent: TreeNode, node: HowNode, lang: str, depth: int = 0) -> TreeNode:
    title = kb_text(node.title, lang)
    label = Text.assemble((node.conclusion, "bold"), f"  cf {node.cf:+.2f}  ", (title, "italic"))
    branch = parent.add(label, data=node.conclusion, expand=depth < EXPAND_DEPTH)
    if not node.supports:
        branch.add_leaf(Text(t(lang, "no_rule") if node.cf == 0 else "—", style="dim"))
    for support in node.supports:
        rule = branch.add(Text.assemble("← ", (support.rule_id, "cyan"), f" (+{support.cf:.2f}): ",
                                        kb_text(support.rationale, lang)),
                          data=support.rule_id, expand=depth < EXPAND_DEPTH)
        for premise in support.premises:
            if isinstance(premise, FactPremise):
                rule.add_leaf(Text.assemble(
                    "· ", (premise.field, "green"), f" {premise.op} {render_value(premise.expected)}"
                    f"   {t(lang, 'observed')}: ", (render_value(premise.actual), "bold")),
                    data=premise.field)
            else:
                add_how(rule, premise, lang, depth + 2)
    return branch


def why_not_text(results, lang: str, indent: int = 0) -> Text:
    out = Text()
    pad = "  " * indent
    if not results and indent == 0:
        out.append(t(lang, "no_rule") + "\n")
    for w in results:
        if w.fired:
            out.append(f"{pad}{w.rule_id}: ", style="cyan")
            out.append(t(lang, "fired") + "\n", style="green")
            continue
        out.append(f"{pad}{w.rule_id}: ", style="cyan")
        out.append(f"{t(lang, 'fails')}: ")
        out.append(f"{w.condition}", style="bold")
        if w.field:
            out.append(f"  {t(lang, 'actual')}: {render_value(w.actual)}")
        if w.concluded:
            out.append(f"  ({w.concluded} cf {w.concluded_cf or 0:+.2f})")
        out.append("\n")
        if w.nested:
            out.append_text(why_not_text(w.nested, lang, indent + 1))
    return out


def what_if_text(result, lang: str) -> Text:
    b, a = result.before, result.after
    out = Text()
    out.append(f"{t(lang, 'before')}: {b.origin} / {b.pattern or '-'}\n")
    style = "bold red" if (a.origin, a.pattern) != (b.origin, b.pattern) else "bold"
    out.append(f"{t(lang, 'after')}: {a.origin} / {a.pattern or '-'}\n", style=style)
    for ch in result.changed:
        out.append(f"  {ch.id}  {ch.before:+.2f} → {ch.after:+.2f}\n")
    if not result.changed:
        out.append(f"  {t(lang, 'changed')}: {t(lang, 'none')}\n")
    return out


class ReasoningScreen(LiveScreen):
    BINDINGS = bindings("reasoning")

    def __init__(self, reset_id: str):
        super().__init__()
        self.reset_id = reset_id
        self.inference = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="reasoning-body"):
            yield Tree("HOW", id="how")
            with Vertical(id="reasoning-side"):
                yield Static(id="how-node")
                yield Static(id="why-not-title", classes="section")
                yield Select([], id="why-not-pick", allow_blank=True)
                with VerticalScroll(id="why-not-scroll"):
                    yield Static(id="why-not")
                yield Static(id="what-if-title", classes="section")
                yield Input(id="what-if")
                with VerticalScroll(id="what-if-scroll"):
                    yield Static(id="what-if-result")
        yield Footer()

    def focus_first(self) -> None:
        self.query_one("#how", Tree).focus()

    @property
    def evidence(self) -> Optional[dict]:
        return self.app.session.evidence.get(self.reset_id)

    def targets(self) -> list[str]:
        inf = self.inference
        origin = inf.origin
        out = [f"origin.{origin}"] if origin != "undetermined" else \
            ["origin.middle_device", "origin.endpoint"]
        if inf.pattern:
            out.append(f"pattern.{inf.pattern}")
        out += [cid for cid, _cf in inf.ranked("subtype")[:3]]
        return out

    def show(self) -> None:
        lang, session = self.app.lang, self.app.session
        self.sub_title = t(lang, "reasoning_for", id=self.reset_id)
        self.query_one("#why-not-title", Static).update(Text(t(lang, "why_not_title"), style="bold"))
        self.query_one("#what-if-title", Static).update(Text(t(lang, "what_if_title"), style="bold"))
        self.query_one("#what-if", Input).placeholder = t(lang, "what_if_placeholder")
        tree = self.query_one("#how", Tree)
        tree.clear()
        tree.root.set_label(Text(f"{t(lang, 'how_title')} — {self.reset_id}", style="bold"))
        ev = self.evidence
        if ev is None:
            tree.root.add_leaf(t(lang, "nothing_selected"))
            return
        self.inference = session.reasoner.infer(ev)
        for cid in self.targets():
            add_how(tree.root, self.inference.how(cid), lang)
        tree.root.expand()
        inf = self.inference
        self.query_one("#how-node", Static).update(Text(
            f"{self.reset_id}: {inf.origin} / {inf.pattern or '-'}", style="bold"))
        pick = self.query_one("#why-not-pick", Select)
        top = {cid for cid, _ in self.inference.ranked("subtype")[:1]}
        # other sub-types first, then the origins and patterns
        order = {"subtype": 0, "origin": 1, "pattern": 2}
        subtypes = sorted((c for c in session.kb.conclusions.values()
                           if c.kind in order and c.id not in top),
                          key=lambda c: order[c.kind])
        current = pick.value
        pick.set_options([(f"{c.id} — {kb_text(c.title, lang)}", c.id) for c in subtypes])
        pick.prompt = t(lang, "why_not_prompt")
        if isinstance(current, str) and any(c.id == current for c in subtypes):
            pick.value = current
        self.show_why_not()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        # tree labels are cut at the pane's edge; the highlighted one is shown whole here
        if event.node.is_root:
            return
        label = event.node.label
        self.query_one("#how-node", Static).update(label.copy() if isinstance(label, Text)
                                                   else Text(str(label)))

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "why-not-pick":
            self.show_why_not()

    def show_why_not(self) -> None:
        value = self.query_one("#why-not-pick", Select).value
        out = self.query_one("#why-not", Static)
        if not isinstance(value, str) or self.evidence is None:
            out.update("")
            return
        results = self.app.session.reasoner.why_not(self.evidence, value)
        head = Text(f"{value}  cf {self.inference.cf(value):+.2f}\n", style="bold")
        out.update(head + why_not_text(results, self.app.lang))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "what-if" or self.evidence is None:
            return
        out = self.query_one("#what-if-result", Static)
        try:
            changes = parse_changes(event.value, self.app.lang)
        except ChangeError as exc:
            out.update(Text(str(exc), style="red"))
            return
        result = self.app.session.reasoner.what_if(self.evidence, changes)
        out.update(what_if_text(result, self.app.lang))

    def action_focus_why_not(self) -> None:
        self.query_one("#why-not-pick", Select).focus()

    def action_focus_what_if(self) -> None:
        self.query_one("#what-if", Input).focus()
