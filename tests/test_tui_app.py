"""Pilot-driven tests of the TUI: open captures, select a reset, ladder, copy a fix, reasoning
(HOW, WHY-NOT, what-if), interview to its verdict, KB reload (broken and fixed), Chinese,
help generated from live bindings, the command palette, and the CLI entry."""
from __future__ import annotations

import asyncio
import shutil

import pytest
from rich.text import Text
from textual.widgets import Input, RichLog, Select, Tree

from engine import Reasoner
from engine.interview import Interview
from tests.snapshot_apps.tui_apps import EXAMPLE, LAB, SIZE, make_app, shipped_kb
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.screens.interview import InterviewScreen
from tui.screens.kb import KbScreen
from tui.screens.reasoning import ReasoningScreen, parse_changes, ChangeError
from tui.screens.resets import ResetsScreen, parse_filter
from tui.widgets.virtual_table import VirtualTable


def run(app, scenario):
    async def main():
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await scenario(app, pilot)
    asyncio.run(main())


def text_of(widget) -> str:
    content = widget.content
    return content.plain if isinstance(content, Text) else str(content)


def tree_labels(tree: Tree) -> list[str]:
    out = []

    def walk(node):
        out.append(node.label.plain if isinstance(node.label, Text) else str(node.label))
        for child in node.children:
            walk(child)
    walk(tree.root)
    return out


def test_open_capture_select_reset_ladder_and_copy_fix():
    app = make_app()

    async def scenario(app, pilot):
        assert isinstance(app.screen, ResetsScreen)
        table = app.screen.query_one(VirtualTable)
        assert table.current_key == "1:r1" and app.selected == "1:r1"
        await pilot.press("enter")  # select the reset → detail
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        ladder = text_of(app.screen.query_one("#ladder"))
        # the forged RST is drawn from the middle device at tracert hop 3 (TTL 253 from 255)
        assert "middle device @ hop 3" in ladder
        rst_line = next(line for line in ladder.splitlines() if line.strip().startswith("10 "))
        assert "253" in rst_line and "RST+ACK" in rst_line and "forged RST from hop 3" in rst_line
        assert "◀" in rst_line and "●" in rst_line
        assert rst_line.index("◀") < rst_line.index("●")  # towards the client, from the hop
        syn_line = next(line for line in ladder.splitlines() if line.strip().startswith("1 "))
        assert "SYN" in syn_line and "▶" in syn_line and " 64 " in syn_line
        evidence = text_of(app.screen.query_one("#detail-evidence"))
        assert "ttl_delta = 135" in evidence
        await pilot.press("c")
        await pilot.pause()
        first_fix = app.session.report.resets[0].fixes[0]
        assert app.clipboard == first_fix.text
        await pilot.press("w")
        assert app.clipboard.startswith("ip.addr==10.0.0.2")
        await pilot.press("escape")
        assert isinstance(app.screen, ResetsScreen)
    run(app, scenario)


def test_dual_capture_ladder_and_reasoning_why_not_what_if():
    app = make_app(LAB / "client.pcap", LAB / "server.pcap")

    async def scenario(app, pilot):
        report = app.session.report
        assert report.dual and report.resets[0].dual.verdict == "middle_injected"
        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReasoningScreen)
        labels = tree_labels(screen.query_one("#how", Tree))
        assert any(label.startswith("origin.middle_device") for label in labels)
        # down to the observed facts, each rule with its rationale
        assert any("dual_peer_sent_rst == false" in label and "false" in label.split(":")[-1]
                   for label in labels)
        assert any("← origin.dual_peer_never_sent_rst" in label and len(label) > 60
                   for label in labels)
        # WHY-NOT another sub-type: its first failing condition and the actual value
        pick = screen.query_one("#why-not-pick", Select)
        pick.value = "nat.port_exhaustion"
        await pilot.pause()
        why_not = text_of(screen.query_one("#why-not"))
        assert why_not.startswith("nat.port_exhaustion")
        assert "first failing condition" in why_not and "actual:" in why_not
        expected = app.session.reasoner.why_not(app.session.evidence["1:r1"], "nat.port_exhaustion")
        failing = [w for w in expected if not w.fired]
        assert failing and failing[0].condition in why_not
        # WHAT-IF: the other end did send it → the verdict changes to the endpoint
        await pilot.press("i")
        assert screen.query_one("#what-if", Input).has_focus
        screen.query_one("#what-if", Input).value = "dual_peer_sent_rst=true"
        await pilot.press("enter")
        await pilot.pause()
        result = text_of(screen.query_one("#what-if-result"))
        assert "before: middle_device" in result
        after = result.split("after:")[1].split("\n")[0]
        assert "middle_device" not in after
        screen.query_one("#what-if", Input).value = "no_such_field=1"
        await screen.query_one("#what-if", Input).action_submit()
        await pilot.pause()
        assert "unknown field: no_such_field" in text_of(screen.query_one("#what-if-result"))
    run(app, scenario)


def test_parse_changes_types_values_from_the_field_registry():
    assert parse_changes("ttl_delta=0, ttl_matches_baseline=yes idle_before_s=unknown") == {
        "ttl_delta": 0, "ttl_matches_baseline": True, "idle_before_s": None}
    for bad in ("ttl_delta", "ttl_delta=abc", "nope=1", "flags=BOGUS", ""):
        with pytest.raises(ChangeError):
            parse_changes(bad)


def _answer_for(question) -> str:
    if question.answer == "yes_no":
        return "no"
    if question.answer == "choice" and question.choices:
        return str(question.choices[0].value)
    if question.answer in ("number", "duration"):
        return "3600"
    return "unknown"


def test_interview_without_capture_runs_to_the_same_verdict_as_the_engine():
    app = make_app(None)

    async def scenario(app, pilot):
        assert isinstance(app.screen, InterviewScreen)  # no capture: straight into it
        screen = app.screen
        asked = []
        await pilot.press("f5")  # why is the first question asked
        await pilot.pause()
        log_text = "\n".join(strip.text for strip in screen.query_one(RichLog).lines)
        assert "> why" in log_text
        pasted = 0
        while not screen.iv.finished and len(asked) < 40:
            question = screen.iv.current
            asked.append(question.id)
            if question.answer == "text":  # pasted output goes in the text area (ctrl+s)
                paste = screen.query_one("#paste")
                assert paste.display and paste.has_focus
                paste.text = _answer_for(question)
                await pilot.press("ctrl+s")
                pasted += 1
            else:
                screen.query_one("#answer", Input).value = _answer_for(question)
                await screen.query_one("#answer", Input).action_submit()
            await pilot.pause()
        assert screen.iv.finished and pasted
        # the same engine and questions as `rstsleuth ask`: replay the answers on it directly
        with Reasoner(shipped_kb()) as reasoner:
            iv = Interview(shipped_kb(), reasoner)
            direct = []
            while not iv.finished:
                direct.append(iv.current.id)
                iv.handle(_answer_for(iv.current))
            assert direct == asked
            verdict = iv.verdict()
        assert screen.iv.verdict().origin == verdict.origin
        log_text = "\n".join(strip.text for strip in screen.query_one(RichLog).lines)
        assert "rstsleuth ask — verdict" in log_text
        assert "Verdict" in text_of(screen.query_one("#interview-question"))
        # back withdraws the last answer and asks again
        await pilot.press("f7")
        await pilot.pause()
        assert not screen.iv.finished and screen.iv.current.id == asked[-1]
    run(app, scenario)


def test_interview_with_a_capture_starts_from_the_selected_reset():
    app = make_app()

    async def scenario(app, pilot):
        await pilot.press("f3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, InterviewScreen)
        assert screen.iv.base == app.session.evidence["1:r1"]
        assert screen.iv.inference.origin == "middle_device"  # the capture already says so
        log_text = "\n".join(strip.text for strip in screen.query_one(RichLog).lines)
        assert "evidence from examples/firewall_idle_reset.pcap reset 1:r1, frame 10" in log_text
    run(app, scenario)


def test_reload_broken_kb_keeps_the_old_one_then_a_fix_takes_effect(tmp_path):
    kb_dir = tmp_path / "knowledge"
    shutil.copytree(shipped_kb().path, kb_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    app = make_app(kb_path=kb_dir)

    async def scenario(app, pilot):
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, KbScreen)
        old_kb = app.session.kb
        firewall = kb_dir / "firewall.yaml"
        good = firewall.read_text(encoding="utf-8")
        broken = good.replace("op: ", "op: ~~", 1)
        assert broken != good
        firewall.write_text(broken, encoding="utf-8")
        await pilot.press("ctrl+r")
        await pilot.pause()
        problems = text_of(app.screen.query_one("#kb-problems"))
        assert "the previous KB stays in use" in problems
        assert "firewall.yaml:" in problems and ".op" in problems
        assert app.session.kb is old_kb  # still reasoning with the previous KB
        assert app.session.reasoner.infer(app.session.evidence["1:r1"]).origin == "middle_device"
        # an edit that is valid takes effect at once (the watcher sees the new mtime)
        firewall.write_text(good.replace("Firewall idle (connection) timeout",
                                         "Firewall idle timeout (edited)", 1), encoding="utf-8")
        app.watch_kb = True
        old_report = app.session.report
        app._poll_kb()
        assert app.session.kb is not old_kb  # loaded at once; the analysis runs on a worker
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session.report is not old_report
        assert app.session.kb is not old_kb and not app.session.problems
        assert app.session.kb.conclusions["firewall.idle_timeout"].title.en == \
            "Firewall idle timeout (edited)"
        titles = {d.id: d.title for d in app.session.report.resets[0].diagnoses}
        assert titles["firewall.idle_timeout"] == "Firewall idle timeout (edited)"
        assert "no errors" in text_of(app.screen.query_one("#kb-problems"))
        labels = tree_labels(app.screen.query_one("#kb-tree", Tree))
        assert any("Firewall idle timeout (edited)" in label for label in labels)
    run(app, scenario)


def test_reload_analyses_off_the_ui_thread_and_keeps_the_newest(tmp_path):
    """The re-analysis after a reload runs on a worker thread with its own Reasoner, and a
    result for a KB that was replaced meanwhile is dropped."""
    import threading

    kb_dir = tmp_path / "knowledge"
    shutil.copytree(shipped_kb().path, kb_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    app = make_app(kb_path=kb_dir)
    seen = []

    async def scenario(app, pilot):
        real = app.session.analysis

        def recording(kb, reasoner, lang="en", progress=None):
            seen.append((threading.current_thread() is threading.main_thread(),
                         reasoner is app.session.reasoner))
            return real(kb, reasoner, lang, progress)

        app.session.analysis = recording
        before = app.session.report
        assert app.reload_kb()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert seen == [(False, False)]
        assert app.session.report is not before and app.session.report.resets
        # a result computed for an older KB does not replace the current report
        current = app.session.report
        app._show_reanalysed(object(), before, {})
        assert app.session.report is current
    run(app, scenario)


def test_kb_screen_lists_rules_by_subtype_with_conditions_and_tests():
    app = make_app(start="kb")

    async def scenario(app, pilot):
        labels = tree_labels(app.screen.query_one("#kb-tree", Tree))
        kb = app.session.kb
        rule = kb.rules_concluding("firewall.idle_timeout")[0]
        assert any(label.startswith("firewall.idle_timeout") for label in labels)
        assert any(label.startswith(rule.id) and f"{rule.source.line}" in label for label in labels)
        assert any(label.startswith("when: ") for label in labels)
        assert any(rule.tests[0].name in label for label in labels)
    run(app, scenario)


def test_switch_to_chinese():
    app = make_app()

    async def scenario(app, pilot):
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert app.lang == "zh"
        table = app.screen.query_one(VirtualTable)
        assert table.columns[4].label == "来源"
        assert "中间设备" in text_of(app.screen.query_one("#findings"))
        await pilot.press("d")
        await pilot.pause()
        summary = text_of(app.screen.query_one("#detail-summary"))
        assert "来源: 中间设备" in summary
        zh_title = app.session.kb.conclusions["firewall.idle_timeout"].title.zh
        assert zh_title in summary  # diagnosis titles from the KB's zh
        assert "伪造的 RST,来自第 3 跳" in text_of(app.screen.query_one("#ladder"))
        # the footer shows the live bindings, described in Chinese too
        descriptions = {a.binding.id: a.binding.description for a in app.active_bindings.values()}
        assert descriptions["detail.copy_fix"] == "复制所选解决方案"
        assert descriptions["app.kb"] == "知识库"
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert "Origin: MIDDLE DEVICE" in text_of(app.screen.query_one("#detail-summary"))
        descriptions = {a.binding.id: a.binding.description for a in app.active_bindings.values()}
        assert descriptions["detail.copy_fix"] == "Copy the selected fix"
    run(app, scenario)


def test_help_is_generated_from_live_bindings_and_palette_offers_actions():
    app = make_app()

    async def scenario(app, pilot):
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        ids = [ident for _k, _d, ident in _help_rows(app.screen)]
        assert "resets.detail" in ids and "app.lang" in ids and "kb.reload" not in ids
        await pilot.press("escape")
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        ids = [ident for _k, _d, ident in _help_rows(app.screen)]
        assert "kb.reload" in ids and "resets.detail" not in ids
        await pilot.press("escape")
        # command palette: the registry's main actions
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"interview")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, InterviewScreen)
    run(app, scenario)


def _help_rows(screen):
    from tui.screens.help import help_rows
    return help_rows(screen.live, "en")


def test_filter_parser():
    row = ("1:r1", 0.0, "", "server", "middle_device", 0.7, "idle_timeout",
           "firewall.idle_timeout", 253, 3)
    assert parse_filter("") is None
    assert parse_filter("origin:middle sub:firewall")(row)
    assert parse_filter("idle")(row)
    assert not parse_filter("origin:endpoint")(row)
    assert not parse_filter("pattern:syn")(row)


def test_cli_tui_errors_are_one_line(capsys):
    from tui.cli import main
    assert main(["tui", "--peer", str(EXAMPLE)]) == 2
    assert "needs a capture" in capsys.readouterr().err
    assert main(["tui", "/nonexistent.pcap"]) == 2
    assert "/nonexistent.pcap" in capsys.readouterr().err


def test_ladder_draws_the_forged_rst_from_the_named_hop_towards_the_capturing_end():
    from tui.widgets.ladder import LadderPacket, render_ladder
    app = make_app()  # only for a real ResetOut; the app is not run
    reset = app.session.report.resets[0]
    app.session.close()
    # the same reset as if the server had captured a RST claimed by the client
    reset = reset.model_copy(update={
        "claimed_sender": "client", "observed_at": "server",
        "rst_source": reset.rst_source.model_copy(update={
            "tracert_name": "fw-edge", "tracert_address": "10.0.0.254"})})
    packets = [LadderPacket(9, reset.time - 1, False, "PSH+ACK", 64, 10, 1, 1),
               LadderPacket(reset.frame, reset.time, True, "RST", 253, 0, 2, 0)]
    text = render_ladder(reset, packets, "en").plain
    assert "as captured at the server" in text
    assert "middle device @ hop 3 fw-edge [10.0.0.254]" in text
    data, rst = [line for line in text.splitlines() if line.strip()[:2] in ("9 ", "10")]
    assert data.index("◀") < data.index("─")  # server → client
    assert rst.index("●") < rst.index("▶")  # from the hop towards the server
    # an endpoint's RST is drawn from the end that sent it
    endpoint = reset.model_copy(update={"origin": "endpoint"})
    rst = render_ladder(endpoint, packets, "en").plain.splitlines()[-1]
    assert "●" not in rst and "forged" not in rst and "▶" in rst
