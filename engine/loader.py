"""Load the YAML knowledge base with line numbers.

Every mapping and sequence the YAML parser builds remembers where each of its entries starts,
so a pydantic error location or a semantic finding (``rules[3].when.all[0].field``) can be
reported as ``file:line:col``. Each file is validated item by item: one broken rule does not
hide the problems of the others, and the valid items still reach the semantic checks.
"""
from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, TypeAdapter, ValidationError

from .kb import KBError, KnowledgeBase, Problem
from .kb_model import (Conclusion, Condition, Fix, Question, ReferenceTables, Rule, Source, Symptom, Tip)

ENV_VAR = "RSTSLEUTH_KB"
SECTIONS: dict[str, type[BaseModel]] = {
    "rules": Rule, "conclusions": Conclusion, "fixes": Fix, "questions": Question,
    "tips": Tip, "symptoms": Symptom,
}
# pydantic names the members of the Condition union in error locations; only the member the
# author meant (told by the mapping's keys) is worth reporting.
_UNION_TAGS = ("Test", "Concluded", "AllOf", "AnyOf", "NotOf")
_CONDITION_HINT = ("a condition must be a mapping: {field, op, value}, {concluded}, "
                   "{all: [...]}, {any: [...]} or {not: ...}")

Mark = tuple[int, int]


class MarkedDict(dict):
    """A YAML mapping that knows where it and each of its keys start (1-based)."""

    start: Mark = (1, 1)
    marks: dict


class MarkedList(list):
    start: Mark = (1, 1)
    marks: list


_LINE_LOADER = None


def _line_loader() -> type:
    """The YAML loader class, made on first use: a KB that comes from its cache
    (``kb_cache``) needs no YAML, and importing yaml cost every ``analyze`` 10-17 ms before
    its reader could start."""
    global _LINE_LOADER
    if _LINE_LOADER is not None:
        return _LINE_LOADER
    import yaml

    # libyaml's parser when present (about 10x faster on a large KB); same marks, semantics
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

    class _LineLoader(base):  # type: ignore[misc, valid-type]
        """``yaml.safe_load`` semantics, plus positions and a duplicate-key check."""

        def __init__(self, stream):
            super().__init__(stream)
            self.duplicates: list[tuple[str, Mark]] = []

        def construct_mapping(self, node, deep=False):
            self.flatten_mapping(node)
            result = MarkedDict()
            result.start = (node.start_mark.line + 1, node.start_mark.column + 1)
            result.marks = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        "found an unhashable key", key_node.start_mark) from None
                mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    self.duplicates.append((str(key), mark))
                result[key] = self.construct_object(value_node, deep=True)
                result.marks[key] = mark
            return result

        def construct_sequence(self, node, deep=False):
            result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
            result.start = (node.start_mark.line + 1, node.start_mark.column + 1)
            result.marks = [(c.start_mark.line + 1, c.start_mark.column + 1) for c in node.value]
            return result

    _LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_mapping)
    _LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_sequence)
    _LINE_LOADER = _LineLoader
    return _LineLoader


def __getattr__(name: str) -> Any:
    if name == "_LineLoader":  # the tests read it by its old module-level name
        return _line_loader()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def locate(node: Any, path: Iterable[Any], default: Mark = (1, 1)) -> Mark:
    """Position of the deepest existing element of ``path`` under ``node``."""
    mark = getattr(node, "start", default)
    for step in path:
        if isinstance(node, MarkedDict) and step in node:
            mark, node = node.marks[step], node[step]
        elif isinstance(node, MarkedList) and isinstance(step, int) and 0 <= step < len(node):
            mark, node = node.marks[step], node[step]
        else:
            break
    return mark


def format_path(path: Iterable[Any]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "(file)"


@dataclass
class Origin:
    """Where one KB object came from: its file and its raw YAML mapping."""

    file: str
    section: str
    index: int
    raw: Any


@dataclass
class Locator:
    """Maps loaded objects (by Python identity) back to their YAML."""

    origins: dict[int, Origin] = field(default_factory=dict)
    # every definition in file order, duplicates included (the KB keeps only the first)
    definitions: list[tuple[str, Any]] = field(default_factory=list)
    # ids of items that failed the schema: still "defined", so no cascade of undefined-id errors
    broken_ids: dict[str, set] = field(default_factory=dict)
    # rules that failed the schema but whose 'when' parsed: their conditions are still checked
    partial_rules: list[Any] = field(default_factory=list)
    # each file's free-form 'meta' section (mind-map layout for the exporter)
    meta: dict[str, dict] = field(default_factory=dict)

    def remember(self, obj: Any, origin: Origin) -> None:
        self.origins[id(obj)] = origin

    def problem(self, obj: Any, path: tuple, message: str, severity: str = "error") -> Problem:
        origin = self.origins.get(id(obj))
        if origin is None:
            return Problem("(unknown)", 1, 1, format_path(path), message, severity)
        line, col = locate(origin.raw, path, getattr(origin.raw, "start", (1, 1)))
        full = (origin.section, origin.index, *path) if origin.index >= 0 else (origin.section, *path)
        return Problem(origin.file, line, col, format_path(full), message, severity)


def _intended_member(raw: Any) -> str:
    if isinstance(raw, dict):
        for key, tag in (("all", "AllOf"), ("any", "AnyOf"), ("not", "NotOf"),
                         ("concluded", "Concluded")):
            if key in raw:
                return tag
        return "Test"
    return ""


def pydantic_problems(exc: ValidationError, raw: Any, file: str, prefix: tuple) -> list[Problem]:
    """Turn a pydantic error into located problems, keeping only the union member meant."""
    problems, seen = [], set()
    for err in exc.errors():
        node, path, keep, message = raw, [], True, err["msg"]
        for step in err["loc"]:
            if step in _UNION_TAGS and not isinstance(node, dict):
                message = _CONDITION_HINT
                keep = step == "Test"
                break
            if step in _UNION_TAGS:
                if _intended_member(node) != step:
                    keep = False
                    break
                continue
            path.append(step)
            if isinstance(node, dict) and step in node:
                node = node[step]
            elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
                node = node[step]
            else:
                node = None
        if not keep:
            continue
        if err["type"] == "extra_forbidden":
            message = f"unknown field '{path[-1]}'"
        line, col = locate(raw, path, getattr(raw, "start", (1, 1)))
        key = (line, col, tuple(path), message)
        if key not in seen:
            seen.add(key)
            problems.append(Problem(file, line, col, format_path((*prefix, *path)), message))
    return problems


def display_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    name = display_name(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, 1, 1, "(file)", f"cannot read: {exc}")]
    import yaml

    loader = _line_loader()(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "invalid YAML"
        if exc.context and exc.context_mark is not None:
            cm = exc.context_mark
            what += f" ({exc.context} at line {cm.line + 1}:{cm.column + 1})"
        return None, [Problem(name, line, col, "(file)", f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, 1, 1, "(file)", f"YAML error: {exc}")]
    finally:
        loader.dispose()
    problems = [Problem(name, line, col, key, f"duplicate key '{key}' in one mapping")
                for key, (line, col) in loader.duplicates]
    return data, problems


def resolve_kb_path(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$RSTSLEUTH_KB``, else the shipped ``knowledge`` package directory."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        return Path(str(importlib.resources.files("knowledge")))
    return Path(path)


def kb_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise KBError([Problem(str(root), 1, 1, "(kb)", "no such knowledge base directory")])
    return sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _load_file(path: Path, kb: KnowledgeBase, locator: Locator) -> list[Problem]:
    data, problems = read_yaml(path)
    name = display_name(path)
    if data is None:
        return problems
    if not isinstance(data, dict):
        return problems + [Problem(name, 1, 1, "(file)", "top level must be a mapping of "
                                   "sections (rules, conclusions, fixes, ...)")]
    allowed = set(SECTIONS) | {"reference", "meta"}
    for key in data:
        if key not in allowed:
            line, col = data.marks[key]
            problems.append(Problem(name, line, col, str(key), f"unknown section '{key}' "
                                    f"(allowed: {', '.join(sorted(allowed))})"))
    if isinstance(data.get("meta"), dict):
        locator.meta[name] = data["meta"]
    for section, model in SECTIONS.items():
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            line, col = data.marks[section]
            problems.append(Problem(name, line, col, section, "must be a list"))
            continue
        for index, raw in enumerate(items):
            try:
                obj = model.model_validate(raw)
            except ValidationError as exc:
                problems += pydantic_problems(exc, raw, name, (section, index))
                _salvage(section, raw, locator, Origin(name, section, index, raw))
                continue
            line, col = getattr(raw, "start", (1, 1))
            obj.source = Source(file=name, line=line, col=col)
            locator.remember(obj, Origin(name, section, index, raw))
            locator.definitions.append((section, obj))
            _add(kb, section, obj)
    if data.get("reference") is not None:
        raw = data["reference"]
        try:
            tables = ReferenceTables.model_validate(raw)
        except ValidationError as exc:
            problems += pydantic_problems(exc, raw, name, ("reference",))
        else:
            _merge_reference(kb, tables, locator, Origin(name, "reference", -1, raw))
    return problems


@dataclass
class PartialRule:
    """The parts of a schema-invalid rule that could still be checked."""

    id: str
    when: Any


def _salvage(section: str, raw: Any, locator: Locator, origin: Origin) -> None:
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("id"), str):
        locator.broken_ids.setdefault(section, set()).add(raw["id"])
    conclude = raw.get("conclude")
    if section == "rules" and isinstance(conclude, dict) and isinstance(conclude.get("id"), str):
        locator.broken_ids.setdefault("concludes", set()).add(conclude["id"])
    if section == "rules" and "when" in raw:
        try:
            when = TypeAdapter(Condition).validate_python(raw["when"])
        except ValidationError:
            return
        partial = PartialRule(str(raw.get("id", "?")), when)
        locator.remember(partial, origin)
        locator.partial_rules.append(partial)


def _add(kb: KnowledgeBase, section: str, obj: Any) -> None:
    if section == "rules":
        kb.rules.append(obj)
    else:
        # duplicates are reported by the validator; the first definition wins
        getattr(kb, section).setdefault(obj.id, obj)


def _merge_reference(kb: KnowledgeBase, tables: ReferenceTables, locator: Locator,
                     origin: Origin) -> None:
    for name in ("initial_ttls", "idle_timeouts", "pitfalls"):
        items = getattr(tables, name)
        raw_list = origin.raw.get(name, []) if isinstance(origin.raw, dict) else []
        for index, item in enumerate(items):
            raw = raw_list[index] if index < len(raw_list) else origin.raw
            if name == "pitfalls":
                line, col = getattr(raw, "start", (1, 1))
                item.source = Source(file=origin.file, line=line, col=col)
            locator.remember(item, Origin(origin.file, f"reference.{name}", index, raw))
            locator.definitions.append((f"reference.{name}", item))
            getattr(kb.reference, name).append(item)


def read_kb(path: str | os.PathLike | None = None) -> tuple[KnowledgeBase, list[Problem], Locator]:
    """Parse every file; returns what could be built, every parse/schema problem, and the
    locator the semantic checks use. Never raises for KB content problems."""
    root = resolve_kb_path(path)
    kb = KnowledgeBase(path=root)
    locator = Locator()
    problems: list[Problem] = []
    files = kb_files(root)
    if not files:
        problems.append(Problem(display_name(root), 1, 1, "(kb)", "no .yaml files found"))
    for file in files:
        problems += _load_file(file, kb, locator)
    return kb, problems, locator


def load_kb(path: str | os.PathLike | None = None) -> KnowledgeBase:
    """The validated knowledge base. Raises KBError carrying every error; warnings are kept
    in ``kb.warnings``."""
    from . import kb_cache

    root = resolve_kb_path(path)
    files = kb_files(root)
    cached, entry = kb_cache.load(root, files)
    if cached is not None:
        return cached
    from .validate import check_kb  # the validator imports this module
    kb, problems, locator = read_kb(root)
    problems += check_kb(kb, locator)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise KBError(sort_problems(errors))
    kb.warnings = sort_problems([p for p in problems if p.severity == "warning"])
    kb_cache.store(entry, kb)
    return kb


def sort_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path, p.message))
