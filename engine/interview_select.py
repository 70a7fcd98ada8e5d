"""Which question to ask next, and when to stop: the interview's look-ahead over the KB.

**Possible rules (three-valued).** Every rule is evaluated over the evidence in Kleene logic
with one twist: a literal on a field that a remaining question can still set is *open*
(unknown now, decidable later), while a literal on a field nobody can set any more (known, or
answered "unknown", or never asked by any question) keeps its plain value, an unknown one
counting as never true. A concluded premise is true when even the least certainty its
conclusion can still end up with reaches the threshold, false when even the greatest cannot,
and open otherwise; those bounds are folded (MYCIN combination, KB order) level by level from
the rules that hold now plus the open rules of each sign. A rule that is not *false* is still
possible; an *open* one is pending and names the open fields it needs (the open literals on
the branches that can still make it true).

**Question value.** A pending rule's value is ``|cf| × (weight(conclusion) +
demand(conclusion))``, shared equally among the requirements it still needs at least (all of
an ``all``, the cheapest alternative of an ``any``; open fields and open concluded premises
alike), so a question that completes a rule counts more than one of several still missing.
The weight says how much the conclusion is the outcome: an origin counts 1 while its bounds
still allow another origin (0 once they cannot); a sub-type counts by its closeness to the top
diagnosis, ``1 - (cf(top) - cf(it))``, and 0 when even its greatest certainty cannot pass the
top or it cannot be shown under a settled origin; patterns and findings count only through
demand: 0.8 × the shares of the pending rules that read them as a concluded premise
(computed from the highest level down, so a question that establishes a pattern inherits the
value of the diagnoses waiting on that pattern). A question's value is the sum of the shares
of the pending rules that need its field; ties are broken by KB order. The rule contributing
most to it is *the rule being pursued* (WHY), and the pending rules waiting on that rule's
conclusion are the levels above it.

**Choosing and stopping.** The outcome is the origin, the top diagnosis (as ``analyze``
shows it), whether that diagnosis is confident enough for its fixes (cf >= 0.3) and whether it
leads the runner-up by 0.1. Going down the value ranking, each question's possible answers are
tried one at a time (one pure-Python inference each): yes and no, every choice, one number per
region that the KB's thresholds on the field cut out. The question asked is the most valuable
one that either (a) changes the outcome with one answer, (b) changes the timing pattern with
one answer while no diagnosis is confident (a pattern is the step towards a diagnosis), or
(c) is one of at most two answers a pending rule still needs to lift another diagnosis (one
consistent with the origin) past the top — pairs that one-answer trials cannot see. The
interview stops when no remaining question can change the outcome by (a) or (c); questions
already answered, answered "unknown", or known from a capture or a paste are never asked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from . import certainty
from .conditions import And, CLit, Lit, Node, eval_lit
from .report_build import MIN_FIX_CF, diagnoses_for

DEMAND_SHARE = 0.8
DIAGNOSIS_MARGIN = 0.1  # the top diagnosis must lead the runner-up by this much
EPS = 1e-9
OPEN = None  # the open truth value


@dataclass
class RuleOutlook:
    index: int
    truth: Optional[bool]  # True holds now for good, False cannot fire, None pending
    needs: set[str] = field(default_factory=set)  # open fields on live branches
    waits_on: set[str] = field(default_factory=set)  # open concluded premises (positive)
    value: float = 0.0
    cost: int = 1  # open requirements still needed at least


@dataclass
class Outlook:
    """The look-ahead over one evidence set."""

    rules: list[RuleOutlook]
    bounds: dict[str, tuple[float, float]]  # conclusion -> (least, greatest) reachable cf
    weight: dict[str, float]
    demand: dict[str, float]
    field_value: dict[str, float]
    origin_can_change: bool
    top: Optional[str]
    near: set[str] = field(default_factory=set)  # fields of two-answer paths past the top


def outcome_of(kb, inference) -> tuple[str, Optional[str], bool, bool]:
    """What the interview is about: the origin, the top diagnosis consistent with it, whether
    that diagnosis is confident enough to prescribe its fixes, and whether it leads the
    runner-up clearly (a tie is not a diagnosis)."""
    origin = inference.origin
    diagnoses = diagnoses_for(kb, inference, origin, "en")
    if not diagnoses:
        return origin, None, False, False
    top = diagnoses[0]
    runner_up = diagnoses[1].confidence if len(diagnoses) > 1 else 0.0
    return (origin, top.id, top.confidence >= MIN_FIX_CF,
            top.confidence - runner_up >= DIAGNOSIS_MARGIN - EPS)


def _origin_of(middle: float, endpoint: float) -> str:
    from .reasoner import ORIGIN_MARGIN, ORIGIN_MIN_CF
    middle, endpoint = max(middle, 0.0), max(endpoint, 0.0)
    best, cf, other = (("middle_device", middle, endpoint) if middle >= endpoint
                       else ("endpoint", endpoint, middle))
    return best if cf >= ORIGIN_MIN_CF and cf - other >= ORIGIN_MARGIN - EPS else "undetermined"


class Lookahead:
    """Built once per Reasoner: the rule structure the look-ahead walks."""

    def __init__(self, reasoner):
        self.reasoner = reasoner
        self.kb = reasoner.kb
        self.nnf = reasoner.compiled.nnf
        levels = reasoner.compiled.rule_levels
        self.order = sorted(range(len(self.kb.rules)), key=lambda i: (levels[i], i))
        self.by_conclusion: dict[str, list[int]] = {}
        for index, rule in enumerate(self.kb.rules):
            self.by_conclusion.setdefault(rule.conclude.id, []).append(index)

    # ------------------------------------------------------------------ three-valued
    def _truth(self, node: Node, evidence: dict, open_fields: set[str],
               bounds: dict[str, tuple[float, float]]) -> Optional[bool]:
        if isinstance(node, Lit):
            if node.test.field in open_fields:
                return OPEN
            return eval_lit(node, evidence) is True  # unknown for good: never true
        if isinstance(node, CLit):
            low, high = bounds.get(node.concluded, (0.0, 0.0))
            holds_surely, may_hold = low >= node.min_cf - EPS, high >= node.min_cf - EPS
            if node.negated:
                holds_surely, may_hold = not may_hold, not holds_surely
            return True if holds_surely else (OPEN if may_hold else False)
        values = [self._truth(n, evidence, open_fields, bounds) for n in node.items]
        if isinstance(node, And):
            return False if False in values else (OPEN if OPEN in values else True)
        return True if True in values else (OPEN if OPEN in values else False)

    def _needs(self, node: Node, evidence, open_fields, bounds, needs: set, waits: set) -> int:
        """Collect the open fields and concluded premises on the branches that can still make
        ``node`` true; return how many of them it still needs at least (all of an ``all``,
        the cheapest alternative of an ``any``)."""
        if self._truth(node, evidence, open_fields, bounds) is not OPEN:
            return 0
        if isinstance(node, Lit):
            needs.add(node.test.field)
            return 1
        if isinstance(node, CLit):
            if not node.negated:
                waits.add(node.concluded)
            return 1
        costs = [self._needs(child, evidence, open_fields, bounds, needs, waits)
                 for child in node.items]
        live = [c for c in costs if c > 0]
        if isinstance(node, And):
            return sum(live)
        return min(live) if live else 0

    # ------------------------------------------------------------------ outlook
    def outlook(self, evidence: dict[str, Any], inference, open_fields: set[str]) -> Outlook:
        kb, rules = self.kb, self.kb.rules
        cfs = inference.cfs
        bounds: dict[str, tuple[float, float]] = {}
        outlooks: dict[int, RuleOutlook] = {}
        done: dict[str, int] = {cid: 0 for cid in self.by_conclusion}
        strengths = {j.rule_id: j.cf for j in inference.fired}
        for index in self.order:
            node = self.nnf[index]
            truth = self._truth(node, evidence, open_fields, bounds)
            ro = RuleOutlook(index, truth)
            if truth is OPEN:
                ro.cost = max(1, self._needs(node, evidence, open_fields, bounds, ro.needs,
                                             ro.waits_on))
            outlooks[index] = ro
            cid = rules[index].conclude.id
            done[cid] += 1
            if done[cid] == len(self.by_conclusion[cid]):
                bounds[cid] = self._bounds(cid, outlooks, strengths)
        for cid in self.by_conclusion:
            bounds.setdefault(cid, (cfs.get(cid, 0.0), cfs.get(cid, 0.0)))

        origin_can_change = self._origin_can_change(inference.origin, bounds)
        top = outcome_of(kb, inference)[1]
        top_cf = inference.cf(top) if top else 0.0
        weight: dict[str, float] = {}
        for cid in self.by_conclusion:
            kind = kb.conclusions[cid].kind if cid in kb.conclusions else "finding"
            if kind == "origin":
                weight[cid] = 1.0 if origin_can_change else 0.0
            elif kind == "subtype":
                cf, high = max(inference.cf(cid), 0.0), bounds[cid][1]
                if (cid != top and high <= top_cf + EPS) or \
                        not _fits_origin(cid, inference.origin, origin_can_change):
                    weight[cid] = 0.0
                else:
                    weight[cid] = max(0.0, 1.0 - (top_cf - cf))
            else:
                weight[cid] = 0.0
        demand: dict[str, float] = {}
        for index in reversed(self.order):  # readers sit above what they read
            ro = outlooks[index]
            if ro.truth is not OPEN:
                continue
            rule = rules[index]
            cid = rule.conclude.id
            ro.value = abs(rule.conclude.cf) * (weight.get(cid, 0.0) + demand.get(cid, 0.0))
            for premise in ro.waits_on:
                demand[premise] = demand.get(premise, 0.0) + DEMAND_SHARE * ro.value / ro.cost
        field_value: dict[str, float] = {}
        for ro in outlooks.values():
            for name in ro.needs:
                field_value[name] = field_value.get(name, 0.0) + ro.value / ro.cost
        ordered = [outlooks[i] for i in range(len(rules))]
        near = self._near(ordered, inference, top, top_cf)
        return Outlook(ordered, bounds, weight, demand, field_value, origin_can_change, top, near)

    def _near(self, outlooks: list[RuleOutlook], inference, top: Optional[str],
              top_cf: float) -> set[str]:
        """Fields of pending rules at most two answers from firing whose firing alone would
        lift another diagnosis past the top (one-step simulation misses these pairs)."""
        kb, out = self.kb, set()
        for ro in outlooks:
            rule = kb.rules[ro.index]
            cid = rule.conclude.id
            concl = kb.conclusions.get(cid)
            if ro.truth is not OPEN or ro.cost > 2 or rule.conclude.cf <= 0 or cid == top \
                    or concl is None or concl.kind != "subtype" \
                    or not _fits_origin(cid, inference.origin, False):
                continue
            strength = min([inference.cf(c.concluded) for c in _clits(self.nnf[ro.index])
                            if not c.negated and inference.cf(c.concluded) >= c.min_cf - EPS]
                           + [1.0])
            lifted = certainty.combine(max(inference.cf(cid), 0.0), rule.conclude.cf * strength)
            if lifted > top_cf + EPS:
                out |= ro.needs
        return out

    def _bounds(self, cid: str, outlooks: dict[int, RuleOutlook], strengths) -> tuple[float, float]:
        rules = self.kb.rules
        sure, up, down = [], [], []
        for index in self.by_conclusion[cid]:
            ro, cf = outlooks[index], rules[index].conclude.cf
            if ro.truth is True:
                sure.append((index, strengths.get(rules[index].id, cf)))
            elif ro.truth is OPEN:
                (up if cf > 0 else down).append((index, cf))
        low = certainty.combine_all(v for _, v in sorted(sure + down))
        high = certainty.combine_all(v for _, v in sorted(sure + up))
        return min(low, high), max(low, high)

    @staticmethod
    def _origin_can_change(current: str, bounds) -> bool:
        middle = bounds.get("origin.middle_device", (0.0, 0.0))
        endpoint = bounds.get("origin.endpoint", (0.0, 0.0))
        corners = {_origin_of(m, e) for m in middle for e in endpoint}
        return corners != {current}

    # ------------------------------------------------------------------ one-step simulation
    def candidate_values(self, name: str, spec_kind: str, choices: Iterable[Any] = ()
                         ) -> list[Any]:
        """One value per distinct outcome the KB's tests on ``name`` can give."""
        choices = list(choices)
        if spec_kind == "bool":
            return [True, False]
        if choices:
            return choices
        literals = [lit for node in self.nnf for lit in _lits(node) if lit.test.field == name]
        if spec_kind in ("int", "float"):
            points: set[float] = {0}
            for lit in literals:
                values = lit.test.value if isinstance(lit.test.value, list) else [lit.test.value]
                for v in values:
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        step = 1 if spec_kind == "int" else 0.5
                        points.update({v - step, v, v + step})
            raw = sorted(p for p in points if p >= 0)
            if spec_kind == "int":
                raw = sorted({int(math.floor(p)) for p in raw})
        else:
            raw = sorted({v for lit in literals for v in
                          (lit.test.value if isinstance(lit.test.value, list) else [lit.test.value])
                          if isinstance(v, str)})
        out, seen = [], set()
        for value in raw:
            signature = tuple(eval_lit(lit, {name: value}) for lit in literals)
            if signature not in seen:
                seen.add(signature)
                out.append(value)
        return out

    def outcomes(self, evidence: dict[str, Any], name: str, values: list[Any]
                 ) -> list[tuple[tuple, Optional[str]]]:
        """(outcome_of, pattern) after each value of ``name`` alone."""
        from .conditions import normalize_evidence
        out = []
        for value in values:
            trial = normalize_evidence({**evidence, name: value})
            strengths, order = self.reasoner.fire_python(trial)
            inference = self.reasoner.build(trial, strengths, order)
            out.append((outcome_of(self.kb, inference), inference.pattern))
        return out


def _fits_origin(subtype: str, origin: str, origin_can_change: bool) -> bool:
    """Whether a diagnosis can be shown under the origin (``diagnoses_for``'s filter)."""
    if origin_can_change or origin == "undetermined":
        return True
    return subtype.startswith("endpoint.") == (origin == "endpoint")


def _clits(node: Node) -> list[CLit]:
    if isinstance(node, CLit):
        return [node]
    if isinstance(node, Lit):
        return []
    return [c for child in node.items for c in _clits(child)]


def _lits(node: Node) -> list[Lit]:
    if isinstance(node, Lit):
        return [node]
    if isinstance(node, CLit):
        return []
    return [lit for child in node.items for lit in _lits(child)]
