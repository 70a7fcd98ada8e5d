"""rstsleuth convert INPUT OUTPUT.pcapng: any capture rstsleuth reads (Windows pktmon / netsh
trace .etl, pcap, pcapng) rewritten as pcapng for Wireshark/tshark, keeping link types (one
interface each), original lengths of truncated packets and the send/receive direction."""
from __future__ import annotations

import os
import sys


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a capture (.etl, pcap, pcapng) to pcapng",
                       description="Read a capture rstsleuth understands -- including Windows "
                                   "pktmon and 'netsh trace' .etl files -- and write it as "
                                   "pcapng: one interface per link type, packets with their "
                                   "original length and direction (epb_flags). pktmon's "
                                   "per-component copies of a packet become one packet.")
    p.add_argument("input", help="capture to read (.etl, pcap or pcapng)")
    p.add_argument("output", help="pcapng file to write")
    p.set_defaults(func=run, batch=True)


def _resolution(capture) -> int:
    """Timestamp unit for the output: ETL counts 100 ns ticks, pcap micro- or nanoseconds."""
    if capture.format == "etl":
        return 7
    if capture.format == "pcap" and not getattr(capture, "nanosecond", False):
        return 6
    return 9


def run(args) -> int:
    from facts.capture import open_capture
    from facts.capture.pcapng_writer import write_capture
    from facts.errors import UserError

    if os.path.exists(args.output) and os.path.exists(args.input) \
            and os.path.samefile(args.input, args.output):
        raise UserError(f"{args.output}: output would overwrite the input capture")
    capture = open_capture(args.input)
    count = write_capture(capture, args.output, _resolution(capture))
    kinds = ", ".join(str(lt) for lt in sorted(capture.link_types)) or "none"
    print(f"{args.output}: {count} packets written (link types {kinds}) from"
          f" {capture.format} {args.input}")
    drops = getattr(capture, "drops", None)
    if drops:
        print(f"{args.input}: {len(drops)} pktmon drop events (not packets; see"
              f" 'rstsleuth facts')", file=sys.stderr)
    for warning in capture.warnings:
        print(f"rstsleuth: warning: {args.input}: {warning}", file=sys.stderr)
    return 0
