"""Terminal behaviour of analyze: colour only on a TTY (or --color always), a progress bar on
stderr only when stderr is a terminal."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

from tui.progress import ProgressBar

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "firewall_idle_reset.pcap")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal():
    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = ProgressBar("reading", stream=stream, min_interval=0)
        bar(50, 100)
        bar(100, 100)
    assert "[###############               ]  50.0%" in tty.getvalue()
    assert tty.getvalue().endswith("100.0%\n")
    assert pipe.getvalue() == ""


def _run(args, tty_out: bool, tty_err: bool):
    """Run the CLI with stdout/stderr on a pseudo-terminal or a pipe."""
    fds = {}
    for name, want in (("out", tty_out), ("err", tty_err)):
        fds[name] = pty.openpty() if want else os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=ROOT,
                            stdout=fds["out"][1], stderr=fds["err"][1], stdin=subprocess.DEVNULL,
                            env={**os.environ, "NO_COLOR": "", "TERM": "xterm"})
    for name in fds:
        os.close(fds[name][1])
    texts = {}
    for name in fds:
        chunks = []
        while True:
            try:
                data = os.read(fds[name][0], 65536)
            except OSError:  # a pty reports EIO once the child has closed it
                break
            if not data:
                break
            chunks.append(data)
        os.close(fds[name][0])
        texts[name] = b"".join(chunks).decode("utf-8", "replace")
    assert proc.wait(timeout=120) in (0, 1)
    return texts["out"], texts["err"]


def test_colour_and_progress_on_a_terminal():
    out, err = _run(["analyze", EXAMPLE], tty_out=True, tty_err=True)
    assert "\033[1;31m" in out          # the middle-device verdict in red
    assert "reading [" in err and "100.0%" in err


def test_no_colour_and_no_progress_in_pipes():
    out, err = _run(["analyze", EXAMPLE], tty_out=False, tty_err=False)
    assert "\033[" not in out and "MIDDLE DEVICE" in out
    assert "reading [" not in err


def test_colour_forced_or_refused():
    forced, _ = _run(["analyze", EXAMPLE, "--color", "always"], tty_out=False, tty_err=False)
    assert "\033[1;31m" in forced
    never, _ = _run(["analyze", EXAMPLE, "--color", "never"], tty_out=True, tty_err=False)
    assert "\033[" not in never
