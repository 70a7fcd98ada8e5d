"""rstsleuth kb validate|show|init|export|test: work on the knowledge base.

``--kb DIR`` (or ``$RSTSLEUTH_KB``) selects the KB everywhere; the default is the shipped one.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from facts.errors import UserError

KB_HELP = "knowledge base directory (default: $RSTSLEUTH_KB or the shipped one)"


def register(sub) -> None:
    p = sub.add_parser("kb", help="validate, show, copy, export and test the knowledge base",
                       description="Work on the YAML knowledge base: validate it (file:line "
                                   "errors), show an entry, copy the shipped KB to edit, export "
                                   "Mermaid diagrams, run the rules' embedded test cases.")
    kb_sub = p.add_subparsers(dest="kb_command", metavar="ACTION")
    kb_sub.required = True

    v = kb_sub.add_parser("validate", help="report every problem as file:line:col path: message")
    v.add_argument("--kb", metavar="DIR", help=KB_HELP)
    v.add_argument("--quiet", "-q", action="store_true", help="print only the summary line")
    v.set_defaults(func=run_validate)

    s = kb_sub.add_parser("show", help="show a rule, conclusion, fix, question, tip or symptom")
    s.add_argument("id", help="e.g. origin.middle_device, fix.keepalive_global, q.ttl_same")
    s.add_argument("--kb", metavar="DIR", help=KB_HELP)
    s.add_argument("--lang", choices=("en", "zh"), default="en")
    s.set_defaults(func=run_show)

    i = kb_sub.add_parser("init", help="copy the shipped KB into DIR to edit it")
    i.add_argument("dir", help="target directory (must not exist or be empty)")
    i.set_defaults(func=run_init)

    e = kb_sub.add_parser("export", help="Mermaid diagrams regenerated from the KB")
    e.add_argument("format", choices=("mermaid",))
    e.add_argument("--what", choices=("mindmap", "flowchart"), default="mindmap")
    e.add_argument("--kb", metavar="DIR", help=KB_HELP)
    e.add_argument("--lang", choices=("en", "zh"), default="en")
    e.set_defaults(func=run_export)

    t = kb_sub.add_parser("test", help="run every rule's embedded test cases")
    t.add_argument("--kb", metavar="DIR", help=KB_HELP)
    t.set_defaults(func=run_test)


def run_validate(args) -> int:
    from engine.loader import resolve_kb_path
    from engine.validate import validate

    problems = validate(args.kb)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    if not args.quiet:
        for problem in problems:
            tag = "" if problem.severity == "error" else "warning: "
            print(f"{problem.file}:{problem.line}:{problem.col} {tag}{problem.path}: "
                  f"{problem.message}")
    where = resolve_kb_path(args.kb)
    if errors:
        print(f"{where}: {len(errors)} error(s), {len(warnings)} warning(s)")
        return 1
    from engine.loader import load_kb

    kb = load_kb(args.kb)
    print(f"{where}: OK — {len(kb.rules)} rules, {len(kb.conclusions)} conclusions, "
          f"{len(kb.fixes)} fixes, {len(kb.questions)} questions, {len(kb.symptoms)} symptoms, "
          f"{len(kb.tips)} tips; {len(warnings)} warning(s)")
    return 0


def _where(obj) -> str:
    src = getattr(obj, "source", None)
    return f"{src.file}:{src.line}" if src else "?"


def _condition_lines(cond, depth: int = 0) -> list[str]:
    from engine.kb_model import AllOf, AnyOf, Concluded, NotOf

    pad = "    " * (depth + 1)
    if isinstance(cond, AllOf):
        return [f"{pad}all of:"] + [x for c in cond.all for x in _condition_lines(c, depth + 1)]
    if isinstance(cond, AnyOf):
        return [f"{pad}any of:"] + [x for c in cond.any for x in _condition_lines(c, depth + 1)]
    if isinstance(cond, NotOf):
        return [f"{pad}not:"] + _condition_lines(cond.not_, depth + 1)
    if isinstance(cond, Concluded):
        return [f"{pad}concluded {cond.concluded} (cf ≥ {cond.min_cf})"]
    value = "" if cond.op == "exists" and cond.value is not False else f" {cond.value!r}"
    if cond.op == "exists":
        return [f"{pad}{cond.field} {'exists' if cond.value is not False else 'is unknown'}"]
    return [f"{pad}{cond.field} {cond.op}{value}"]


def render_entry(kb, ident: str, lang: str = "en") -> str:
    """A readable rendering of the KB entry ``ident`` (any kind), with file:line."""
    t = lambda text: getattr(text, lang)  # noqa: E731
    for rule in kb.rules:
        if rule.id == ident:
            lines = [f"rule {rule.id} (rev {rule.rev}, {rule.status})  {_where(rule)}",
                     f"  {t(rule.title)}", f"  why: {t(rule.rationale)}", "  when:"]
            lines += _condition_lines(rule.when)
            lines.append(f"  then: {rule.conclude.id} cf {rule.conclude.cf:+.2f}")
            lines.append("  references: " + "; ".join(rule.references))
            lines.append(f"  tests: {len(rule.tests)} (" + ", ".join(
                f"{c.name}: {c.expect}" for c in rule.tests) + ")")
            return "\n".join(lines)
    if ident in kb.conclusions:
        c = kb.conclusions[ident]
        lines = [f"conclusion {c.id} ({c.kind}{', ' + c.family if c.family else ''})  {_where(c)}",
                 f"  {t(c.title)}", f"  {t(c.description)}"]
        lines += [f"  mind map: {t(leaf).replace(chr(10), ' ')}" for leaf in c.mindmap]
        lines += [f"  check: {t(x)}" for x in c.checks]
        lines += [f"  fix: {f}" for f in c.fixes]
        lines.append("  concluded by: " + (", ".join(r.id for r in kb.rules_concluding(c.id))
                                           or "(no rule: the engine's verdict)"))
        return "\n".join(lines)
    if ident in kb.fixes:
        f = kb.fixes[ident]
        lines = [f"fix {f.id}  {_where(f)}", f"  {t(f.title)}"]
        lines += ["  " + line for line in t(f.steps).splitlines()]
        if f.params:
            lines.append("  parameters: " + ", ".join(f.params))
        if f.ports:
            lines.append("  server ports: " + ", ".join(map(str, f.ports)))
        if f.references:
            lines.append("  references: " + "; ".join(f.references))
        return "\n".join(lines)
    if ident in kb.questions:
        q = kb.questions[ident]
        lines = [f"question {q.id}  {_where(q)}", f"  {t(q.text)}",
                 f"  answer: {q.answer}{' (' + q.unit + ')' if q.unit else ''}"
                 f"{' parsed by ' + q.parser if q.parser else ''}; sets {q.sets}"]
        if q.help:
            lines.append(f"  help: {t(q.help)}")
        lines += [f"  - {ch.value!r}: {t(ch.label)}" for ch in q.choices]
        return "\n".join(lines)
    if ident in kb.symptoms:
        s = kb.symptoms[ident]
        return "\n".join([f"symptom {s.id}  {_where(s)}", f"  {t(s.symptom)}",
                          f"  {t(s.description)}", f"  clue: {t(s.clue)}",
                          f"  question: {s.question or '-'}",
                          "  related: " + ", ".join(s.related)])
    tips = dict(kb.tips) | {p.id: p for p in kb.reference.pitfalls}
    if ident in tips:
        tip = tips[ident]
        return "\n".join([f"tip {tip.id}  {_where(tip)}", f"  {t(tip.text)}",
                          "  related: " + ", ".join(tip.related)])
    for row in kb.reference.idle_timeouts:
        if row.id == ident:
            seconds = "none" if row.seconds is None else f"{row.seconds:g} s"
            return (f"idle timeout {row.id}: {row.device} ({row.family}) default {seconds}"
                    f"{'; ' + row.range if row.range else ''}\n  at expiry: {row.sends_rst}\n"
                    f"  source: {row.reference}")
    raise UserError(f"{kb.path}: no rule, conclusion, fix, question, symptom or tip '{ident}'")


def run_show(args) -> int:
    from engine.loader import load_kb

    print(render_entry(load_kb(args.kb), args.id, args.lang))
    return 0


def run_init(args) -> int:
    from engine.loader import kb_files, resolve_kb_path

    target = Path(args.dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target}: exists and is not an empty directory; refusing to overwrite")
    source = resolve_kb_path(None)
    files = kb_files(source)
    readme = source / "README.md"
    try:
        target.mkdir(parents=True, exist_ok=True)
        for file in files + ([readme] if readme.is_file() else []):
            shutil.copy2(file, target / file.name)
    except OSError as exc:
        raise UserError(f"{target}: cannot copy the knowledge base ({exc.strerror})") from None
    print(f"copied {len(files)} KB files from {source} to {target}; edit them, then run "
          f"'rstsleuth kb validate --kb {target}' and 'rstsleuth kb test --kb {target}'")
    return 0


def run_export(args) -> int:
    from engine.export import export

    sys.stdout.write(export(args.what, args.kb, args.lang))
    return 0


def run_test(args) -> int:
    from engine.loader import load_kb

    kb = load_kb(args.kb)
    try:
        from engine.kbtest import run_cases  # written alongside; imported lazily on purpose
    except ImportError as exc:
        raise UserError(f"rule test runner unavailable: {exc}") from None
    report = run_cases(kb)
    for line in report.lines():  # the failures, file:line first, then the summary line
        print(line)
    return 0 if report.ok else 1
