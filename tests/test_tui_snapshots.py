"""SVG snapshots of the TUI's screens at 120×40 (pytest-textual-snapshot), all built by
``tests.snapshot_apps.tui_apps.snapshot_app``: the example capture, a small frozen KB, no
cursor blink. Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and
look at the SVGs under tests/__snapshots__/ before committing them."""
from __future__ import annotations

from tests.snapshot_apps.tui_apps import SIZE, snapshot_app


def test_resets_screen(snap_compare):
    assert snap_compare(snapshot_app(), terminal_size=SIZE)


def test_reset_detail_ladder(snap_compare):
    assert snap_compare(snapshot_app(), press=["d"], terminal_size=SIZE)


def test_reasoning_how_why_not_what_if(snap_compare):
    async def run_before(pilot):
        await pilot.press("r")
        await pilot.pause()
        pilot.app.screen.query_one("#why-not-pick").value = "origin.endpoint"
        await pilot.press("i")
        pilot.app.screen.query_one("#what-if").value = "ttl_matches_baseline=true"
        await pilot.press("enter")
        await pilot.pause()
    assert snap_compare(snapshot_app(), run_before=run_before, terminal_size=SIZE)


def test_knowledge_base_screen(snap_compare):
    assert snap_compare(snapshot_app(start="kb"), press=["down", "down", "enter"],
                        terminal_size=SIZE)


def test_interview_without_capture(snap_compare):
    assert snap_compare(snapshot_app(None), press=["f5"], terminal_size=SIZE)


def test_reset_detail_in_chinese(snap_compare):
    assert snap_compare(snapshot_app(lang="zh"), press=["d"], terminal_size=SIZE)


def test_help_generated_from_bindings(snap_compare):
    assert snap_compare(snapshot_app(), press=["f1"], terminal_size=SIZE)
