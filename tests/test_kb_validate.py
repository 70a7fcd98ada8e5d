"""The validator names the right file AND line for every kind of KB mistake, reports them all
at once, and `rstsleuth kb validate` exits 1 on errors and 0 on a clean KB."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.kb import KBError
from engine.loader import load_kb
from engine.validate import RULES_MAX, RULES_WARN, placeholders, validate
from tui.cli import main

BROKEN = Path(__file__).resolve().parent / "data" / "broken_kb"


def _found(problems, file_name: str, line: int, path_part: str, message_part: str) -> bool:
    return any(Path(p.file).name == file_name and p.line == line and path_part in p.path
               and message_part in p.message for p in problems)


def _check(problems, expected):
    missing = [e for e in expected if not _found(problems, *e)]
    assert not missing, "not reported: " + repr(missing) + "\ngot:\n" + "\n".join(map(str, problems))


def test_yaml_syntax_error_and_duplicate_key_are_located():
    problems = validate(BROKEN / "syntax")
    _check(problems, [
        ("bad.yaml", 5, "(file)", "YAML syntax error"),
        ("dupkey.yaml", 4, "text", "duplicate key 'text'"),
    ])
    syntax = next(p for p in problems if Path(p.file).name == "bad.yaml")
    assert "line 4" in syntax.message  # where the unclosed flow mapping began
    assert len(problems) == 2


def test_schema_errors_point_at_the_field_not_the_file():
    problems = validate(BROKEN / "schema")
    _check(problems, [
        ("rules.yaml", 15, "rules[0].when.all[0].op", "Input should be"),
        ("rules.yaml", 20, "rules[1].rationale", "Field required"),
        ("rules.yaml", 26, "rules[1].conclude.cf", "less than or equal to 1"),
        ("rules.yaml", 27, "rules[1].colour", "unknown field 'colour'"),
    ])
    # the Condition union's other members (Concluded, AllOf...) are not reported as noise
    assert len(problems) == 4, "\n".join(map(str, problems))


SEMANTIC = [
    ("a.yaml", 2, "conclusions[0].id", "no rule concludes 'origin.middle_device'"),
    ("a.yaml", 5, "conclusions[0].description.zh", "empty zh text"),
    ("a.yaml", 6, "conclusions[0].fixes[0]", "undefined fix 'fix.missing'"),
    ("a.yaml", 7, "conclusions[1].id", "unreachable"),
    ("a.yaml", 20, "when.all[0].field", "unknown fact field 'ttl_delta_x'"),
    ("a.yaml", 21, "when.all[1].value", "yes/no field"),
    ("a.yaml", 22, "when.all[2].value", "'router' is not one of"),
    ("a.yaml", 23, "when.all[3].op", "'<' compares numbers"),
    ("a.yaml", 24, "when.all[4].value", "bad regular expression"),
    ("a.yaml", 25, "when.all[5].concluded", "undefined conclusion 'finding.nowhere'"),
    ("a.yaml", 26, "conclude.id", "undefined conclusion 'origin.not_defined'"),
    ("a.yaml", 27, "rules[0].tests", "'does_not_fire'"),
    ("a.yaml", 28, "tests[0].facts.ttl_typo", "unknown fact field 'ttl_typo'"),
    ("a.yaml", 28, "tests[0].given.finding.ghost", "undefined conclusion 'finding.ghost'"),
    ("a.yaml", 29, "tests[1].facts.ttl", "whole numbers"),
    ("a.yaml", 33, "fixes[0].steps.en", "unknown placeholder '{foo}'"),
    ("a.yaml", 33, "fixes[0].steps.en", "not a plain {name} placeholder"),
    ("a.yaml", 33, "fixes[0].steps.zh", "bad braces"),
    ("a.yaml", 34, "fixes[0].params[1]", "unknown fix parameter 'bogus'"),
    ("a.yaml", 39, "questions[0].sets", "unknown fact field 'no_such_field'"),
    ("a.yaml", 42, "questions[1].answer", "cannot set 'idle_before_s'"),
    ("a.yaml", 48, "questions[2].choices[0].value", "'sometimes' is not one of"),
    ("a.yaml", 55, "symptoms[0].question", "undefined question 'q.not_there'"),
    ("b.yaml", 5, "tips[1].id", "duplicate id 'origin.middle_device'"),
    ("b.yaml", 7, "tips[1].related[0]", "undefined id 'nothing.here'"),
]


def test_semantic_errors_all_reported_with_file_and_line():
    problems = validate(BROKEN / "semantic")
    _check(problems, SEMANTIC)
    dup = next(p for p in problems if "duplicate id" in p.message)
    assert "a.yaml:2" in dup.message  # names where the first definition is
    assert len([p for p in problems if p.severity == "error"]) == len(SEMANTIC)


def test_concluded_cycle_is_an_error():
    problems = validate(BROKEN / "cycle")
    _check(problems, [("c.yaml", 28, "rules[1].when", "cycle in 'concluded' chaining")])
    assert "finding.a" in problems[0].message and "finding.b" in problems[0].message


def test_load_kb_raises_with_every_problem():
    with pytest.raises(KBError) as err:
        load_kb(BROKEN / "semantic")
    assert len(err.value.problems) == len(SEMANTIC)
    assert "a.yaml:2:5" in str(err.value) and "more" in str(err.value)


def test_problem_string_format():
    problem = validate(BROKEN / "schema")[0]
    text = str(problem)
    assert text.startswith(f"{problem.file}:{problem.line}:{problem.col} {problem.path}: ")


@pytest.mark.parametrize("template,names,bad", [
    ("every {keepalive_s} s", ["keepalive_s"], False),
    ("literal {{braces}} and {idle_s}", ["idle_s"], False),
    ("{idle_s.__class__}", [], True),
    ("{idle_s[0]}", [], True),
    ("{idle_s!r}", [], True),
    ("{idle_s", [], True),
])
def test_placeholders_are_plain_names_only(template, names, bad):
    found, why = placeholders(template)
    assert (why is not None) == bad
    if not bad:
        assert found == names


def _rule(i: int) -> dict:
    return {"id": f"gen.r{i}", "rev": 1, "status": "test", "title": {"en": "t", "zh": "t"},
            "rationale": {"en": "r", "zh": "r"}, "references": ["x"],
            "when": {"field": "ttl", "op": ">", "value": i % 255},
            "conclude": {"id": "origin.middle_device", "cf": 0.1},
            "tests": [{"name": "a", "facts": {"ttl": 255}, "expect": "fires"},
                      {"name": "b", "facts": {"ttl": 0}, "expect": "does_not_fire"}]}


def _generated_kb(root: Path, n: int) -> Path:
    data = {"conclusions": [{"id": "origin.middle_device", "kind": "origin",
                             "title": {"en": "m", "zh": "m"}, "description": {"en": "d", "zh": "d"}}],
            "rules": [_rule(i) for i in range(n)]}
    root.mkdir()
    (root / "gen.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root


def test_rule_count_limits(tmp_path):
    warn = validate(_generated_kb(tmp_path / "w", RULES_WARN + 1))
    assert [p.severity for p in warn] == ["warning"] and "above 500" in warn[0].message
    kb = load_kb(tmp_path / "w")
    assert len(kb.warnings) == 1
    many = validate(_generated_kb(tmp_path / "e", RULES_MAX + 1))
    assert [p.severity for p in many] == ["error"] and "limit" in many[0].message


def test_cli_validate_exit_codes(capsys):
    assert main(["kb", "validate", "--kb", str(BROKEN / "semantic")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(SEMANTIC) + 1
    assert out[-1].endswith(f"{len(SEMANTIC)} error(s), 0 warning(s)")
    assert main(["kb", "validate"]) == 0
    assert " OK " in capsys.readouterr().out


def test_cli_validate_uses_environment(monkeypatch, capsys):
    monkeypatch.setenv("RSTSLEUTH_KB", str(BROKEN / "cycle"))
    assert main(["kb", "validate"]) == 1
    assert "cycle in 'concluded' chaining" in capsys.readouterr().out


def test_missing_kb_directory_is_a_user_error(capsys, tmp_path):
    assert main(["kb", "validate", "--kb", str(tmp_path / "nope")]) == 2
    assert "no such knowledge base directory" in capsys.readouterr().err


def test_conclusion_with_only_negative_evidence_is_reported(tmp_path):
    rule = _rule(1)
    rule["conclude"]["cf"] = -0.5
    data = {"conclusions": [{"id": "origin.middle_device", "kind": "origin",
                             "title": {"en": "m", "zh": "m"}, "description": {"en": "d", "zh": "d"}}],
            "rules": [rule]}
    (tmp_path / "neg.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    problems = validate(tmp_path)
    assert [(p.line, p.path) for p in problems] == [(2, "conclusions[0].id")]
    assert "only negative evidence" in problems[0].message
