"""The command line's last line of defence: engine failures are one line (exit 3), and the
engine is loaded only by the commands that reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.host import EngineError
from tui import cli

ROOT = Path(__file__).resolve().parents[1]


def _failing(args):
    raise EngineError("durable-rules failed in rule origin.x")


def test_engine_failure_is_one_line_exit_3(monkeypatch, capsys):
    parser = cli.build_parser()
    args = parser.parse_args(["facts", "examples/endpoint_reset.pcap"])
    args.func = _failing
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda s, a: args})())
    assert cli.main([]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "origin.x" in err[0] and "RSTSLEUTH_DEBUG" in err[0]
    monkeypatch.setenv("RSTSLEUTH_DEBUG", "1")
    with pytest.raises(EngineError):
        cli.main([])


def test_other_bugs_are_not_disguised(monkeypatch):
    args = cli.build_parser().parse_args(["facts", "examples/endpoint_reset.pcap"])
    args.func = lambda a: 1 / 0
    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": lambda s, a: args})())
    with pytest.raises(ZeroDivisionError):
        cli.main([])


def test_facts_does_not_load_the_engine():
    code = ("import sys; from tui import cli; cli.main(['facts', 'examples/endpoint_reset.pcap']);"
            "print('ENGINE' if 'engine.host' in sys.modules else 'NO-ENGINE', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip().endswith("NO-ENGINE"), proc.stderr
