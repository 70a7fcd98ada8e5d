"""The console entry's exit (flush, exit handlers, no teardown), the cyclic collector off only
for one-shot batch commands, and the JSON report written as the bytes pydantic-core makes."""
from __future__ import annotations

import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui import output
from tui.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "firewall_idle_reset.pcap"


def test_console_entry_is_run():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'rstsleuth = "tui.cli:run"' in text


def test_run_flushes_output_and_runs_exit_handlers():
    # stdout is a pipe (block-buffered): the report must be complete, the atexit handler run,
    # and the exit code the command's
    code = ("import atexit, sys\n"
            "atexit.register(lambda: sys.stderr.write('handler ran\\n'))\n"
            "sys.argv = ['rstsleuth', 'analyze', %r, '--format', 'json', '--fail-on-forged']\n"
            "from tui.cli import run\n"
            "run()\n" % str(EXAMPLE))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # the example's reset is forged
    report = json.loads(proc.stdout)
    assert report["schema"] == "rstsleuth.report/1" and report["resets"]
    assert b"handler ran" in proc.stderr


def test_run_survives_a_closed_pipe():
    proc = subprocess.run(f"{sys.executable} -m tui.cli analyze {EXAMPLE} --format json | head -c 10",
                          shell=True, cwd=ROOT, capture_output=True, timeout=120)
    assert proc.stdout == b'{\n  "schem'
    assert b"Traceback" not in proc.stderr and b"BrokenPipe" not in proc.stderr


@pytest.mark.parametrize("command, enabled", [("facts", False), ("kb", True)])
def test_only_batch_commands_run_without_cyclic_gc(command, enabled):
    argv = ["rstsleuth", "facts", str(EXAMPLE)] if command == "facts" else \
        ["rstsleuth", "kb", "validate"]
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: sys.stderr.write('gc=%s' % gc.isenabled()))\n"
            f"sys.argv = {argv!r}\n"
            "from tui.cli import run\n"
            "run()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"gc={enabled}".encode() in proc.stderr


def test_in_process_main_leaves_the_collector_alone(capsys):
    assert gc.isenabled()
    assert main(["facts", str(EXAMPLE)]) == 0
    assert gc.isenabled()


def test_json_bytes_equal_the_pydantic_text():
    from engine.analysis import analyze
    from tui.render import render, render_json
    report = analyze(str(EXAMPLE))
    data = render_json(report)
    assert data == (report.model_dump_json(by_alias=True, indent=2) + "\n").encode("utf-8")
    assert render(report, "json") == data.decode("utf-8")


def test_write_output_bytes(tmp_path, monkeypatch, capsysbinary):
    target = tmp_path / "r.json"
    output.write_output("{\"a\": \"中\"}\n".encode("utf-8"), str(target))
    assert target.read_bytes() == "{\"a\": \"中\"}\n".encode("utf-8")
    output.write_output(b"{}\n", None)
    assert capsysbinary.readouterr().out == b"{}\n"
    text_only = io.StringIO()  # a stream without a byte buffer still gets the text
    monkeypatch.setattr(sys, "stdout", text_only)
    output.write_output("中\n".encode("utf-8"), None)
    assert text_only.getvalue() == "中\n"


def test_write_output_chunks(tmp_path, capsysbinary):
    """A list of chunks (a big JSON report's bytes and views of them) is written in order,
    to a file and to standard output, without being joined first."""
    blob = bytes(range(256)) * 4000
    chunks = [b"[", memoryview(blob)[10:70_000], b"", memoryview(blob)[5:6], blob, b"]\n"]
    want = b"".join(chunks)
    target = tmp_path / "r.json"
    output.write_output(chunks, str(target))
    assert target.read_bytes() == want
    output.write_output(chunks, None)  # capsysbinary's buffer has no descriptor: joined
    assert capsysbinary.readouterr().out == want
    code = ("import sys\nfrom tui import output\nblob = bytes(range(256)) * 4000\n"
            "output.write_output([b'[', memoryview(blob)[10:70_000], b'', memoryview(blob)[5:6],"
            " blob, b']\\n'], None)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == want, proc.stderr


@pytest.mark.parametrize("blocking", [True, False])
def test_write_all_through_a_small_pipe(blocking):
    """os.writev writes part of what it is given into a full pipe; a non-blocking one says
    EAGAIN: every byte still arrives once, in order."""
    import os
    import threading
    import time
    from engine.workers import write_all
    chunks = [bytes([i % 251]) * (1 + i * 37 % 5000) for i in range(3000)]
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, blocking)
    got = bytearray()

    def reader():
        while True:
            time.sleep(0.0005)
            data = os.read(read_end, 16384)
            if not data:
                return
            got.extend(data)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        write_all(write_end, chunks)
    finally:
        os.close(write_end)
        thread.join()
        os.close(read_end)
    assert bytes(got) == b"".join(chunks)
