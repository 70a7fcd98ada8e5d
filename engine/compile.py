"""Compile the knowledge base into one durable-rules ruleset (a JSON-able dict).

Design (why it looks like this):

* Each rule's condition is put in negation normal form (see ``conditions``) and split into
  disjuncts only where an ``any`` mixes evidence with concluded premises; a disjunct becomes one
  durable rule ``r<rule>d<n>`` whose patterns are one pattern on the evidence fact
  (``t: ev``, its tests nested with ``$and``/``$or``) and one pattern per concluded id on
  conclusion facts (``t: c``). Patterns only ever compare a fact field with a constant: no
  cross-fact reference is emitted (durable 2.0.28 reads out of bounds on a false cross-fact
  test inside ``$and``); :func:`unsafe_parts` checks the output against that whitelist.
* Types: durable compares ``5 == "5"`` and ``True == 1`` as equal and orders strings as
  numbers. The evidence fact therefore carries each value under a key for its type class
  (``n__ttl``, ``s__firewall_log_reason``, ``b__dual_available``) plus a presence key
  (``e__<field>``) for ``exists``: a test against a constant of another type reads a key that
  is absent, which makes it unknown, exactly as in ``conditions``.
* Tests durable cannot decide our way (``matches``: durable's regex dialect differs and is
  anchored; constants that are lists or null) are decided in Python by ``conditions`` before
  the fact is asserted, and carried as derived booleans ``d__<n>`` (absent when unknown).
  Ordering of strings is rare in the KB and also decided there, to keep durable's part
  to numbers, booleans and string equality.
* Thresholds on conclusions are constants in the pattern (``cf >= min_cf``, or ``cf < min_cf``
  for a negated premise); the host asserts each conclusion fact once, with its final cf, in
  level order (stratification, see ``conditions.rule_levels``), so a rule reads only final
  certainties and never fires twice on the same premise.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from .conditions import (And, CLit, Lit, Node, Or, compiled_regex, rule_levels, to_nnf,
                         value_kind)
from .kb import KBError, KnowledgeBase, Problem
from .kb_model import Rule, Test

MAX_DISJUNCTS = 256
_ORDER_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def durable_value(value: Any) -> Any:
    """What durable sees of a scalar. Strings become a fixed-alphabet token of their digest:
    durable's own JSON parser rejects some escapes (ERR_PARSE_OBJECT, code 204, seen on a TLS
    payload excerpt), and capture text must never reach it. Equality is all durable tests on
    strings (ordering and regexes are decided in Python), and equal strings give equal tokens."""
    if isinstance(value, str):
        return "h" + hashlib.blake2b(value.encode("utf-8", "surrogatepass"),
                                     digest_size=12).hexdigest()
    if isinstance(value, float) and value != 0.0:
        # durable's parser also rejects exponent floats without a decimal point ("5e-05",
        # code 204): a 50 µs gap between packets is one. Below TINY_FLOAT every magnitude is
        # the same to the KB (the validator forbids constants in (0, TINY_FLOAT]).
        if abs(value) < TINY_FLOAT:
            return math.copysign(TINY_FLOAT, value)
        if abs(value) >= 1e16:
            return int(value)
    return value


# Python's json prints every float of at least this magnitude without an exponent.
TINY_FLOAT = 0.0001


def unsafe_constant(value: Any) -> bool:
    """A KB number durable could not compare faithfully (see durable_value)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0 < abs(value) <= TINY_FLOAT)


_SCALAR_KINDS = ("b", "n", "s")


@dataclass
class Disjunct:
    """One durable rule: a conjunction that proves one KB rule."""

    name: str
    rule_index: int
    evidence: Optional[Node]
    # concluded id -> (lower bound cf >= lo or None, upper bound cf < hi or None), alias
    concluded: dict[str, tuple[Optional[float], Optional[float], str]] = field(default_factory=dict)


@dataclass
class CompiledKB:
    rules: list[Rule]
    ruleset: dict[str, dict]            # durable definition, without the "run" actions
    disjuncts: dict[str, Disjunct]
    derived: list[tuple[str, Test]]     # derived key -> the test decided in Python
    rule_levels: list[int]
    conclusion_levels: dict[str, int]
    referenced: list[list[str]]          # per level: conclusion ids some premise reads
    nnf: list[Node]
    read_fields: frozenset = frozenset()     # every field some rule's condition names
    typed_fields: frozenset = frozenset()    # fields durable compares (typed keys needed)
    exists_fields: frozenset = frozenset()   # fields durable tests for presence
    # per referenced conclusion: (lowest positive threshold, highest negated threshold);
    # a conclusion fact reaching neither can enable nothing and is not asserted
    thresholds: dict[str, tuple[Optional[float], Optional[float]]] = field(default_factory=dict)

    def worth_asserting(self, cid: str, cf: float) -> bool:
        lo, hi = self.thresholds.get(cid, (None, None))
        return (lo is not None and cf >= lo) or (hi is not None and cf < hi)

    def evidence_fact(self, evidence: dict[str, Any]) -> dict[str, Any]:
        """The evidence fact for durable (typed keys, presence keys, derived tests).
        ``evidence`` must be normalized (``conditions.normalize_evidence``)."""
        from .conditions import eval_test
        fact: dict[str, Any] = {"t": "ev"}
        # only what some pattern reads: smaller JSON for durable to parse
        for name, value in evidence.items():
            if name in self.exists_fields:
                fact["e__" + name] = 1
            if name in self.typed_fields:
                kind = value_kind(value)
                if kind in _SCALAR_KINDS:
                    fact[f"{kind}__{name}"] = durable_value(value)
        for key, test in self.derived:
            truth = eval_test(test, evidence)
            if truth is not None:
                fact[key] = truth
        return fact


def _needs_python(test: Test) -> bool:
    if test.op == "exists":
        return False
    if test.op == "matches":
        return True
    if test.op == "in":
        members = test.value if isinstance(test.value, (list, tuple)) else [test.value]
        return not members or any(value_kind(m) not in _SCALAR_KINDS for m in members)
    kind = value_kind(test.value)
    if test.op in ("==", "!="):
        return kind not in _SCALAR_KINDS
    return kind != "n"


def _one(op: str, items: list[dict]) -> dict:
    return items[0] if len(items) == 1 else {op: items}


class _Compiler:
    def __init__(self):
        self.derived: list[tuple[str, Test]] = []
        self._derived_key: dict[int, str] = {}
        self.typed_fields: set[str] = set()
        self.exists_fields: set[str] = set()

    def derived_key(self, test: Test) -> str:
        key = self._derived_key.get(id(test))
        if key is None:
            key = f"d__{len(self.derived)}"
            self._derived_key[id(test)] = key
            self.derived.append((key, test))
        return key

    def literal(self, lit: Lit) -> dict:
        test, name = lit.test, lit.test.field
        if _needs_python(test):
            return {self.derived_key(test): not lit.negated}
        if test.op == "exists":
            self.exists_fields.add(name)
            return {("$ex" if lit.value else "$nex"): {"e__" + name: 1}}
        self.typed_fields.add(name)
        if test.op == "in":
            members = test.value if isinstance(test.value, (list, tuple)) else [test.value]
            if not lit.negated:
                return _one("$or", [{f"{value_kind(m)}__{name}": durable_value(m)} for m in members])
            per_kind = []
            for kind in _SCALAR_KINDS:
                same = [m for m in members if value_kind(m) == kind]
                if same:
                    key = f"{kind}__{name}"
                    per_kind.append({"$and": [{"$ex": {key: 1}}] +
                                     [{"$neq": {key: durable_value(m)}} for m in same]})
            return _one("$or", per_kind)
        key = f"{value_kind(test.value)}__{name}"
        op = lit.op
        if op == "==":
            return {key: durable_value(test.value)}
        if op == "!=":
            return {"$and": [{"$ex": {key: 1}}, {"$neq": {key: durable_value(test.value)}}]}
        return {_ORDER_OPS[op]: {key: durable_value(test.value)}}

    def expression(self, node: Node) -> dict:
        if isinstance(node, Lit):
            return self.literal(node)
        op = "$and" if isinstance(node, And) else "$or"
        return _one(op, [self.expression(n) for n in node.items])


def _literals(node: Node) -> list[Lit]:
    if isinstance(node, Lit):
        return [node]
    if isinstance(node, CLit):
        return []
    return [lit for n in node.items for lit in _literals(n)]


def _read_fields(node: Node) -> set[str]:
    if isinstance(node, Lit):
        return {node.test.field}
    if isinstance(node, CLit):
        return set()
    return set().union(*(_read_fields(n) for n in node.items))


def _has_concluded(node: Node) -> bool:
    if isinstance(node, CLit):
        return True
    if isinstance(node, Lit):
        return False
    return any(_has_concluded(n) for n in node.items)


def _split(node: Node) -> list[tuple[Optional[Node], list[CLit]]]:
    """Disjuncts (evidence part, concluded literals) of a condition in NNF."""
    if isinstance(node, Lit):
        return [(node, [])]
    if isinstance(node, CLit):
        return [(None, [node])]
    if isinstance(node, Or):
        if not _has_concluded(node):
            return [(node, [])]
        return [d for child in node.items for d in _split(child)]
    out: list[tuple[Optional[Node], list[CLit]]] = [(None, [])]
    for child in node.items:
        out = [(_and(ev, ev2), cl + cl2) for ev, cl in out for ev2, cl2 in _split(child)]
        if len(out) > MAX_DISJUNCTS:
            raise ValueError(f"condition expands to more than {MAX_DISJUNCTS} alternatives")
    return out


def _and(a: Optional[Node], b: Optional[Node]) -> Optional[Node]:
    if a is None or b is None:
        return a if b is None else b
    items = (a.items if isinstance(a, And) else (a,)) + (b.items if isinstance(b, And) else (b,))
    return And(items)


def _bounds(clits: list[CLit]) -> dict[str, tuple[Optional[float], Optional[float]]]:
    bounds: dict[str, list] = {}
    for lit in clits:
        lo, hi = bounds.setdefault(lit.concluded, [None, None])
        if lit.negated:
            bounds[lit.concluded][1] = lit.min_cf if hi is None else min(hi, lit.min_cf)
        else:
            bounds[lit.concluded][0] = lit.min_cf if lo is None else max(lo, lit.min_cf)
    return {k: (v[0], v[1]) for k, v in bounds.items()}


def _conclusion_pattern(cid: str, lo: Optional[float], hi: Optional[float]) -> dict:
    tests: list[dict] = [{"t": "c"}, {"id": cid}]
    if lo is not None:
        tests.append({"$gte": {"cf": lo}})
    if hi is not None:
        tests.append({"$lt": {"cf": hi}})
    return {"$and": tests}


def _problem(rule: Rule, message: str) -> Problem:
    src = rule.source
    return Problem(src.file if src else "<kb>", src.line if src else 1, src.col if src else 1,
                   f"rules[{rule.id}].when", message)


def compile_kb(kb: KnowledgeBase) -> CompiledKB:
    """Compile every rule; raises KBError listing every rule that cannot be compiled."""
    compiler = _Compiler()
    problems: list[Problem] = []
    ruleset: dict[str, dict] = {}
    disjuncts: dict[str, Disjunct] = {}
    nnf = [to_nnf(rule.when) for rule in kb.rules]
    try:
        levels, conclusion_levels = rule_levels(kb.rules)
    except ValueError as exc:
        cycle = str(exc).rsplit(": ", 1)[-1].split(" -> ")
        culprit = next((r for r in kb.rules if r.conclude.id == cycle[0]), kb.rules[0])
        raise KBError([_problem(culprit, str(exc))]) from None
    for index, (rule, node) in enumerate(zip(kb.rules, nnf)):
        try:
            for lit in _literals(node):
                if lit.test.op == "matches":
                    compiled_regex(str(lit.test.value))
        except re.error as exc:
            problems.append(_problem(rule, f"bad regular expression: {exc}"))
            continue
        tiny = [lit.test for lit in _literals(node) if lit.test.op not in ("matches", "exists")
                and any(unsafe_constant(v) for v in (lit.test.value if isinstance(
                    lit.test.value, (list, tuple)) else [lit.test.value]))]
        if tiny:
            problems.append(_problem(rule, f"{tiny[0].field}: constants of magnitude "
                                     f"{TINY_FLOAT} or less cannot be compared by the engine; "
                                     f"use 0 or a larger value"))
            continue
        try:
            parts = _split(node)
        except ValueError as exc:
            problems.append(_problem(rule, str(exc)))
            continue
        for number, (evidence, clits) in enumerate(parts):
            bounds = _bounds(clits)
            if any(lo is not None and hi is not None and lo >= hi for lo, hi in bounds.values()):
                continue  # asks for cf >= x and cf < y with y <= x: never true
            name = f"r{index}d{number}"
            patterns: list[dict] = []
            if evidence is not None:
                patterns.append({"e": {"$and": [{"t": "ev"}, compiler.expression(evidence)]}})
            concluded = {}
            for k, (cid, (lo, hi)) in enumerate(sorted(bounds.items())):
                alias = f"c{k}"
                concluded[cid] = (lo, hi, alias)
                patterns.append({alias: _conclusion_pattern(cid, lo, hi)})
            ruleset[name] = {"all": patterns}
            disjuncts[name] = Disjunct(name, index, evidence, concluded)
    if problems:
        raise KBError(problems)
    needed = sorted({cid for d in disjuncts.values() for cid in d.concluded})
    top = max([conclusion_levels.get(c, 0) for c in needed] or [0])
    referenced = [[c for c in needed if conclusion_levels.get(c, 0) == lvl] for lvl in range(top + 1)]
    bad = unsafe_parts(ruleset)
    if bad:  # a compiler bug, never a KB problem
        raise AssertionError(f"compiled ruleset holds unsafe parts: {bad[:3]}")
    thresholds: dict[str, tuple[Optional[float], Optional[float]]] = {}
    for disjunct in disjuncts.values():
        for cid, (lo, hi, _alias) in disjunct.concluded.items():
            old_lo, old_hi = thresholds.get(cid, (None, None))
            thresholds[cid] = (lo if old_lo is None else (old_lo if lo is None else min(old_lo, lo)),
                               hi if old_hi is None else (old_hi if hi is None else max(old_hi, hi)))
    return CompiledKB(kb.rules, ruleset, disjuncts, compiler.derived, levels, conclusion_levels,
                      referenced, nnf, frozenset(f for node in nnf for f in _read_fields(node)),
                      frozenset(compiler.typed_fields),
                      frozenset(compiler.exists_fields), thresholds)


_COMPARE = {"$lt", "$lte", "$gt", "$gte", "$neq", "$ex", "$nex"}
_SCALARS = (str, int, float, bool)


def unsafe_parts(ruleset: dict) -> list[str]:
    """Everything in a compiled ruleset outside the whitelist 'fact field vs constant':
    cross-fact references, arithmetic, ``$mt`` regexes, ``$not`` patterns, ``any`` rules."""
    found: list[str] = []

    def expr(node: Any, where: str) -> None:
        if not isinstance(node, dict) or len(node) != 1:
            found.append(f"{where}: not a single-key test: {node!r}")
            return
        (key, value), = node.items()
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                found.append(f"{where}: {key} needs a list")
                return
            for i, item in enumerate(value):
                expr(item, f"{where}.{key}[{i}]")
        elif key in _COMPARE:
            if not (isinstance(value, dict) and len(value) == 1
                    and isinstance(next(iter(value.values())), _SCALARS)):
                found.append(f"{where}: {key} not against a constant: {value!r}")
        elif key.startswith("$"):
            found.append(f"{where}: operator {key} not allowed")
        elif not isinstance(value, _SCALARS):
            found.append(f"{where}: {key} compared with a non-constant {value!r}")

    for name, rule in ruleset.items():
        if set(rule) - {"all", "run"}:
            found.append(f"{name}: only 'all' rules are emitted")
        for i, pattern in enumerate(rule.get("all", [])):
            for alias, body in pattern.items():
                if alias.startswith("$"):
                    found.append(f"{name}.all[{i}]: {alias} pattern not allowed")
                expr(body, f"{name}.all[{i}].{alias}")
    return found

