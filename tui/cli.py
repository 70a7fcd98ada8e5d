"""The ``rstsleuth`` command line. Each sub-command lives in ``tui/commands/<name>.py`` and
exposes ``register(subparsers)``; the module's parser sets ``func(args) -> int``."""
from __future__ import annotations

import argparse
import importlib
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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"rstsleuth: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("rstsleuth: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
