"""The interview engine: scripted interviews reach every sub-type in few questions; unknown,
back, why, how and why-not behave as the issue asks; captures and pastes fill facts."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.interview import Interview, from_captures
from engine.interview_text import render_whynot, render_why

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "tests" / "data" / "answers"
PASTED = ROOT / "tests" / "data" / "pasted"

# scenario file -> (expected top diagnosis, most questions asked; measured, unknown answers
# included: every question the file does not answer is answered "unknown")
SCENARIOS = {
    "firewall_idle_timeout": ("firewall.idle_timeout", 13),
    "firewall_policy_block": ("firewall.policy_block", 18),
    "firewall_dpi_payload_match": ("firewall.dpi_payload_match", 21),
    "firewall_reassembly_limit": ("firewall.reassembly_limit", 18),
    "ids_ips_signature_match": ("ids_ips.signature_match", 11),
    "ids_ips_rate_limit": ("ids_ips.rate_limit", 20),
    "isp_content_filtering": ("isp.content_filtering", 17),
    "isp_rate_injection": ("isp.rate_injection", 19),
    "load_balancer_session_timeout": ("load_balancer.session_timeout", 13),
    "load_balancer_health_check_failure": ("load_balancer.health_check_failure", 11),
    "nat_table_expiry": ("nat.table_expiry", 14),
    "nat_port_exhaustion": ("nat.port_exhaustion", 20),
    "routing_asymmetric": ("routing.asymmetric", 15),
    "routing_path_change": ("routing.path_change", 11),
    "endpoint_port_closed": ("endpoint.port_closed", 11),
    "endpoint_backlog_full": ("endpoint.backlog_full", 10),
    "endpoint_application_abort": ("endpoint.application_abort", 5),
}


def scripted(kb, reasoner, answers: dict, **kw) -> Interview:
    """Answer every question from ``answers`` (unknown when absent) until the interview stops."""
    iv = Interview(kb, reasoner, **kw)
    for _ in range(len(kb.questions) + 1):
        if iv.finished:
            break
        iv.answer(answers.get(iv.current.id, "unknown"))
    assert iv.finished, "the interview never stopped"
    return iv


def load(name: str) -> dict:
    return yaml.safe_load((ANSWERS / f"{name}.yaml").read_text(encoding="utf-8"))


def test_scenarios_cover_every_subtype(kb):
    subtypes = {c.id for c in kb.conclusions.values() if c.kind == "subtype"}
    assert {top for top, _ in SCENARIOS.values()} == subtypes
    assert len(subtypes) == 17
    assert {p.stem for p in ANSWERS.glob("*.yaml")} >= set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_reaches_its_subtype(kb, reasoner, name):
    top, most = SCENARIOS[name]
    iv = scripted(kb, reasoner, load(name))
    verdict = iv.verdict()
    assert verdict.stopped == "settled"
    assert verdict.top_diagnosis is not None and verdict.top_diagnosis.id == top, \
        [(d.id, d.confidence) for d in verdict.diagnoses]
    assert verdict.questions_asked <= most
    asked = [s.question for s in iv.steps]
    assert len(asked) == len(set(asked))  # never the same question twice
    fields = [kb.questions[q].sets for q in asked]
    assert len(fields) == len(set(fields))  # never a field already known or answered unknown
    # the verdict's fixes are the KB fixes of the diagnosis, built like analyze builds them
    concl = kb.conclusions[top]
    if verdict.top_diagnosis.confidence >= 0.3:
        assert {f.id for f in verdict.fixes} & set(concl.fixes)


def test_unknown_keeps_the_best_verdict_with_lower_confidence(kb, reasoner):
    answers = load("firewall_idle_timeout")
    sure = scripted(kb, reasoner, answers).verdict()
    unsure = scripted(kb, reasoner, {**answers, "q.path_has_firewall": "unknown"}).verdict()
    assert sure.top_diagnosis.id == unsure.top_diagnosis.id == "firewall.idle_timeout"
    assert unsure.top_diagnosis.confidence < sure.top_diagnosis.confidence
    no_ttl = scripted(kb, reasoner, {**answers, "q.ttl_same": "不知道"}).verdict()
    assert no_ttl.origin_confidence < sure.origin_confidence
    assert no_ttl.top_diagnosis is not None  # still the best available verdict


def test_back_changes_the_verdict(kb, reasoner):
    iv = Interview(kb, reasoner)
    while iv.current.id != "q.ttl_same":
        iv.answer("unknown")
    iv.answer("no")
    origin_before = iv.inference.origin
    assert origin_before == "middle_device"
    withdrawn = iv.back()
    assert withdrawn.question == "q.ttl_same" and iv.current.id == "q.ttl_same"
    assert "ttl_matches_baseline" not in iv.evidence
    iv.answer("yes")
    assert iv.inference.origin == "endpoint"
    assert iv.verdict().origin != origin_before
    assert iv.transcript()[-1] == {"question": "q.ttl_same", "answer": "yes"}


def test_why_names_the_rule_and_climbs(kb, reasoner):
    iv = Interview(kb, reasoner)
    for qid, answer in (("q.ttl_same", "no"),):
        while iv.current.id != qid:
            iv.answer("unknown")
        iv.answer(answer)
    question = iv.current
    first = iv.why()
    rule = kb.rule(first.rule_id)
    assert question.sets in first.needs
    lines = render_why(iv, first)
    assert first.rule_id in lines[0] and rule.rationale.en in "\n".join(lines)
    second = iv.why()
    assert second.level == 2
    if second.goal:  # the pursued rule concludes a diagnosis or an origin itself
        assert second.conclusion == first.conclusion
    else:
        reads = kb.rule(second.rule_id)
        from engine.conditions import concluded_literals, to_nnf
        assert first.conclusion in {c.concluded for c in concluded_literals(to_nnf(reads.when))}
        assert first.conclusion in "\n".join(render_why(iv, second))
    # climbing ends at the goal and stays there
    for _ in range(6):
        last = iv.why()
    assert last.goal
    # an answer starts WHY again from the new question's rule
    iv.answer("unknown")
    if not iv.finished:
        assert iv.why().level == 1


def test_why_chain_climbs_through_a_pattern(kb, reasoner):
    iv = Interview(kb, reasoner)
    while iv.current.id != "q.idle_before_s":
        answers = {"q.ttl_same": "no"}
        iv.answer(answers.get(iv.current.id, "unknown"))
    chain = iv.why_chain()
    assert chain[0].conclusion == "pattern.idle_timeout"
    assert len(chain) >= 3 and chain[-1].goal
    assert all(step.rule_id for step in chain[:-1])


def test_why_not_names_the_first_failing_condition_with_the_value(kb, reasoner):
    iv = scripted(kb, reasoner, load("nat_table_expiry"))
    assert iv.verdict().top_diagnosis.id == "nat.table_expiry"
    iv.answer("no", question=kb.questions["q.path_has_nat"])  # changed at the end
    results = iv.why_not("nat.table_expiry")
    failing = {w.rule_id: w for w in results}
    nat = failing["nat.idle_middle_with_nat"]
    assert not nat.fired and nat.field == "path_has_nat" and nat.actual is False
    assert nat.condition == "path_has_nat == true"
    text = "\n".join(render_whynot(iv, "nat.table_expiry", results))
    assert "nat.idle_middle_with_nat" in text and "path_has_nat == true" in text
    assert "path_has_nat is false" in text


def test_how_tells_answer_paste_and_conclusion(kb, reasoner):
    iv = scripted(kb, reasoner, load("firewall_idle_timeout"))
    fact = iv.how("ttl_matches_baseline")
    assert fact.known and fact.value is False and fact.source == "answer"
    assert fact.question == "q.ttl_same"
    assert iv.how("q.ttl_same") == fact  # a question id names its field
    node = iv.how("firewall.idle_timeout")
    assert node.cf > 0 and node.supports
    reply = iv.handle("how nonsense_field")
    assert reply.kind == "error" and len(reply.lines) == 1


def test_pasted_reg_query_sets_keepalive(kb, reasoner):
    iv = Interview(kb, reasoner)
    question = kb.questions["q.keepalive_time"]
    text = (PASTED / "reg_tcpip_v_keepalivetime.txt").read_text(encoding="utf-8")
    step = iv.answer(text, question=question)
    assert step.source == "paste" and step.parser == "reg_query"
    assert iv.evidence["keepalive_time_ms"] == step.fields["keepalive_time_ms"] > 0
    fact = iv.how("keepalive_time_ms")
    assert fact.source == "paste" and fact.question == "q.keepalive_time"
    assert all(q.sets != "keepalive_time_ms" for q in iv.remaining())
    # the missing value means the documented default
    iv2 = Interview(kb, reasoner)
    missing = (PASTED / "reg_tcpip_v_missing_en.txt").read_text(encoding="utf-8")
    assert iv2.answer(missing, question=question).fields == {"keepalive_time_ms": 7_200_000}


def test_paste_error_is_one_line_and_the_question_is_asked_again(kb, reasoner):
    iv = Interview(kb, reasoner)
    while iv.current.answer != "text":
        iv.answer("unknown")
    question, asked = iv.current, len(iv.steps)
    reply = iv.handle("this is not any command's output\nat all")
    assert reply.kind == "error" and len(reply.lines) == 1 and "\n" not in reply.lines[0]
    assert iv.current is question and len(iv.steps) == asked


def test_capture_facts_are_never_asked(kb, reasoner):
    iv = from_captures(kb, reasoner, str(ROOT / "examples" / "firewall_idle_reset.pcap"))
    captured = set(iv.base)
    assert {"ttl_matches_baseline", "idle_before_trigger_s", "conn_server_port"} <= captured
    asked = []
    while not iv.finished:
        assert iv.current.sets not in captured, iv.current.id
        asked.append(iv.current.id)
        iv.answer({"q.path_has_firewall": "yes", "q.path_has_nat": "no"}.get(iv.current.id,
                                                                            "unknown"))
    assert iv.how("ttl_matches_baseline").source == "capture"
    verdict = iv.verdict()
    assert verdict.origin == "middle_device" and verdict.capture
    assert verdict.top_diagnosis.id == "firewall.idle_timeout"
    assert "q.ttl_same" not in asked and "q.server_port" not in asked


def test_capture_with_an_unknown_reset_id_is_a_user_error(kb, reasoner):
    from facts.errors import UserError
    with pytest.raises(UserError, match="no reset '9:r9'"):
        from_captures(kb, reasoner, str(ROOT / "examples" / "firewall_idle_reset.pcap"),
                      reset="9:r9")


def test_chinese_interview(kb, reasoner):
    iv = Interview(kb, reasoner, lang="zh")
    reply = iv.handle("help")
    assert any("修改上一个回答" in line for line in reply.lines)
    iv2 = scripted(kb, reasoner, load("firewall_idle_timeout"), lang="zh")
    verdict = iv2.verdict()
    assert verdict.lang == "zh" and verdict.top_diagnosis.title == \
        kb.conclusions["firewall.idle_timeout"].title.zh


def test_verdict_json_validates_against_its_schema(kb, reasoner):
    import jsonschema

    from engine.interview_verdict import verdict_json_schema
    from engine.report_model import Diagnosis, FixOut
    verdict = scripted(kb, reasoner, load("firewall_idle_timeout")).verdict()
    jsonschema.validate(verdict.to_json_dict(), verdict_json_schema())
    # the same objects analyze reports
    assert isinstance(verdict.top_diagnosis, Diagnosis)
    assert all(isinstance(f, FixOut) for f in verdict.fixes)
    assert verdict.to_json_dict()["schema"] == "rstsleuth.ask/1"


def test_parameter_question_picks_the_per_application_fixes(kb, reasoner):
    answers = {k: v for k, v in load("firewall_idle_timeout").items() if k != "q.server_port"}
    iv = Interview(kb, reasoner)
    phases = []
    while not iv.finished:
        phases.append(iv.phase)
        if iv.phase == "parameter":
            assert iv.current.id == "q.server_port"
            assert iv.why().parameter == "conn_server_port"
            iv.answer("22")
        else:
            iv.answer(answers.get(iv.current.id, "unknown"))
    assert phases[-1] == "parameter" and phases.count("parameter") == 1
    verdict = iv.verdict()
    ssh = {f.id for f in kb.fixes.values() if f.ports == [22]}
    sql = {f.id for f in kb.fixes.values() if f.ports == [1433]}
    ids = {f.id for f in verdict.fixes}
    assert ids & ssh and not ids & sql
    text = "\n".join(f.text for f in verdict.fixes)
    assert "3600" in text and "{idle_s}" not in text  # idle answered in the diagnosis phase


def test_dual_capture_facts_are_never_asked(kb, reasoner):
    lab = ROOT / "examples" / "lab_captures" / "firewall_idle_timeout"
    iv = from_captures(kb, reasoner, str(lab / "client.pcap"), str(lab / "server.pcap"))
    assert iv.base["dual_peer_sent_rst"] is False and iv.base["dual_available"] is True
    asked = []
    while not iv.finished:
        asked.append(iv.current.id)
        iv.answer({"q.path_has_firewall": "yes"}.get(iv.current.id, "unknown"))
    assert not {"q.dual_peer_sent_rst", "q.dual_peer_saw_connection",
                "q.dual_peer_received_rst"} & set(asked)
    assert len(asked) <= 5  # the dual capture settles the origin: few questions remain
    verdict = iv.verdict()
    assert verdict.origin == "middle_device" and verdict.origin_confidence >= 0.9
    assert verdict.top_diagnosis.id == "firewall.idle_timeout"
