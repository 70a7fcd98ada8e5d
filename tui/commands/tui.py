"""rstsleuth tui [CAPTURE [--peer CAPTURE]]: the interactive app (without a capture: the
guided interview)."""
from __future__ import annotations

from facts.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("tui", help="interactive app: resets, ladder diagram, reasoning, "
                       "interview, knowledge base",
                       description="Browse every reset of one or two captures (sortable, "
                                   "filterable), its ladder diagram, evidence and fixes, the "
                                   "reasoning (HOW, WHY-NOT, what-if), the knowledge base (with "
                                   "live reload). Without a capture it starts the guided interview.")
    p.add_argument("capture", nargs="?", help="pcap, pcapng or Windows .etl capture")
    p.add_argument("--peer", metavar="CAPTURE", help="capture taken at the other end, same time")
    p.add_argument("--tracert", metavar="FILE", help="tracert/traceroute output towards the peer")
    p.add_argument("--lang", choices=("en", "zh"), default="en")
    p.add_argument("--kb", metavar="DIR", help="knowledge base directory (default: $RSTSLEUTH_KB "
                   "or the shipped one)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not reload the KB when its files change (reload with Ctrl+R)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tui.app import build_app
    from tui.progress import ProgressBar

    if args.peer and not args.capture:
        raise UserError("--peer needs a capture (the one from this end)")
    bar = ProgressBar("reading") if args.capture else None
    try:
        app = build_app(args.capture, args.peer, tracert=args.tracert, kb_path=args.kb,
                        lang=args.lang, progress=bar, watch_kb=not args.no_watch)
    finally:
        if bar is not None:
            bar.close()
    app.run()
    return 0
