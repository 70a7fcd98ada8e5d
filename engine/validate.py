"""Semantic checks of a loaded knowledge base; every problem at once, with file:line:col.

``validate(path)`` = YAML syntax + schema problems (from the loader) + the checks here:
duplicate ids, unknown fact fields and wrongly typed values, bad regexes, undefined or
unreachable conclusions, undefined fix/question ids, empty texts, fix placeholders,
question answer types, embedded test cases, ``concluded:`` cycles and rule-count limits.
"""
from __future__ import annotations

import difflib
import os
import re
import string
from typing import Any, Iterable

from facts.fields import FIELDS, FieldSpec

from .kb import KnowledgeBase, Problem
from .kb_model import AllOf, AnyOf, Concluded, NotOf, Test, Text
from .loader import Locator, read_kb, sort_problems

# The only names engine.fixparams computes; fixes are filled with str.format_map, never eval.
FIX_PARAMS = frozenset({
    "idle_s", "idle_min", "keepalive_s", "keepalive_ms", "keepalive_min", "probe_count",
    "device_timeout_s", "server_ip", "server_port", "client_ip", "path_mtu", "ping_size",
    "mss", "matched_devices", "tracert_hop", "app_name",
})
PARSERS = frozenset({"tracert", "reg_query", "netsh_tcp_global", "netstat", "ping_mtu",
                     "firewall_log"})
UNREACHABLE_OK = frozenset({"origin.undetermined"})  # the engine's verdict, not a rule's
RULES_WARN, RULES_MAX = 500, 2000
_NUMERIC = ("int", "float")
_ANSWER_KINDS = {"yes_no": ("bool",), "number": _NUMERIC, "duration": _NUMERIC,
                 "choice": ("str", "int", "bool", "float"), "text": ("str", "int", "float",
                                                                     "bool", "list")}


def validate(path: str | os.PathLike | None = None) -> list[Problem]:
    """Every problem of the KB at ``path`` (errors and warnings), sorted by file and line."""
    kb, problems, locator = read_kb(path)
    return sort_problems(problems + check_kb(kb, locator))


def check_kb(kb: KnowledgeBase, loc: Locator) -> list[Problem]:
    out: list[Problem] = []
    out += _check_duplicates(loc)
    out += _check_texts(loc)
    defined = {section: set(getattr(kb, section)) | loc.broken_ids.get(section, set())
               for section in ("conclusions", "fixes", "questions")}
    for rule in kb.rules:
        out += _check_rule(rule, defined, loc)
    for partial in loc.partial_rules:
        out += _check_when(partial, defined, loc)
    out += _check_conclusions(kb, loc, defined)
    out += _check_fixes(kb, loc)
    out += _check_questions(kb, loc)
    out += _check_links(kb, loc, defined)
    out += _check_cycles(kb, loc)
    n = len(kb.rules)
    if n > RULES_MAX:
        out.append(Problem(str(kb.path), 1, 1, "rules", f"{n} rules: durable-rules limit for "
                           f"one ruleset is {RULES_MAX}"))
    elif n > RULES_WARN:
        out.append(Problem(str(kb.path), 1, 1, "rules", f"{n} rules: above {RULES_WARN}, "
                           "compile time and memory per session grow", "warning"))
    return out


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _all_ids(loc: Locator) -> dict[str, str]:
    return {obj.id: section for section, obj in loc.definitions if hasattr(obj, "id")}


def _check_duplicates(loc: Locator) -> list[Problem]:
    out, first = [], {}
    for section, obj in loc.definitions:
        ident = getattr(obj, "id", None)
        if ident is None:
            continue
        if ident in first:
            where = loc.problem(first[ident], ("id",), "")
            out.append(loc.problem(obj, ("id",), f"duplicate id '{ident}' (first defined "
                                   f"at {where.file}:{where.line} in {loc.origins[id(first[ident])].section})"))
        else:
            first[ident] = obj
    return out


def _walk_texts(value: Any, path: tuple) -> Iterable[tuple[tuple, Text]]:
    if isinstance(value, Text):
        yield path, value
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk_texts(item, (*path, i))
    elif hasattr(type(value), "model_fields") and not isinstance(value, Text):
        for name, info in type(value).model_fields.items():
            yield from _walk_texts(getattr(value, name), (*path, info.alias or name))


def _check_texts(loc: Locator) -> list[Problem]:
    out = []
    for _, obj in loc.definitions:
        for path, text in _walk_texts(obj, ()):
            for lang in ("en", "zh"):
                if not getattr(text, lang).strip():
                    out.append(loc.problem(obj, (*path, lang), f"empty {lang} text"))
    return out


# ---- values against field types -------------------------------------------------------

def type_error(spec: FieldSpec, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``spec``'s field, or None."""
    kind = spec.kind
    if kind == "bool" and not isinstance(value, bool):
        return f"'{spec.name}' is a yes/no field; {value!r} is not true/false"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        return f"'{spec.name}' holds whole numbers; {value!r} is not one"
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return f"'{spec.name}' holds numbers; {value!r} is not one"
    if kind == "str" and not isinstance(value, str):
        return f"'{spec.name}' holds text; {value!r} is not text"
    if kind == "list" and not isinstance(value, list):
        return f"'{spec.name}' holds a list; {value!r} is not a list"
    if spec.choices is not None and value not in spec.choices:
        return f"{value!r} is not one of {', '.join(map(repr, spec.choices))} for '{spec.name}'"
    return None


def condition_problem(test: Test) -> tuple[str, str] | None:
    """(the key at fault, what is wrong) for one ``field op value`` test, or None."""
    spec = FIELDS.get(test.field)
    if spec is None:
        return "field", f"unknown fact field '{test.field}'{_did_you_mean(test.field, FIELDS)}"
    op, value = test.op, test.value
    if op == "exists":
        return None if isinstance(value, bool) else ("value", "'exists' takes true or false")
    if spec.kind == "list":
        return "op", f"'{spec.name}' is a list: only 'exists' applies to it"
    if op == "matches":
        if spec.kind != "str":
            return "op", f"'matches' needs a text field; '{spec.name}' is {spec.kind}"
        if not isinstance(value, str):
            return "value", "'matches' takes a regular expression string"
        try:
            re.compile(value)
        except re.error as exc:
            return "value", f"bad regular expression {value!r}: {exc}"
        return None
    if op in ("<", "<=", ">", ">=") and spec.kind not in _NUMERIC:
        return "op", f"'{op}' compares numbers; '{spec.name}' is {spec.kind}"
    if op == "in":
        if not isinstance(value, list) or not value:
            return "value", "'in' takes a non-empty list of values"
        whys = [why for item in value if (why := type_error(spec, item))]
        return ("value", whys[0]) if whys else None
    if value is None:
        return "value", f"'{op}' needs a value (use 'exists: false' to test for an unknown)"
    why = type_error(spec, value)
    return ("value", why) if why else None


def walk_conditions(cond: Any, path: tuple) -> Iterable[tuple[tuple, Any]]:
    yield path, cond
    if isinstance(cond, AllOf):
        for i, sub in enumerate(cond.all):
            yield from walk_conditions(sub, (*path, "all", i))
    elif isinstance(cond, AnyOf):
        for i, sub in enumerate(cond.any):
            yield from walk_conditions(sub, (*path, "any", i))
    elif isinstance(cond, NotOf):
        yield from walk_conditions(cond.not_, (*path, "not"))


def premises(rule) -> list[str]:
    return [c.concluded for _, c in walk_conditions(rule.when, ()) if isinstance(c, Concluded)]


def _check_when(rule, defined: dict[str, set], loc: Locator) -> list[Problem]:
    out = []
    for path, cond in walk_conditions(rule.when, ("when",)):
        if isinstance(cond, Test):
            found = condition_problem(cond)
            if found:
                out.append(loc.problem(rule, (*path, found[0]), found[1]))
        elif isinstance(cond, Concluded) and cond.concluded not in defined["conclusions"]:
            out.append(loc.problem(rule, (*path, "concluded"), f"'concluded' names undefined "
                                   f"conclusion '{cond.concluded}'"
                                   f"{_did_you_mean(cond.concluded, defined['conclusions'])}"))
    return out


def _check_rule(rule, defined: dict[str, set], loc: Locator) -> list[Problem]:
    out = _check_when(rule, defined, loc)
    known = defined["conclusions"]
    if rule.conclude.id not in known:
        out.append(loc.problem(rule, ("conclude", "id"), f"concludes undefined conclusion "
                               f"'{rule.conclude.id}'{_did_you_mean(rule.conclude.id, known)}"))
    expects = {case.expect for case in rule.tests}
    for wanted in ("fires", "does_not_fire"):
        if wanted not in expects:
            out.append(loc.problem(rule, ("tests",), f"needs at least one '{wanted}' test case"))
    for i, case in enumerate(rule.tests):
        for name, value in case.facts.items():
            spec = FIELDS.get(name)
            if spec is None:
                out.append(loc.problem(rule, ("tests", i, "facts", name), f"test case names "
                                       f"unknown fact field '{name}'{_did_you_mean(name, FIELDS)}"))
            elif value is not None and (why := type_error(spec, value)):
                out.append(loc.problem(rule, ("tests", i, "facts", name), why))
        for name in case.given:
            if name not in known:
                out.append(loc.problem(rule, ("tests", i, "given", name), f"test case gives "
                                       f"undefined conclusion '{name}'"))
    return out


def _check_conclusions(kb: KnowledgeBase, loc: Locator, defined: dict[str, set]) -> list[Problem]:
    out = []
    concluded = {r.conclude.id for r in kb.rules} | loc.broken_ids.get("concludes", set())
    supported = {r.conclude.id for r in kb.rules if r.conclude.cf > 0}
    for c in kb.conclusions.values():
        if c.id not in concluded and c.id not in UNREACHABLE_OK:
            out.append(loc.problem(c, ("id",), f"no rule concludes '{c.id}': unreachable"))
        elif c.id not in supported and c.id in {r.conclude.id for r in kb.rules} \
                and c.id not in UNREACHABLE_OK:
            out.append(loc.problem(c, ("id",), f"only negative evidence concludes '{c.id}': "
                                   "its cf can never be positive"))
        for i, fix_id in enumerate(c.fixes):
            if fix_id not in defined["fixes"]:
                out.append(loc.problem(c, ("fixes", i), f"undefined fix '{fix_id}'"
                                       f"{_did_you_mean(fix_id, kb.fixes)}"))
        if c.kind == "subtype" and not c.family:
            out.append(loc.problem(c, ("kind",), "a subtype needs 'family' (mind-map branch)"))
    return out


def placeholders(template: str) -> tuple[list[str], str | None]:
    """Names used by a ``{name}`` template, or the reason it is not a plain template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [], f"bad braces ({exc}); write '{{{{' and '}}}}' for literal braces"
    names = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            return names, f"'{{{name}{'!' + conversion if conversion else ''}" \
                          f"{':' + spec if spec else ''}}}' is not a plain {{name}} placeholder"
        names.append(name)
    return names, None


def _check_fixes(kb: KnowledgeBase, loc: Locator) -> list[Problem]:
    out = []
    for fix in kb.fixes.values():
        for i, param in enumerate(fix.params):
            if param not in FIX_PARAMS:
                out.append(loc.problem(fix, ("params", i), f"unknown fix parameter '{param}'"
                                       f"{_did_you_mean(param, FIX_PARAMS)}"))
        used = set()
        for part in ("title", "steps"):
            for lang in ("en", "zh"):
                names, why = placeholders(getattr(getattr(fix, part), lang))
                path = (part, lang)
                if why:
                    out.append(loc.problem(fix, path, why))
                for name in names:
                    used.add(name)
                    if name not in FIX_PARAMS:
                        out.append(loc.problem(fix, path, f"unknown placeholder '{{{name}}}'"
                                               f"{_did_you_mean(name, FIX_PARAMS)}"))
                    elif name not in fix.params:
                        out.append(loc.problem(fix, path, f"placeholder '{{{name}}}' not "
                                               "declared in params"))
        for param in set(fix.params) - used:
            if param in FIX_PARAMS:
                out.append(loc.problem(fix, ("params",), f"parameter '{param}' is declared "
                                       "but never used", "warning"))
    return out


def _check_questions(kb: KnowledgeBase, loc: Locator) -> list[Problem]:
    out = []
    for q in kb.questions.values():
        spec = FIELDS.get(q.sets)
        if spec is None:
            out.append(loc.problem(q, ("sets",), f"sets unknown fact field '{q.sets}'"
                                   f"{_did_you_mean(q.sets, FIELDS)}"))
            continue
        if spec.kind not in _ANSWER_KINDS[q.answer]:
            out.append(loc.problem(q, ("answer",), f"answer type '{q.answer}' cannot set "
                                   f"'{q.sets}' ({spec.kind})"))
        if q.answer == "number" and not q.unit:
            out.append(loc.problem(q, ("answer",), "a number answer needs a 'unit'"))
        if q.answer == "choice":
            if not q.choices:
                out.append(loc.problem(q, ("choices",), "a choice question needs choices"))
            for i, choice in enumerate(q.choices):
                why = type_error(spec, choice.value)
                if why:
                    out.append(loc.problem(q, ("choices", i, "value"), why))
        elif q.choices:
            out.append(loc.problem(q, ("choices",), f"choices given for a '{q.answer}' answer"))
        if q.answer == "text":
            if q.parser is None and spec.kind != "str":
                out.append(loc.problem(q, ("parser",), "a text answer for a non-text field "
                                       f"needs a parser ({', '.join(sorted(PARSERS))})"))
        if q.parser is not None and q.parser not in PARSERS:
            out.append(loc.problem(q, ("parser",), f"unknown parser '{q.parser}' "
                                   f"(known: {', '.join(sorted(PARSERS))})"))
    return out


def _check_links(kb: KnowledgeBase, loc: Locator, defined: dict[str, set]) -> list[Problem]:
    out = []
    ids = set(_all_ids(loc)).union(*loc.broken_ids.values())
    for s in kb.symptoms.values():
        if s.question and s.question not in defined["questions"]:
            out.append(loc.problem(s, ("question",), f"undefined question '{s.question}'"
                                   f"{_did_you_mean(s.question, kb.questions)}"))
        for i, ref in enumerate(s.related):
            if ref not in defined["conclusions"]:
                out.append(loc.problem(s, ("related", i), f"undefined conclusion '{ref}'"))
    tips = list(kb.tips.values()) + list(kb.reference.pitfalls)
    for t in tips:
        for i, ref in enumerate(t.related):
            if ref not in ids:
                out.append(loc.problem(t, ("related", i), f"undefined id '{ref}'"
                                       f"{_did_you_mean(ref, ids)}"))
    return out


def _check_cycles(kb: KnowledgeBase, loc: Locator) -> list[Problem]:
    """A conclusion that (through ``concluded:`` premises) depends on itself never settles."""
    edges: dict[str, set[str]] = {}
    for rule in kb.rules:
        for premise in premises(rule):
            edges.setdefault(rule.conclude.id, set()).add(premise)
    out, reported = [], set()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    culprit = next(r for r in kb.rules
                                   if r.conclude.id == node and nxt in premises(r))
                    out.append(loc.problem(culprit, ("when",), "cycle in 'concluded' chaining: "
                                           + " <- ".join(cycle)))
            elif state.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if state.get(node) is None:
            visit(node, [])
    return out
