"""Forward chaining over the compiled KB with durable-rules, certainty combination and the
Inference object every front end reads.

Evaluation order (the fixpoint, by stratification): within one durable session the
evidence fact is asserted first; every rule over evidence alone fires then. Conclusions are
then asserted level by level (``conditions.rule_levels``): a conclusion's fact is asserted
once, with its final combined cf, after every rule that can conclude it has had its chance,
and that assertion fires the rules that read it. After the last level nothing can change, so
this is the fixpoint, reached in one pass without retraction. A KB rule fires at most once:
when several of its alternatives match, the strongest proof counts.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from pydantic import BaseModel, Field

from facts.fastmodel import construct

from . import certainty
from .compile import CompiledKB, compile_kb
from .conditions import ASK, compiled_evkey, normalize_evidence, render_value, support
from .host import EngineError, RulesetHost
from .kb import KnowledgeBase
from .run_class import KeyPlan, identity

KINDS = ("origin", "pattern", "subtype", "finding")
ORIGIN_MIN_CF = 0.3
ORIGIN_MARGIN = 0.2
PATTERN_MIN_CF = 0.2


class Premise(BaseModel):
    field: str
    op: str
    value: Any = None
    actual: Any = None


class ConcludedPremise(BaseModel):
    concluded: str
    cf: float


class Justification(BaseModel):
    """One rule firing: why, and how much it added."""

    rule_id: str
    rev: int
    conclusion: str
    rule_cf: float
    cf: float = Field(description="Contributed: rule cf × weakest concluded premise")
    premises: list[Premise] = Field(default_factory=list)
    concluded: list[ConcludedPremise] = Field(default_factory=list)


class ConclusionState(BaseModel):
    id: str
    kind: str
    cf: float
    supports: list[Justification] = Field(default_factory=list)


_UNKNOWN = object()  # not worked out yet (None is a valid pattern: none)


class Inference:
    """The result of one reasoning over one evidence set.

    Certainties (``cf``, ``ranked``, ``origin``, ``pattern``, ``summary``) are ready at once;
    the justifications (``conclusions``, ``fired``, ``trace``, ``how``) are built on first
    use, so reasoning over thousands of evidence sets pays only for what is read."""

    def __init__(self, kb: KnowledgeBase, evidence: dict[str, Any], cfs: dict[str, float],
                 kinds: dict[str, str],
                 explain: Callable[[], tuple[dict[str, ConclusionState], list[Justification],
                                            list[str]]],
                 notes: list[str] | None = None):
        self.kb = kb
        self.evidence = evidence
        self.cfs = cfs
        self.kinds = kinds
        self.notes = notes or []  # e.g. evidence durable dropped (it matched no pattern)
        self._explain = explain
        self._details = None
        self.run_key: Optional[tuple] = None  # Reasoner.run_key of its evidence, when known
        # One object per run class, shared by the class's inferences (infer_many): keying by
        # its id is cheaper than hashing the run key again for every reset of a report
        self.run_class: Optional[object] = None
        # origin and pattern, worked out on first use: the certainties never change, and a
        # report reads both several times per reset
        self._origin: Optional[str] = None
        self._pattern: Any = _UNKNOWN

    def _explained(self):
        if self._details is None:
            self._details = self._explain()
        return self._details

    @property
    def conclusions(self) -> dict[str, ConclusionState]:
        return self._explained()[0]

    @property
    def fired(self) -> list[Justification]:
        return self._explained()[1]

    @property
    def trace(self) -> list[str]:
        return self._explained()[2]

    def cf(self, conclusion_id: str) -> float:
        return self.cfs.get(conclusion_id, 0.0)

    def ranked(self, kind: str) -> list[tuple[str, float]]:
        """Conclusions of one kind with cf > 0, best first (ties by id)."""
        out = [(cid, cf) for cid, cf in self.cfs.items() if self.kinds[cid] == kind and cf > 0]
        return sorted(out, key=lambda item: (-item[1], item[0]))

    @property
    def origin(self) -> str:
        """``middle_device`` or ``endpoint`` when ``origin.<that>`` has cf ≥ 0.3 and beats
        ``origin.<the other>`` by ≥ 0.2 (an absent or negative one counts as 0);
        otherwise ``undetermined``."""
        if self._origin is None:
            self._origin = self._work_out_origin()
        return self._origin

    def _work_out_origin(self) -> str:
        middle = max(self.cf("origin.middle_device"), 0.0)
        endpoint = max(self.cf("origin.endpoint"), 0.0)
        best, cf, other = (("middle_device", middle, endpoint) if middle >= endpoint
                           else ("endpoint", endpoint, middle))
        if cf >= ORIGIN_MIN_CF and cf - other >= ORIGIN_MARGIN - 1e-9:
            return best
        return "undetermined"

    @property
    def pattern(self) -> Optional[str]:
        """The best ``pattern.*`` id without its prefix, if its cf ≥ 0.2."""
        if self._pattern is _UNKNOWN:
            ranked = self.ranked("pattern")
            self._pattern = None
            if ranked and ranked[0][1] >= PATTERN_MIN_CF:
                self._pattern = (ranked[0][0].split(".", 1)[1] if "." in ranked[0][0]
                                 else ranked[0][0])
        return self._pattern

    def how(self, conclusion_id: str):
        from .explain import how
        return how(self, conclusion_id)

    def summary(self) -> dict[str, Any]:
        return {"origin": self.origin, "pattern": self.pattern,
                "conclusions": dict(sorted(self.cfs.items()))}


def _kind(kb: KnowledgeBase, conclusion_id: str) -> str:
    declared = kb.conclusions.get(conclusion_id)
    if declared is not None:
        return declared.kind
    prefix = conclusion_id.split(".", 1)[0]
    return prefix if prefix in KINDS else "finding"


class Reasoner:
    """Compiles the KB once (at construction) and reasons over evidence sets.

    Each Reasoner registers its own uniquely named durable ruleset, so several (e.g. an old
    and a reloaded KB in the TUI) coexist; :meth:`close` unloads it."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.compiled: CompiledKB = compile_kb(kb)
        labels = {name: kb.rules[d.rule_index].id for name, d in self.compiled.disjuncts.items()}
        self.host = RulesetHost(self.compiled.ruleset, labels)
        self._by_conclusion: dict[str, list[int]] = {}
        self._key_plan: Optional[KeyPlan] = None
        for index, rule in enumerate(kb.rules):
            self._by_conclusion.setdefault(rule.conclude.id, []).append(index)

    def close(self) -> None:
        self.host.close()

    def __enter__(self) -> "Reasoner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ durable
    def fire(self, evidence: dict[str, Any], given: dict[str, float] | None = None
             ) -> tuple[dict[int, float], list[int], list[str]]:
        """Run durable over normalized evidence. Returns (rule index -> premise strength,
        rule indexes in firing order, notes). With ``given``
        the conclusions are not computed: their facts carry exactly the given cfs (0 when
        absent) — the isolation embedded rule tests need."""
        compiled = self.compiled
        strengths: dict[int, float] = {}
        order: list[int] = []
        asserted: dict[str, float] = {}  # our own cfs: exact, whatever durable echoes back

        def on_match(name: str, facts: dict[str, dict]) -> None:
            disjunct = compiled.disjuncts[name]
            strength = 1.0
            for cid, (lo, _hi, alias) in disjunct.concluded.items():
                if lo is not None:
                    if facts[alias]["id"] != cid:
                        raise AssertionError(f"pattern {alias} matched {facts[alias]['id']}")
                    strength = min(strength, asserted[cid])
            index = disjunct.rule_index
            if index not in strengths:
                order.append(index)
            strengths[index] = max(strength, strengths.get(index, strength))

        notes: list[str] = []
        with self.host.session(on_match) as session:
            if not session.assert_fact(compiled.evidence_fact(evidence)):
                notes.append("the evidence matched no rule's evidence pattern")
            for level_ids in compiled.referenced:
                for cid in level_ids:
                    cf = (given.get(cid, 0.0) if given is not None
                          else self._combined(cid, strengths))
                    asserted[cid] = cf
                    if not compiled.worth_asserting(cid, cf):
                        continue  # no premise threshold reached: it could enable nothing
                    if not session.assert_fact({"t": "c", "id": cid, "cf": cf}):
                        # it reaches a premise threshold, so a pattern must have taken it
                        raise EngineError(f"durable-rules dropped conclusion fact {cid} "
                                          f"(cf {cf:g}) that a rule premise reads")
        return strengths, order, notes

    def _combined(self, cid: str, strengths: dict[int, float]) -> float:
        rules = self.kb.rules
        return certainty.combine_all(
            certainty.contribution(rules[i].conclude.cf, strengths[i])
            for i in self._by_conclusion.get(cid, []) if i in strengths)

    # ------------------------------------------------------------------ python reference
    def fire_python(self, evidence: dict[str, Any], given: dict[str, float] | None = None
                    ) -> tuple[dict[int, float], list[int]]:
        """The same reasoning with ``conditions`` only (no durable): the reference the
        durable path is tested against, and the fallback for explanations."""
        compiled = self.compiled
        strengths: dict[int, float] = {}
        order: list[int] = []
        for level in sorted(set(compiled.rule_levels)):
            # stratified: a rule at this level reads only conclusions whose rules all sit
            # at lower levels, so recomputing every cf here never exposes a partial one
            cfs = dict(given) if given is not None else {
                cid: self._combined(cid, strengths) for cid in self._by_conclusion}
            for index, rule_level in enumerate(compiled.rule_levels):
                if rule_level == level:
                    proof = support(compiled.nnf[index], evidence, cfs)
                    if proof is not None:
                        strengths[index] = proof[0]
                        order.append(index)
        return strengths, order

    # ------------------------------------------------------------------ public
    def infer(self, evidence: dict[str, Any]) -> "Inference":
        normalized = normalize_evidence(evidence)
        strengths, order, notes = self.fire(normalized)
        return self.build(normalized, strengths, order, notes)

    def infer_many(self, evidences: list[dict[str, Any]], *, share: bool = True
                   ) -> list["Inference"]:
        """Identical evidence sets (same items after normalization) reason once and share
        one Inference. Sets that differ only in fields no rule reads (``server_ip`` …) share
        the durable run but get their own Inference, whose ``evidence`` is their own;
        every other set gets its own durable session. ``share=False``: every set gets its
        own Inference (still one durable run per class), for callers whose sets are nearly
        all distinct anyway (a capture's resets differ in their times), where looking for
        identical ones costs more than it saves."""
        runs: dict[Any, tuple] = {}
        same: dict[str, Inference] = {}
        out = []
        compiled = compiled_evkey()
        for evidence in evidences:
            normalized = normalize_evidence(evidence, compiled)
            if share:
                key = identity(normalized)
                inference = same.get(key)
                if inference is not None:
                    out.append(inference)
                    continue
            run_key = self.run_key(normalized, compiled)
            run = runs.get(run_key)
            if run is None:
                strengths, order, notes = self.fire(normalized)
                cfs, kinds = self._certainties(strengths)
                run = runs[run_key] = (strengths, order, notes, cfs, kinds)
            strengths, order, notes, cfs, kinds = run
            inference = Inference(self.kb, normalized, cfs, kinds,
                                  self._explainer(normalized, strengths, order, cfs, kinds),
                                  notes)
            inference.run_key = run_key
            inference.run_class = run
            if share:
                same[key] = inference
            out.append(inference)
        return out

    def _explainer(self, evidence, strengths, order, cfs, kinds):
        return lambda: self._explain(evidence, strengths, order, cfs, kinds)

    def _certainties(self, strengths: dict[int, float]) -> tuple[dict, dict]:
        rules = self.kb.rules
        cfs = {cid: self._combined(cid, strengths) for cid in {rules[i].conclude.id for i in strengths}}
        return cfs, {cid: _kind(self.kb, cid) for cid in cfs}

    def run_key(self, normalized: dict[str, Any], compiled: Any = ASK) -> tuple:
        """Evidence sets with equal keys make exactly the same rules fire with the same
        strengths (``run_class.KeyPlan``): captures with thousands of resets reason once per
        class."""
        plan = self._key_plan
        if plan is None:
            plan = self._key_plan = KeyPlan(self.compiled)
        return plan.key(normalized, compiled)

    def build(self, evidence: dict[str, Any], strengths: dict[int, float], order: list[int],
              notes: list[str] | None = None) -> "Inference":
        cfs, kinds = self._certainties(strengths)
        return Inference(self.kb, evidence, cfs, kinds,
                         lambda: self._explain(evidence, strengths, order, cfs, kinds), notes)

    def _explain(self, evidence: dict[str, Any], strengths: dict[int, float], order: list[int],
                 cfs: dict[str, float], kinds: dict[str, str]):
        rules = self.kb.rules
        justifications: dict[int, Justification] = {}
        trace: list[str] = []
        for step, index in enumerate(order, 1):
            rule = rules[index]
            proof = support(self.compiled.nnf[index], evidence, cfs)
            lits, concluded = (proof[1], proof[2]) if proof else ([], [])
            # constructed without validation: these values are ours and already typed
            just = construct(
                Justification, rule_id=rule.id, rev=rule.rev, conclusion=rule.conclude.id,
                rule_cf=rule.conclude.cf,
                cf=certainty.contribution(rule.conclude.cf, strengths[index]),
                premises=[construct(Premise, field=lit.test.field, op=lit.op, value=lit.value,
                                    actual=evidence.get(lit.test.field, "unknown"))
                          for lit in lits],
                concluded=[construct(ConcludedPremise, concluded=c, cf=cf)
                           for c, cf in concluded])
            justifications[index] = just
            because = [f"{p.field} {p.op} {render_value(p.value)} (is {render_value(p.actual)})"
                       if p.op != "exists" else f"{p.field} {'known' if p.value else 'unknown'}"
                       for p in just.premises]
            because += [f"{c.concluded} cf {c.cf:+.2f}" for c in just.concluded]
            trace.append(f"{step}. {rule.id} r{rule.rev} -> {rule.conclude.id} "
                         f"{just.cf:+.2f} (rule {rule.conclude.cf:+.2f}) because "
                         + ("; ".join(because) or "always"))
        conclusions: dict[str, ConclusionState] = {}
        for index in sorted(justifications):  # rule order: the order supports are combined
            just = justifications[index]
            state = conclusions.get(just.conclusion)
            if state is None:
                state = conclusions[just.conclusion] = ConclusionState.model_construct(
                    id=just.conclusion, kind=kinds[just.conclusion],
                    cf=cfs[just.conclusion], supports=[])
            state.supports.append(just)
        return conclusions, [justifications[i] for i in order], trace

    def why_not(self, evidence: dict[str, Any], conclusion_id: str):
        from .explain import why_not
        inference = self.infer(evidence)
        return why_not(self, inference, conclusion_id)

    def what_if(self, evidence: dict[str, Any], changes: dict[str, Any]):
        from .explain import what_if
        return what_if(self, evidence, changes)
