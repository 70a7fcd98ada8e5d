"""The loader: line-number tracking, sources on every object, KB location (argument,
$RSTSLEUTH_KB, the shipped package), partial results and KBError."""
from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest

from engine.kb import KBError
from engine.loader import (ENV_VAR, MarkedDict, MarkedList, _LineLoader, format_path, load_kb,
                           locate, read_kb, read_yaml, resolve_kb_path)

SHIPPED = Path(str(importlib.resources.files("knowledge")))


def _parse(text: str):
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def test_marks_are_one_based_lines_and_columns():
    data = _parse("a: 1\nlist:\n  - x: 2\n    y: [3, 4]\n  - 5\n")
    assert isinstance(data, MarkedDict) and isinstance(data["list"], MarkedList)
    assert data.marks["a"] == (1, 1)
    assert data.marks["list"] == (2, 1)
    assert locate(data, ["list", 0, "y"]) == (4, 5)
    assert locate(data, ["list", 0, "y", 1]) == (4, 12)
    assert locate(data, ["list", 1]) == (5, 5)
    # a path into something that does not exist stops at the deepest existing element
    assert locate(data, ["list", 0, "missing", "deeper"]) == (3, 5)


def test_safe_load_semantics_are_kept():
    data = _parse("t: yes\nn: ~\nf: 1.5\ns: '010'\n")
    assert data == {"t": True, "n": None, "f": 1.5, "s": "010"}
    with pytest.raises(Exception):
        _parse("x: !!python/object/apply:os.system ['true']\n")


def test_format_path():
    assert format_path(("rules", 3, "when", "all", 0, "field")) == "rules[3].when.all[0].field"
    assert format_path(()) == "(file)"


def test_every_object_has_its_source_line():
    kb = load_kb(SHIPPED)
    objects = (list(kb.rules) + list(kb.conclusions.values()) + list(kb.fixes.values())
               + list(kb.questions.values()) + list(kb.tips.values())
               + list(kb.symptoms.values()) + list(kb.reference.pitfalls))
    assert len(objects) > 150
    for obj in objects:
        assert obj.source is not None, obj.id
        line = Path(obj.source.file).read_text(encoding="utf-8").splitlines()[obj.source.line - 1]
        # the source points at the '- id: ...' line of the object itself
        assert line[obj.source.col - 1:].startswith("id: " + obj.id) or \
            line.strip() == f"- id: {obj.id}", (obj.source, line)


def test_default_location_is_the_shipped_package(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert resolve_kb_path(None) == SHIPPED
    assert load_kb().path == SHIPPED


def test_environment_variable_selects_the_kb(monkeypatch, tmp_path):
    (tmp_path / "only.yaml").write_text(
        "conclusions:\n  - id: origin.undetermined\n    kind: origin\n"
        "    title: {en: U, zh: U}\n    description: {en: d, zh: d}\n", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    kb = load_kb()
    assert kb.path == tmp_path and list(kb.conclusions) == ["origin.undetermined"]
    assert load_kb(SHIPPED).path == SHIPPED  # an explicit path wins over the environment


def test_read_kb_keeps_valid_items_next_to_broken_ones(tmp_path):
    (tmp_path / "tips.yaml").write_text(
        "tips:\n  - id: tip.good\n    text: {en: a, zh: b}\n"
        "  - id: tip.bad\n    text: {en: a}\n", encoding="utf-8")
    kb, problems, _ = read_kb(tmp_path)
    assert list(kb.tips) == ["tip.good"]
    assert [(p.line, p.path) for p in problems] == [(5, "tips[1].text.zh")]


def test_unknown_section_and_non_mapping_file(tmp_path):
    (tmp_path / "a.yaml").write_text("rulez: []\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(KBError) as err:
        load_kb(tmp_path)
    messages = [(Path(p.file).name, p.line, p.message) for p in err.value.problems]
    assert ("a.yaml", 1, "unknown section 'rulez' (allowed: conclusions, fixes, meta, questions, "
            "reference, rules, symptoms, tips)") in messages
    assert any(name == "b.yaml" and "top level must be a mapping" in m for name, _, m in messages)


def test_empty_directory_and_unreadable_file(tmp_path):
    with pytest.raises(KBError, match="no .yaml files found"):
        load_kb(tmp_path)
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    data, problems = read_yaml(bad)
    assert data is None and "cannot read" in problems[0].message


def test_kb_error_is_a_user_error_with_one_line_message(tmp_path):
    from facts.errors import UserError

    (tmp_path / "x.yaml").write_text("tips:\n  - id: BAD ID\n    text: {en: a, zh: b}\n",
                                     encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_kb(tmp_path)
    assert "\n" not in str(err.value) and "x.yaml:2:" in str(err.value)


def test_a_condition_that_is_not_a_mapping_gets_one_clear_message(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: a.b\n    rev: 1\n    status: stable\n    title: {en: t, zh: t}\n"
        "    rationale: {en: r, zh: r}\n    references: [x]\n    when:\n      all:\n"
        "        - ttl > 3\n    conclude: {id: a.c, cf: 0.5}\n    tests:\n"
        "      - {name: a, expect: fires}\n      - {name: b, expect: does_not_fire}\n",
        encoding="utf-8")
    _, problems, _ = read_kb(tmp_path)
    assert [(p.line, p.path) for p in problems] == [(10, "rules[0].when.all[0]")]
    assert "a condition must be a mapping" in problems[0].message


def test_cli_init_copies_and_refuses_to_overwrite(tmp_path, capsys):
    from tui.cli import main

    target = tmp_path / "mykb"
    assert main(["kb", "init", str(target)]) == 0
    copied = sorted(p.name for p in target.iterdir())
    assert "README.md" in copied and "origin.yaml" in copied
    assert sorted(p.name for p in SHIPPED.glob("*.yaml")) == [n for n in copied if n.endswith(".yaml")]
    assert main(["kb", "validate", "--kb", str(target)]) == 0
    capsys.readouterr()
    assert main(["kb", "init", str(target)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err


def test_cli_show_renders_each_kind_with_its_location(capsys):
    from tui.cli import main

    for ident, needle in [("ttl.hop_located", "knowledge/ttl.yaml:"),
                          ("firewall.idle_timeout", "mind map: Idle connection exceeds"),
                          ("fix.keepalive_ssh", "server ports: 22"),
                          ("q.idle_before_s", "answer: duration"),
                          ("symptom.one_direction_fails", "question: q.one_direction_fails"),
                          ("tip.ttl_copy", "tip tip.ttl_copy"),
                          ("timeout.aws_nlb", "default 350 s")]:
        assert main(["kb", "show", ident]) == 0
        assert needle in capsys.readouterr().out, ident
    assert main(["kb", "show", "no.such.id"]) == 2


def test_cli_export_mermaid(capsys):
    from tui.cli import main

    assert main(["kb", "export", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("mindmap\n  root((Connection Reset<br/>by Middle Device))")
    assert main(["kb", "export", "mermaid", "--what", "flowchart", "--lang", "zh"]) == 0
    assert "第 2 步" in capsys.readouterr().out


def test_cli_kb_test_runs_the_embedded_cases(tmp_path, capsys):
    from tui.cli import main

    pytest.importorskip("engine.kbtest")
    (tmp_path / "k.yaml").write_text(
        "conclusions:\n  - id: finding.x\n    kind: finding\n    title: {en: X, zh: X}\n"
        "    description: {en: d, zh: d}\n"
        "rules:\n  - id: t.wrong_case\n    rev: 1\n    status: test\n    title: {en: t, zh: t}\n"
        "    rationale: {en: r, zh: r}\n    references: [x]\n"
        "    when: {field: ttl, op: '>', value: 100}\n    conclude: {id: finding.x, cf: 0.5}\n"
        "    tests:\n      - {name: too low to fire, facts: {ttl: 5}, expect: fires}\n"
        "      - {name: low, facts: {ttl: 6}, expect: does_not_fire}\n", encoding="utf-8")
    assert main(["kb", "test", "--kb", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "t.wrong_case [too low to fire]" in out and "1 failed" in out
