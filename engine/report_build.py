"""Pieces of the report that come from an Inference: diagnoses, fixes, evidence, findings."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from facts.fastmodel import construct

from . import fixparams
from .kb import KnowledgeBase
from .report_model import Diagnosis, EvidenceItem, Finding, FiredRule, FixOut, HowTree, ResetOut

MIN_DIAGNOSIS_CF = 0.2
MAX_DIAGNOSES = 5
MIN_FIX_CF = 0.3
_UNSET = object()  # a placeholder the evidence gives no value for


def _t(text, lang: str) -> str:
    return getattr(text, lang, None) or text.en


def diagnoses_for(kb: KnowledgeBase, inf, origin: str, lang: str) -> list[Diagnosis]:
    """Sub-types ranked by certainty, restricted to those consistent with the origin."""
    out = []
    for cid, cf in inf.ranked("subtype"):
        if cf < MIN_DIAGNOSIS_CF:
            continue
        is_endpoint = cid.startswith("endpoint.")
        if (origin == "middle_device" and is_endpoint) or (origin == "endpoint" and not is_endpoint):
            continue
        concl = kb.conclusions.get(cid)
        out.append(Diagnosis(id=cid, confidence=round(min(1.0, cf), 3),
                             title=_t(concl.title, lang) if concl else cid,
                             family=concl.family if concl else cid.split(".")[0]))
    return out[:MAX_DIAGNOSES]


def applicable_fixes(kb: KnowledgeBase, inf, origin: str, diagnoses: list[Diagnosis],
                     port: int) -> list:
    """The KB fixes of the confident diagnoses (then of the timing pattern) that apply to
    this server port, in order."""
    ids: list[str] = []
    sources = [d.id for d in diagnoses if d.confidence >= MIN_FIX_CF]
    if inf.pattern and not sources and origin != "endpoint":
        sources.append(f"pattern.{inf.pattern}")
    for cid in sources:
        concl = kb.conclusions.get(cid)
        for fix_id in (concl.fixes if concl else []):
            if fix_id not in ids:
                ids.append(fix_id)
    out = []
    for fix_id in ids:
        fix = kb.fixes.get(fix_id)
        if fix is not None and (not fix.ports or port in fix.ports):
            out.append(fix)
    return out


def fix_plan(kb: KnowledgeBase, inf, origin: str, diagnoses: list[Diagnosis], port: int,
             lang: str, cache: dict) -> tuple[list, frozenset[str]]:
    """The applicable fixes with their placeholder names, and all those names: the same for
    every reset with these diagnoses, pattern, port and language (kept in ``cache``)."""
    choice = (applicable_fixes, origin, inf.pattern, port, lang,
              *[(d.id, d.confidence) for d in diagnoses])
    plan = cache.get(choice)
    if plan is None:
        fixes = [(fix, fixparams.placeholders_of(fix, lang))
                 for fix in applicable_fixes(kb, inf, origin, diagnoses, port)]
        plan = cache[choice] = (fixes, frozenset(n for _, names in fixes for n in names))
    return plan


def fixes_for(kb: KnowledgeBase, inf, origin: str, diagnoses: list[Diagnosis], port: int,
              params: dict[str, Any] | Callable[[frozenset[str]], dict[str, Any]], lang: str,
              cache: dict | None = None) -> list[FixOut]:
    """The applicable fixes rendered for this application. ``params``: the fix parameters
    (``fixparams.compute``), or a function of the parameter names the fixes use that
    computes at least those, called only when some fix applies. ``cache`` (any dict kept
    for one report) shares each fix rendered with the same values of its placeholders
    between resets, and the choice of fixes between resets with the same diagnoses, port
    and language."""
    if cache is None:
        cache = {}
    fixes, wanted = fix_plan(kb, inf, origin, diagnoses, port, lang, cache)
    if not fixes:
        return []
    if callable(params):
        params = params(wanted)
    return [rendered_fix(fix, names, params, lang, cache) for fix, names in fixes]


def rendered_fix(fix, names: tuple[str, ...], params: dict[str, Any], lang: str,
                 cache: dict) -> FixOut:
    """The fix rendered with ``params``; ``names``: its placeholders (``fix_plan``). Shared
    through ``cache`` by every reset with the same values of those."""
    values = [params.get(n, _UNSET) for n in names]
    # types too: 60 and 60.0 render differently
    key = (FixOut, fix.id, lang, *values, *map(type, values))
    made = cache.get(key)
    if made is None:
        made = cache[key] = construct(
            FixOut, id=fix.id, title=fixparams.render_title(fix, params, lang),
            text=fixparams.render(fix, params, lang))
    return made


def fired_rules(inf) -> list[FiredRule]:
    return [FiredRule(rule=j.rule_id, rev=j.rev, conclusion=j.conclusion, cf=round(j.cf, 3))
            for j in inf.fired]


def _fact_premises(inf, conclusion_id: str, seen: frozenset = frozenset()):
    """(rule id, field, op, expected) of every observed fact in the HOW tree of
    ``conclusion_id``, in the tree's order (``explain.how``: each support's fact premises,
    then its concluded premises' trees), read from the justifications without building the
    tree."""
    state = inf.conclusions.get(conclusion_id)
    if state is None or conclusion_id in seen:
        return
    seen = seen | {conclusion_id}
    for just in state.supports:
        for p in just.premises:
            yield just.rule_id, p.field, p.op, p.value
        for c in just.concluded:
            yield from _fact_premises(inf, c.concluded, seen)


def evidence_template(inf, origin: str, diagnoses: list[Diagnosis]) -> list[tuple]:
    """(rule id, field, op, expected) of the observed facts the verdict rests on, from the HOW
    trees. The same for every evidence set of one run class (Reasoner.run_key), so a report
    builds it once per class and fills in each reset's own values."""
    targets = [f"origin.{origin}"] if origin != "undetermined" else []
    if inf.pattern:
        targets.append(f"pattern.{inf.pattern}")
    targets += [d.id for d in diagnoses[:1]]
    rows: OrderedDict[str, tuple] = OrderedDict()
    for target in targets:
        if inf.cf(target) <= 0:
            continue
        for rule_id, field, op, expected in _fact_premises(inf, target):
            if field and field not in rows:
                rows[field] = (rule_id, field, op, expected)
    return list(rows.values())


def template_rows(template: list[tuple], cache: dict) -> list[tuple]:
    """Each row's (field, the text before and after its value, its items' cache tag), made
    once per template and report."""
    key = (evidence_from_template, id(template))
    found = cache.get(key)
    if found is None:
        found = cache[key] = (template, [
            (field, f"{field} = ", f" ({op} {expected!r}; rule {rule_id})", (EvidenceItem, id(row)))
            for row in template for rule_id, field, op, expected in (row,)])
    return found[1]


def evidence_from_template(template: list[tuple], evidence: dict[str, Any],
                           cache: dict | None = None) -> list[EvidenceItem]:
    """``cache`` (any dict kept for one report) shares items with the same row and value;
    floats are not shared (measured times rarely repeat)."""
    if cache is None:
        cache = {}
    out = []
    get = evidence.get
    for field, before, after, tag in template_rows(template, cache):
        actual = get(field, "unknown")
        kind = type(actual)
        if kind is bool or kind is int or kind is str:
            key = (tag, kind, actual)
            found = cache.get(key)
            if found is None:
                found = cache[key] = construct(EvidenceItem, field=field, value=actual,
                                               text=before + repr(actual) + after)
            out.append(found)
        else:
            out.append(construct(EvidenceItem, field=field, value=actual,
                                 text=before + repr(actual) + after))
    return out


def evidence_items(inf, origin: str, diagnoses: list[Diagnosis], lang: str) -> list[EvidenceItem]:
    """The observed facts that the verdict rests on, straight from the HOW trees."""
    return evidence_from_template(evidence_template(inf, origin, diagnoses), inf.evidence)


def story(r: ResetOut) -> tuple:
    """(what groups resets into one finding, the reset's id, its time): all that findings
    need of a reset besides the first reset of each finding."""
    return ((r.capture, r.observed_at, r.claimed_sender, r.connection.server.port, r.origin,
             r.pattern, tuple(d.id for d in r.diagnoses[:3])), r.id, r.time)


def build_findings(kb: KnowledgeBase, resets: list[ResetOut], inferences: list, lang: str
                   ) -> list[Finding]:
    """Resets with the same story become one finding with a count; each reset's
    ``reasoning.finding`` names its finding."""
    findings, ids = findings_of(kb, [story(r) for r in resets],
                                lambda i: (resets[i], inferences[i]), lang)
    for r, fid in zip(resets, ids):
        r.reasoning.finding = fid
    return findings


def findings_of(kb: KnowledgeBase, stories: list[tuple], first: Callable[[int], tuple], lang: str
                ) -> tuple[list[Finding], list[str]]:
    """The findings of resets given by their ``story``, and each reset's finding id.
    ``first(i)``: reset ``i`` and its Inference, asked only for the first reset of each
    finding (a report built by several processes holds the others as JSON only)."""
    groups: OrderedDict[tuple, list[int]] = OrderedDict()
    for i, (key, _, _) in enumerate(stories):
        groups.setdefault(key, []).append(i)
    findings = []
    ids = [""] * len(stories)
    for n, (key, members) in enumerate(groups.items(), start=1):
        first_reset, inf = first(members[0])
        fid = f"f{n}"
        for i in members:
            ids[i] = fid
        top = first_reset.diagnoses[0] if first_reset.diagnoses else None
        trees = []
        for cid in ([f"origin.{first_reset.origin}"] if first_reset.origin != "undetermined" else []) + \
                   ([f"pattern.{first_reset.pattern}"] if first_reset.pattern else []) + ([top.id] if top else []):
            if inf.cf(cid) > 0:
                node = inf.how(cid).model_dump()
                trees.append(HowTree(conclusion=node.get("conclusion", cid),
                                     title=str(node.get("title", cid)), cf=float(node.get("cf", 0)),
                                     supports=node.get("supports", [])))
        times = [stories[i][2] for i in members]
        findings.append(Finding(
            id=fid, count=len(members), origin=first_reset.origin,
            origin_confidence=first_reset.origin_confidence, pattern=first_reset.pattern,
            claimed_sender=first_reset.claimed_sender, server_port=first_reset.connection.server.port,
            application=first_reset.connection.application, top_diagnosis=top,
            diagnoses=first_reset.diagnoses, summary=summary(first_reset, len(members), lang),
            reset_ids=[stories[i][1] for i in members], first_time=min(times),
            last_time=max(times), fixes=first_reset.fixes, how=trees,
            example_reset=first_reset.id))
    return findings, ids


_ORIGIN = {"en": {"middle_device": "a middle device", "endpoint": "the endpoint itself",
                  "undetermined": "an undetermined source"},
           "zh": {"middle_device": "中间设备", "endpoint": "端点自身", "undetermined": "无法确定的来源"}}


def summary(r: ResetOut, count: int, lang: str) -> str:
    who = _ORIGIN[lang][r.origin]
    top = r.diagnoses[0].title if r.diagnoses else None
    c = r.connection
    app = "" if c.application.startswith("TCP/") else f"{c.application}, "
    if lang == "zh":
        s = (f"{count} 个 RST 声称来自{'服务端' if r.claimed_sender == 'server' else '客户端'}"
             f"({app}端口 {c.server.port}),实际发送者:{who}")
        return s + (f";最可能:{top}" if top else "")
    s = (f"{count} RST(s) claiming to come from the {r.claimed_sender} ({app}port "
         f"{c.server.port}) were sent by {who}")
    return s + (f"; most likely: {top}" if top else "")


__all__ = ["applicable_fixes", "diagnoses_for", "fixes_for", "fired_rules", "evidence_items", "evidence_template",
           "evidence_from_template", "build_findings", "findings_of", "story", "fixparams"]
