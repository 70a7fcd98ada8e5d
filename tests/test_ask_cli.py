"""rstsleuth ask end to end: stdin that is not a terminal, answers files, transcripts,
formats, languages, captures and bad input (one line, exit 2)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSWERS = ROOT / "tests" / "data" / "answers"


def ask(*args: str, input: str = "", timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", "ask", *args], cwd=ROOT, input=input,
                          capture_output=True, text=True, timeout=timeout)


def test_stdin_lines_json_verdict_why_how_back_and_transcript(tmp_path):
    transcript = tmp_path / "t.yaml"
    # unknown to everything but the TTL (answered twice: 'yes' withdrawn by back) and the
    # idle drops/firewall questions; why/how in between; EOF ends the interview
    wanted = {"q.ttl_same": "no", "q.drops_after_idle": "yes", "q.path_has_firewall": "yes"}
    lines = []
    from engine import Reasoner, load_kb
    from engine.interview import Interview
    kb = load_kb()
    with Reasoner(kb) as reasoner:
        iv = Interview(kb, reasoner)
        while not iv.finished:
            qid = iv.current.id
            if qid == "q.ttl_same":
                lines += ["why", "why", "yes", "back"]
            if qid == "q.path_has_firewall":
                lines += ["how ttl_matches_baseline"]
            lines.append(wanted.get(qid, "unknown"))
            iv.answer(wanted.get(qid, "unknown"))
    result = ask("--format", "json", "--transcript", str(transcript),
                 input="\n".join(lines) + "\nwhy-not nat.table_expiry\n")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)  # the dialogue went to stderr
    assert verdict["schema"] == "rstsleuth.ask/1"
    assert verdict["top_diagnosis"]["id"] == "firewall.idle_timeout"
    assert verdict["origin"] == "middle_device" and verdict["stopped"] == "settled"
    assert verdict["fixes"] and verdict["evidence"] and verdict["how"]
    dialogue = result.stderr
    assert "WHY: this question serves rule " in dialogue and "WHY (level 2)" in dialogue
    assert "Withdrawn" in dialogue
    assert "ttl_matches_baseline = false: you answered q.ttl_same ('no')" in dialogue
    assert "WHY NOT nat.table_expiry" in dialogue and "path_has_nat" in dialogue
    saved = yaml.safe_load(transcript.read_text(encoding="utf-8"))
    assert {"question": "q.ttl_same", "answer": "no"} in saved
    assert all(e["question"] != "q.ttl_same" or e["answer"] == "no" for e in saved)
    # the transcript replays to the same verdict, with nothing on stdin
    again = ask("--answers", str(transcript), "--format", "json")
    assert again.returncode == 0, again.stderr
    replayed = json.loads(again.stdout)
    assert replayed["top_diagnosis"] == verdict["top_diagnosis"]
    assert replayed["questions_asked"] == verdict["questions_asked"]


def test_answers_file_markdown_and_eof_quits_early():
    result = ask("--answers", str(ANSWERS / "load_balancer_health_check_failure.yaml"),
                 "--format", "markdown")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "# rstsleuth ask — verdict" in out and "load_balancer.health_check_failure" in out
    # nothing answered and stdin at EOF at once: quit, verdict with what is known
    empty = ask("--format", "json")
    assert empty.returncode == 0, empty.stderr
    verdict = json.loads(empty.stdout)
    assert verdict["stopped"] == "quit" and verdict["questions_asked"] == 0
    assert verdict["origin"] == "undetermined" and verdict["top_diagnosis"] is None


def test_chinese_questions_and_verdict():
    result = ask("--lang", "zh", "--answers", str(ANSWERS / "routing_path_change.yaml"))
    assert result.returncode == 0, result.stderr
    assert "在服务端抓包中" in result.stdout  # the first question, in Chinese
    assert "诊断" in result.stdout and "routing.path_change" in result.stdout


def test_capture_asks_nothing_the_capture_set():
    result = ask("--capture", str(ROOT / "examples" / "firewall_idle_reset.pcap"),
                 "--format", "json", input="unknown\n" * 40)
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    captured = {f["field"] for f in verdict["facts"] if f["source"] == "capture"}
    assert "ttl_matches_baseline" in captured and "conn_server_port" in captured
    from engine import load_kb
    kb = load_kb()
    asked = [a["question"] for a in verdict["answers"]]
    assert asked and not [q for q in asked if kb.questions[q].sets in captured]
    assert verdict["origin"] == "middle_device"


@pytest.mark.parametrize("content, message", [
    ("q.no_such_question: yes\n", "unknown question id 'q.no_such_question'"),
    ("q.ttl_same: maybe\n", "q.ttl_same: expected yes or no"),
    ("q.idle_before_s: soon\n", "q.idle_before_s: expected a duration"),
    ("- {question: q.ttl_same}\n", "entry 1 must be a mapping"),
    ("just text\n", "expected a mapping of question id"),
    ("q.ttl_same: [yes\n", "not valid YAML"),
])
def test_bad_answers_file_is_one_line_exit_2(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    result = ask("--answers", str(path))
    assert result.returncode == 2
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(path) in err and message in err, err


def test_missing_answers_file_and_peer_without_capture():
    result = ask("--answers", "/nonexistent/answers.yaml")
    assert result.returncode == 2 and "cannot read answers file" in result.stderr
    result = ask("--peer", str(ROOT / "examples" / "endpoint_reset.pcap"))
    assert result.returncode == 2 and "--peer needs --capture" in result.stderr


CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def test_several_resets_take_the_first_and_say_so_or_the_one_named():
    capture = CORPUS / "07_refused_x3_retries.pcapng"
    if not capture.exists():
        pytest.skip(f"corpus capture absent: {capture}")
    result = ask("--capture", str(capture), "--format", "json")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert any("3 resets; using 1:r1" in n for n in verdict["notes"])
    assert "3 resets; using 1:r1" in result.stderr
    named = ask("--capture", str(capture), "--reset", "1:r3", "--format", "json")
    assert named.returncode == 0, named.stderr
    assert "reset 1:r3" in json.loads(named.stdout)["capture"]
    bad = ask("--capture", str(capture), "--reset", "1:r99")
    assert bad.returncode == 2 and "no reset '1:r99'" in bad.stderr


def test_pasted_log_on_stdin_ends_at_a_dot_and_sets_its_fields():
    log = (ROOT / "tests" / "data" / "pasted" / "fw_fortigate.log").read_text(encoding="utf-8")
    garbage = "hello\nworld\n.\n"  # not a firewall log: one error line, asked again
    result = ask("--format", "json", input="unknown\n" + garbage + log.rstrip("\n") + "\n.\n")
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    pasted = {f["field"]: f for f in verdict["facts"] if f["source"] == "paste"}
    assert pasted["path_has_firewall"]["value"] is True
    assert pasted["path_has_firewall"]["question"] == "q.firewall_log"
    assert pasted["path_has_nat"]["detail"] == "firewall_log"
    assert "pasted firewall_log: " in result.stderr  # the parse error, shown once
    assert [a["question"] for a in verdict["answers"]][:2] == ["q.dual_peer_sent_rst",
                                                              "q.firewall_log"]
    # never asked again: the paste already answered these
    asked = [a["question"] for a in verdict["answers"]]
    assert "q.path_has_firewall" not in asked and "q.path_has_nat" not in asked
