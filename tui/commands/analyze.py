"""rstsleuth analyze CAPTURE [--peer CAPTURE]: verdicts for every reset."""
from __future__ import annotations

import argparse
import os
import sys


FORMATS = ("text", "json", "markdown")


def register(sub) -> None:
    p = sub.add_parser("analyze", help="who sent each RST in one or two captures, and the fix",
                       description="Analyse the capture from one end (and, with --peer, the other "
                                   "end's) and report, for every reset, who sent it, which device, "
                                   "how sure, why, and what to change.")
    p.add_argument("capture", help="pcap, pcapng or Windows .etl capture")
    p.add_argument("--peer", metavar="CAPTURE", help="capture taken at the other end, same time")
    p.add_argument("--tracert", metavar="FILE", help="tracert/traceroute output from the capture "
                   "host towards the peer: names the device at the RST's hop")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--kb", metavar="DIR", help="knowledge base directory (default: $RSTSLEUTH_KB "
                   "or the shipped one)")
    p.add_argument("--fail-on-forged", action="store_true",
                   help="exit 1 when any reset was sent by a middle device (for monitoring)")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--jobs", "-j", type=_positive, metavar="N",
                   help="build a big JSON report (over 1000 resets) with at most N processes "
                        "(default: one per usable CPU on Linux, else 1)")
    p.set_defaults(func=run, batch=True)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def run(args) -> int:
    from facts.prefetch import Prefetch
    from tui.progress import ProgressBar

    bar = ProgressBar("reading")
    try:
        # The captures are read while the engine loads (the compiled reader runs without
        # the GIL); a broken KB still fails first, without waiting for the read.
        reading = Prefetch([args.capture] + ([args.peer] if args.peer else []), progress=bar)
        from engine import Reasoner, load_kb
        from engine.analysis import analyze
        from engine.report_json import analyze_json
        from tui.output import write_output
        from tui.render import render

        kb = load_kb(args.kb)
        with Reasoner(kb) as reasoner:
            captures = reading.result()
            peer = captures[1] if args.peer else None
            if args.format == "json":  # bytes, as pydantic-core writes them
                done = analyze_json(captures[0], peer, kb=kb, reasoner=reasoner,
                                    tracert=args.tracert, lang=args.lang, progress=bar,
                                    workers=args.jobs)
                text, warnings, forged = done.chunks, done.warnings, done.forged
            else:
                done = analyze(captures[0], peer, tracert=args.tracert, kb=kb,
                               reasoner=reasoner, lang=args.lang, progress=bar)
                warnings = done.warnings
                forged = any(r.origin == "middle_device" for r in done.resets)
    finally:
        bar.close()
    if args.format != "json":
        to_tty = args.output is None and sys.stdout.isatty()
        color = args.color == "always" or (args.color == "auto" and to_tty
                                           and not os.environ.get("NO_COLOR"))
        text = render(done, args.format, args.lang, color=color and args.format == "text")
    write_output(text, args.output, "report")
    # left on args for the console entry's exit to drop with the process (tui.cli.run), not
    # to be freed one object at a time when this function returns (0.1 s on 5 000 resets)
    args.results = (done, captures)
    for warning in warnings:
        print(f"rstsleuth: warning: {warning}", file=sys.stderr)
    return 1 if args.fail_on_forged and forged else 0
