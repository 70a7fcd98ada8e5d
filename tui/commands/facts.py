"""rstsleuth facts CAPTURE: the extracted facts as JSON lines, for KB authors and debugging.

One Connection or RstEvent per line (each connection followed by its RSTs), then a final
``{"kind": "capture", ...}`` line with the CaptureInfo. Warnings go to stderr, one line each.
"""
from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("facts", help="print the facts extracted from a capture as JSON lines",
                       description="Read a capture and print one JSON object per line: each "
                                   "connection (kind 'connection') and each RST packet (kind "
                                   "'rst', the fields KB conditions name), then a final line "
                                   "of kind 'capture' describing the file as read.")
    p.add_argument("capture", help="pcap, pcapng or Windows .etl capture")
    p.add_argument("--connections", action=argparse.BooleanOptionalAction,
                   default=True, help="also print connection lines (default: yes)")
    p.set_defaults(func=run, batch=True)


def run(args) -> int:
    from facts.extract import iter_facts

    stream = iter_facts(args.capture, connections=args.connections)
    out = sys.stdout
    write = out.write
    batch: list[str] = []
    for fact in stream:
        batch.append(fact.model_dump_json())
        if len(batch) >= 512:
            write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        write("\n".join(batch) + "\n")
    info = stream.capture
    capture_line = info.model_dump_json()
    write('{"kind":"capture",' + capture_line[1:] + "\n")
    out.flush()
    for warning in info.warnings:
        print(f"rstsleuth: warning: {info.path}: {warning}", file=sys.stderr)
    return 0
