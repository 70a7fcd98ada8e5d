"""Command line shared by ``python -m examples.lab`` and ``rstsleuth lab``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", metavar="{list,run,check}")
    sub.required = True
    listing = sub.add_parser("list", help="List the lab scenarios")
    listing.set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="Run one scenario (root): writes client.pcap, server.pcap "
                         "and expected.yaml into --out")
    run.add_argument("scenario", help="Scenario name (see 'list'), or 'all'")
    run.add_argument("--out", required=True, type=Path,
                     help="Output folder (with 'all': one sub-folder per scenario)")
    run.add_argument("--family", type=int, choices=(4, 6),
                     help="Force IPv4 or IPv6 (default: the scenario's own)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="Analyze lab output with rstsleuth and compare with "
                           "expected.yaml (exit 1 when an origin or tracert hop is wrong)")
    check.add_argument("folders", nargs="+", type=Path,
                       help="Scenario folders, or folders holding them (e.g. examples/lab_captures)")
    check.add_argument("--strict", action="store_true",
                       help="Also fail on a wrong timing pattern or sub-type")
    check.set_defaults(func=cmd_check)


def cmd_list(args) -> int:
    from . import SCENARIOS
    for scenario in SCENARIOS.values():
        print(f"{scenario.name:22} IPv{scenario.family}  {scenario.subtype:36} {scenario.title}")
    return 0


def cmd_run(args) -> int:
    from . import SCENARIOS, LabError, lab_unavailable_reason, run
    from facts.errors import UserError
    from .netns import install_signal_cleanup
    if args.scenario != "all" and args.scenario not in SCENARIOS:
        raise UserError(f"unknown lab scenario '{args.scenario}' (try: {', '.join(SCENARIOS)}, all)")
    reason = lab_unavailable_reason()
    if reason:
        raise LabError(reason)
    install_signal_cleanup()
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    for name in names:
        out = args.out / name if args.scenario == "all" else args.out
        started = time.monotonic()
        expected = run(name, out, args.family)
        truth = ("survives, no RST" if expected.survives
                 else "; ".join(f"{r.sent_by} sent RST to {r.capture} (TTL {r.ttl}, tracert hop "
                                f"{r.tracert_hop})" for r in expected.rsts))
        errors = ",".join(expected.client_errors) or "none"
        print(f"{name} [{time.monotonic() - started:.1f}s] -> {out}")
        print(f"  truth:    {truth}; client program errors: {errors}")
        for side in ("client", "server"):
            print(f"  captured: {side}.pcap: {captured_rsts(out / f'{side}.pcap')}")
    return 0


def captured_rsts(path: Path) -> str:
    """What the capture itself shows, read back with the fact extractor."""
    from facts.extract import extract
    facts = extract(path)
    if not facts.rsts:
        return f"{facts.capture.tcp_packets} TCP packets, no RST"
    shown = [f"{r.flags} claimed by {r.claimed_sender} TTL {r.ttl} (initial {r.initial_ttl}, "
             f"hop {r.tracert_hop})" for r in facts.rsts]
    unique = list(dict.fromkeys(shown))
    counted = [f"{shown.count(s)}x {s}" if shown.count(s) > 1 else s for s in unique]
    return f"{facts.capture.tcp_packets} TCP packets; " + "; ".join(counted)


def cmd_check(args) -> int:
    from .check import run_check
    return run_check(args.folders, strict=args.strict)


def main(argv: list[str] | None = None) -> int:
    from facts.errors import UserError
    parser = argparse.ArgumentParser(prog="python -m examples.lab",
                                     description="Reproduce middle-device resets in network "
                                                 "namespaces and capture both ends.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lab: interrupted (namespaces removed)", file=sys.stderr)
        return 130
