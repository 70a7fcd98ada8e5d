"""The loaded knowledge base and the problems found while loading it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facts.errors import UserError

from .kb_model import (Conclusion, Fix, Question, ReferenceTables, Rule, Symptom, Tip)


@dataclass(frozen=True)
class Problem:
    """One validation finding, printed as ``file:line:col field.path: message``."""

    file: str
    line: int
    col: int
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col} {self.path}: {self.message}"


class KBError(UserError):
    """The KB could not be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        # A file that does not parse causes most of the others (its ids look undefined):
        # name it first.
        roots = [p for p in problems if p.path == "(file)"]
        first = (roots or problems or ["unknown problem"])[0]
        more = f" (and {len(problems) - 1} more; run 'rstsleuth kb validate')" if len(problems) > 1 else ""
        super().__init__(f"knowledge base invalid: {first}{more}")


@dataclass
class KnowledgeBase:
    path: Path
    rules: list[Rule] = field(default_factory=list)
    conclusions: dict[str, Conclusion] = field(default_factory=dict)
    fixes: dict[str, Fix] = field(default_factory=dict)
    questions: dict[str, Question] = field(default_factory=dict)
    tips: dict[str, Tip] = field(default_factory=dict)
    symptoms: dict[str, Symptom] = field(default_factory=dict)
    reference: ReferenceTables = field(default_factory=ReferenceTables)
    warnings: list[Problem] = field(default_factory=list)

    # rule id -> position in ``rules``; rebuilt whenever it does not match the list (the
    # list may be edited while a KB is loaded or in tests)
    _rule_at: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (HOW trees look up every rule they show)."""
        rules = self.rules
        i = self._rule_at.get(rule_id)
        if i is None or i >= len(rules) or rules[i].id != rule_id:
            self._rule_at = {r.id: n for n, r in enumerate(rules)}
            i = self._rule_at.get(rule_id)
            if i is None:
                raise KeyError(rule_id)
        return rules[i]

    def rules_concluding(self, conclusion_id: str) -> list[Rule]:
        return [r for r in self.rules if r.conclude.id == conclusion_id]
