"""A pure-Python evaluator of KB conditions: the reference semantics the durable-rules
compilation must reproduce, and the machinery behind WHY-NOT.

Three-valued (Kleene) logic. A ``Test`` is *true*, *false* or *unknown*:

* a missing or ``None`` field is unknown, so every comparison on it is unknown, and so is
  ``not`` of it: ``not {field: x, op: ==, value: 1}`` does NOT hold when ``x`` is unknown.
  ``exists`` is the only way to test for absence (it is never unknown);
* a value whose type does not fit the comparison is unknown too: booleans, numbers and
  strings are three separate types (``True`` is not ``1``, ``"5"`` is not ``5``); ``<`` and
  friends compare two numbers or two strings; ``in`` compares with the members of the same
  type (unknown when none has the value's type); lists only take part in ``exists`` and
  ``matches`` (any member matches) and in ``==`` against a list;
* ``matches`` is Python ``re.search`` on ``str(value)``.

``Concluded(id, min_cf)`` is true when the conclusion's combined cf is ≥ ``min_cf`` and false
otherwise (never unknown). ``all``/``any``/``not`` are Kleene and/or/not; a rule fires when its
condition is *true*. Negations are pushed down to the leaves (negation normal form), which
Kleene logic allows (De Morgan holds), so the durable compilation only ever sees literals.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional, Union

from .kb_model import AllOf, AnyOf, Concluded, Condition, NotOf, Rule, Test

try:  # optional: the common case of each reset's evidence steps in C
    from . import _evkey
except ImportError:
    _evkey = None


def compiled_evkey():
    """engine._evkey when it is built and not switched off (``RSTSLEUTH_NO_CEXT``), else
    None: the callers then run their Python code. (An environment lookup costs a
    microsecond and a half: loops over thousands of resets ask once and pass it on.)"""
    return None if _evkey is None or os.environ.get("RSTSLEUTH_NO_CEXT") else _evkey


ASK = object()  # "look up compiled_evkey()" for the functions that take it

Truth = Optional[bool]  # None = unknown

NEGATED_OP = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<",
              "in": "not in", "matches": "not matches"}


# --------------------------------------------------------------------------- values
def value_kind(value: Any) -> str:
    """b(ool), n(umber), s(tring), l(ist) or o(ther): the type classes comparisons respect."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, (int, float)):
        return "n"
    if isinstance(value, str):
        return "s"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "l"
    return "o"


def normalize_evidence(evidence: dict[str, Any], compiled: Any = ASK) -> dict[str, Any]:
    """The evidence both reasoning paths see: ``None`` and non-finite numbers are unknown
    (dropped); tuples and sets become lists. ``compiled``: ``compiled_evkey()``, when the
    caller has it."""
    # Evidence built from facts is plain (no None, finite floats, lists): the compiled
    # helper copies it (a report normalizes thousands of 90-field sets); else the loop.
    if compiled is ASK:
        compiled = compiled_evkey()
    if compiled is not None:
        out = compiled.normalize(evidence)
        if out is not None:
            return out
    return _normalize_each(evidence)


def _normalize_each(evidence: dict[str, Any]) -> dict[str, Any]:
    out = {}
    isfinite = math.isfinite
    for key, value in evidence.items():
        if value is None:
            continue
        kind = type(value)
        # exact types first: this runs over every field of thousands of evidence sets
        if kind is float:
            if not isfinite(value):
                continue
        elif kind is not int and kind is not str and kind is not bool and kind is not list:
            if isinstance(value, float) and not isfinite(value):
                continue
            if isinstance(value, (tuple, set, frozenset)):
                value = list(value)
        out[key] = value
    return out


@lru_cache(maxsize=4096)
def compiled_regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def exists_wanted(test: Test) -> bool:
    return test.value is not False


def eval_test(test: Test, evidence: dict[str, Any]) -> Truth:
    value = evidence.get(test.field)
    if test.op == "exists":
        return (value is not None) == exists_wanted(test)
    if value is None:
        return None
    kind = value_kind(value)
    if test.op == "matches":
        regex = compiled_regex(str(test.value))
        if kind == "l":
            return any(regex.search(str(item)) is not None for item in value)
        return regex.search(str(value)) is not None
    if test.op == "in":
        members = test.value if isinstance(test.value, (list, tuple)) else [test.value]
        same = [m for m in members if value_kind(m) == kind]
        if not same or kind in ("l", "o"):
            return None
        return any(value == m for m in same)
    expected = test.value
    if value_kind(expected) != kind or kind == "o":
        return None
    if test.op in ("==", "!="):
        equal = list(value) == list(expected) if kind == "l" else value == expected
        return equal if test.op == "==" else not equal
    if kind not in ("n", "s"):
        return None
    return {"<": value < expected, "<=": value <= expected,
            ">": value > expected, ">=": value >= expected}[test.op]


# --------------------------------------------------------------------------- NNF
@dataclass(frozen=True)
class Lit:
    """A Test, possibly negated (the negation of an unknown stays unknown)."""

    test: Test
    negated: bool = False

    @property
    def op(self) -> str:
        if self.test.op == "exists":
            return "exists"
        return NEGATED_OP[self.test.op] if self.negated else self.test.op

    @property
    def value(self) -> Any:
        if self.test.op == "exists":
            return exists_wanted(self.test) != self.negated
        return self.test.value


@dataclass(frozen=True)
class CLit:
    concluded: str
    min_cf: float
    negated: bool = False


@dataclass(frozen=True)
class And:
    items: tuple


@dataclass(frozen=True)
class Or:
    items: tuple


Node = Union[Lit, CLit, And, Or]


def to_nnf(cond: Condition, negate: bool = False) -> Node:
    if isinstance(cond, Test):
        return Lit(cond, negate)
    if isinstance(cond, Concluded):
        return CLit(cond.concluded, cond.min_cf, negate)
    if isinstance(cond, NotOf):
        return to_nnf(cond.not_, not negate)
    if isinstance(cond, AllOf):
        items = tuple(to_nnf(c, negate) for c in cond.all)
        return Or(items) if negate else And(items)
    if isinstance(cond, AnyOf):
        items = tuple(to_nnf(c, negate) for c in cond.any)
        return And(items) if negate else Or(items)
    raise TypeError(f"not a condition: {cond!r}")


def eval_lit(lit: Lit, evidence: dict) -> Truth:
    truth = eval_test(lit.test, evidence)
    return truth if truth is None or not lit.negated else not truth


def eval_clit(lit: CLit, cfs: dict[str, float]) -> bool:
    return (cfs.get(lit.concluded, 0.0) >= lit.min_cf) != lit.negated


def eval_node(node: Node, evidence: dict, cfs: dict[str, float]) -> Truth:
    if isinstance(node, Lit):
        return eval_lit(node, evidence)
    if isinstance(node, CLit):
        return eval_clit(node, cfs)
    values = [eval_node(n, evidence, cfs) for n in node.items]
    if isinstance(node, And):
        return False if False in values else (None if None in values else True)
    return True if True in values else (None if None in values else False)


def evaluate(cond: Condition, evidence: dict, cfs: dict[str, float] | None = None) -> Truth:
    """Kleene truth of a condition over normalized evidence and current conclusion cfs."""
    return eval_node(to_nnf(cond), evidence, cfs or {})


def support(node: Node, evidence: dict, cfs: dict[str, float]
            ) -> tuple[float, list[Lit], list[tuple[str, float]]] | None:
    """For a true node: (premise strength, true test literals, positive concluded premises)
    along the strongest proof; None when the node is not true. Strength is the min of the
    concluded premises' cfs (1.0 without any), the max over alternatives."""
    if isinstance(node, Lit):
        return (1.0, [node], []) if eval_lit(node, evidence) else None
    if isinstance(node, CLit):
        if not eval_clit(node, cfs):
            return None
        if node.negated:
            return 1.0, [], []
        cf = cfs.get(node.concluded, 0.0)
        return cf, [], [(node.concluded, cf)]
    parts = [support(n, evidence, cfs) for n in node.items]
    if isinstance(node, And):
        if any(p is None for p in parts):
            return None
        return (min([1.0] + [p[0] for p in parts]), [t for p in parts for t in p[1]],
                [c for p in parts for c in p[2]])
    best = None
    for part in parts:
        if part is not None and (best is None or part[0] > best[0]):
            best = part
    return best


# --------------------------------------------------------------------------- rendering
def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render_value(v) for v in value) + "]"
    return str(value)


def render_lit(lit: Lit) -> str:
    if lit.test.op == "exists":
        return f"{lit.test.field} {'exists' if lit.value else 'is absent'}"
    return f"{lit.test.field} {lit.op} {render_value(lit.value)}"


def render_clit(lit: CLit) -> str:
    return f"{'not ' if lit.negated else ''}concluded {lit.concluded} (cf >= {lit.min_cf:g})"


def render(cond: Condition) -> str:
    if isinstance(cond, Test):
        return render_lit(Lit(cond))
    if isinstance(cond, Concluded):
        return render_clit(CLit(cond.concluded, cond.min_cf))
    if isinstance(cond, NotOf):
        return f"not ({render(cond.not_)})"
    joiner, items = (" and ", cond.all) if isinstance(cond, AllOf) else (" or ", cond.any)
    return "(" + joiner.join(render(c) for c in items) + ")"


@dataclass(frozen=True)
class Failure:
    """Why a condition is not true: the first sub-condition at fault."""

    condition: str
    field: Optional[str] = None
    actual: Any = "unknown"
    concluded: Optional[str] = None  # a concluded premise that is too weak (or too strong)
    cf: Optional[float] = None


def first_failure(node: Node, evidence: dict, cfs: dict[str, float]) -> Failure | None:
    """The first leaf that keeps a non-true node from being true (None if it is true)."""
    if eval_node(node, evidence, cfs) is True:
        return None
    if isinstance(node, Lit):
        return Failure(render_lit(node), node.test.field,
                       evidence.get(node.test.field, "unknown"))
    if isinstance(node, CLit):
        return Failure(render_clit(node), concluded=node.concluded,
                       cf=cfs.get(node.concluded, 0.0))
    # for all: the first child that fails; for any: every child fails, report the first
    for child in node.items:
        failure = first_failure(child, evidence, cfs)
        if failure is not None:
            return failure
    return None


# --------------------------------------------------------------------------- structure
def concluded_literals(node: Node) -> list[CLit]:
    if isinstance(node, CLit):
        return [node]
    if isinstance(node, Lit):
        return []
    return [c for n in node.items for c in concluded_literals(n)]


def rule_levels(rules: list[Rule]) -> tuple[list[int], dict[str, int]]:
    """Stratify: a conclusion's level is above the levels of every conclusion its rules
    read (positively or negated), so a concluded premise is only read once final. Returns
    (level of each rule, level of each conclusion). Raises ValueError naming a cycle."""
    needs = [sorted({c.concluded for c in concluded_literals(to_nnf(r.when))}) for r in rules]
    by_conclusion: dict[str, list[int]] = {}
    for index, rule in enumerate(rules):
        by_conclusion.setdefault(rule.conclude.id, []).append(index)
    levels: dict[str, int] = {}
    visiting: list[str] = []

    def level_of(cid: str) -> int:
        if cid in levels:
            return levels[cid]
        if cid in visiting:
            cycle = visiting[visiting.index(cid):] + [cid]
            raise ValueError("conclusions depend on each other in a cycle: " + " -> ".join(cycle))
        visiting.append(cid)
        level = max([rule_level(i) for i in by_conclusion.get(cid, [])] or [0])
        visiting.pop()
        levels[cid] = level
        return level

    def rule_level(index: int) -> int:
        return 1 + max(level_of(c) for c in needs[index]) if needs[index] else 0

    for cid in list(by_conclusion) + [c for n in needs for c in n]:
        level_of(cid)
    return [rule_level(i) for i in range(len(rules))], levels
