"""The ``rstsleuth`` command line. Each sub-command lives in ``tui/commands/<name>.py`` and
exposes ``register(subparsers)``; the module's parser sets ``func(args) -> int``."""
from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import os
import pkgutil
import sys

from facts.errors import UserError

from . import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rstsleuth",
        description="Who really sent that TCP RST? Reads captures, reasons over a knowledge "
                    "base, names the middle device and the fix.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return _command(build_parser().parse_args(argv))


def _command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"rstsleuth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        # An engine failure is not the user's mistake, but still one line: the message names
        # the rule or the durable-rules call that failed. RSTSLEUTH_DEBUG=1 shows the
        # traceback. Only a command that loaded the engine can raise one, so the engine is not
        # imported at start-up just to name the exception class.
        host = sys.modules.get("engine.host")
        if host is None or not isinstance(exc, host.EngineError) or os.environ.get("RSTSLEUTH_DEBUG"):
            raise
        print(f"rstsleuth: internal error in the rules engine: {exc} "
              "(set RSTSLEUTH_DEBUG=1 for details)", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("rstsleuth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def run() -> None:
    """The console entry (``rstsleuth``, ``python -m tui.cli``). A batch command (analyze,
    facts, convert: ``batch`` in its parser's defaults) builds its objects once and keeps them
    to the end, so it runs without the cyclic collector, which would only traverse them again
    and again, and the process ends without the interpreter's teardown once the output is
    flushed and the exit handlers have run: a report on a large capture holds millions of
    objects, and freeing them at exit took 0.2 s of a 2.5 s analysis, for nothing (a batch
    command may leave its results on ``args.results`` so that they are not freed when it
    returns either). Other commands (the TUI, the interview, the lab) exit normally."""
    args = build_parser().parse_args()
    if not getattr(args, "batch", False):
        sys.exit(_command(args))
    gc.disable()
    code = _command(args)
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        pass
    sys.stderr.flush()
    atexit._run_exitfuncs()  # what a normal exit runs (logging's flush, temp files...)
    os._exit(code)


if __name__ == "__main__":
    run()
