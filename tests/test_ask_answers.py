"""Typed answers (facts.answers): yes/no in English and Chinese, numbers with units, durations,
choices, pasted output, unknown; bad input is one AnswerError line."""
from __future__ import annotations

from pathlib import Path

import pytest

from facts.answers import (UNKNOWN, AnswerError, parse_answer, parse_duration, parse_number,
                           parse_yes_no)
from facts.errors import UserError

PASTED = Path(__file__).resolve().parent / "data" / "pasted"


@pytest.mark.parametrize("text, value", [
    ("30m", 1800), ("1h", 3600), ("90s", 90), ("1h30m", 5400), ("3600", 3600),
    ("1:00:00", 3600), ("4:00", 240), ("1.5h", 5400), ("500ms", 0.5), ("4 min", 240),
    ("2 hours", 7200), ("1 小时", 3600), ("30 分钟", 1800), ("60 秒", 60), ("1h 30m 15s", 5415),
])
def test_durations(text, value):
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "soon", "1h30x", "-5", "1:70", "m30", "1:2:3:4"])
def test_bad_durations(text):
    with pytest.raises(AnswerError):
        parse_duration(text)


@pytest.mark.parametrize("text, value", [
    ("yes", True), ("Y", True), ("是", True), ("对", True), ("no", False), ("N", False),
    ("否", False), ("没有", False), ("true", True), ("False", False)])
def test_yes_no(text, value):
    assert parse_yes_no(text) is value


def test_yes_no_rejects_other_words():
    with pytest.raises(AnswerError, match="expected yes or no"):
        parse_yes_no("maybe")


def test_numbers_with_units():
    assert parse_number("1500") == 1500
    assert parse_number("7,200,000 ms", "ms") == 7_200_000
    assert parse_number("2h", "ms") == 7_200_000  # a duration for a value in ms
    assert parse_number("64 TTL", "TTL") == 64
    assert isinstance(parse_number("1500"), int)
    with pytest.raises(AnswerError, match=r"expected a number \(port\)"):
        parse_number("ssh", "port")
    for bad, unit in (("70000", "port"), ("0", "port"), ("22.5", "port"), ("300", "TTL"),
                      ("-5", "ms")):
        with pytest.raises(AnswerError, match=f"a {unit} is a"):
            parse_number(bad, unit)


@pytest.mark.parametrize("word", ["unknown", "?", "dk", "不知道", "不确定", "Unknown."])
def test_unknown_for_every_type(kb, word):
    for qid in ("q.ttl_same", "q.idle_before_s", "q.server_port", "q.firewall_log_reason",
                "q.keepalive_time"):
        assert parse_answer(kb.questions[qid], word) is UNKNOWN


def test_choices_by_number_value_and_label(kb):
    q = kb.questions["q.firewall_log_reason"]
    assert parse_answer(q, "2").fields == {"firewall_log_reason": "policy_deny"}
    assert parse_answer(q, "threat").fields == {"firewall_log_reason": "threat"}
    assert parse_answer(q, "Denied by a rule or ACL").fields == {"firewall_log_reason": "policy_deny"}
    with pytest.raises(AnswerError, match="1=idle_timeout"):
        parse_answer(q, "9")


def test_yaml_scalars(kb):
    assert parse_answer(kb.questions["q.ttl_same"], True).fields == {"ttl_matches_baseline": True}
    assert parse_answer(kb.questions["q.server_port"], 22).fields == {"conn_server_port": 22}
    assert parse_answer(kb.questions["q.ttl_same"], None) is UNKNOWN


def test_pasted_reg_query_and_direct_value(kb):
    q = kb.questions["q.keepalive_time"]
    text = (PASTED / "reg_tcpip_v_keepalivetime.txt").read_text(encoding="utf-8")
    parsed = parse_answer(q, text)
    assert parsed.source == "paste" and parsed.parser == "reg_query"
    assert parsed.fields["keepalive_time_ms"] > 0
    missing = (PASTED / "reg_tcpip_v_missing_zh.txt").read_text(encoding="utf-8")
    assert parse_answer(q, missing).fields == {"keepalive_time_ms": 7_200_000}
    alt = (kb.questions["q.keepalive_time_ms"],)
    assert parse_answer(q, "300000", alternates=alt).fields == {"keepalive_time_ms": 300000}


def test_pasted_firewall_log_and_netstat(kb):
    fw = parse_answer(kb.questions["q.firewall_log"],
                      (PASTED / "fw_fortigate.log").read_text(encoding="utf-8"))
    assert fw.fields.get("path_has_firewall") is True
    netstat = (PASTED / "netstat_ano_en.txt").read_text(encoding="utf-8")
    with pytest.raises(AnswerError, match="does not decide port_listening"):
        parse_answer(kb.questions["q.netstat"], netstat)  # no port known: nothing proven


def test_bad_paste_is_one_user_error_line(kb):
    with pytest.raises(UserError) as info:
        parse_answer(kb.questions["q.keepalive_time"], "hello\nworld")
    assert "\n" not in str(info.value) and "reg_query" in str(info.value)


def test_check_answer_checks_pastes_by_shape_only(kb):
    from facts.answers import check_answer
    netstat = (PASTED / "netstat_ano_en.txt").read_text(encoding="utf-8")
    check_answer(kb.questions["q.netstat"], netstat)  # fields depend on the port known later
    check_answer(kb.questions["q.netstat"], "yes", alternates=(kb.questions["q.port_listening"],))
    with pytest.raises(AnswerError, match="netstat"):
        check_answer(kb.questions["q.netstat"], "not\nnetstat output")
    with pytest.raises(AnswerError, match="expected yes or no"):
        check_answer(kb.questions["q.ttl_same"], "perhaps")
