"""Ladder diagram of the packets around a reset: client | middle device (its hop) | server.

Packets are read again from the capture, streaming: only the reset's connection (4-tuple),
from the connection's start to a little after the RST, and only the last ``before`` of them
plus ``after`` following packets are kept.
"""
from __future__ import annotations

import socket
from collections import deque
from dataclasses import dataclass
from typing import Optional

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from engine.report_model import ResetOut
from facts.capture import open_capture
from facts.decode import iter_packets
from facts.packet import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, TcpSegment

from ..screens.i18n import t

AFTER_WINDOW_S = 5.0
_FLAG_NAMES = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"),
               (URG, "URG"), (ECE, "ECE"), (CWR, "CWR"))


@dataclass(frozen=True)
class LadderPacket:
    frame: int
    time: float
    to_server: bool
    flags: str
    ttl: int
    length: int
    seq: int
    ack: int


def flag_text(bits: int) -> str:
    return "+".join(name for bit, name in _FLAG_NAMES if bits & bit) or "-"


def _packed(ip: str) -> bytes:
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    return socket.inet_pton(family, ip)


def packets_around(reset: ResetOut, before: int = 10, after: int = 3) -> list[LadderPacket]:
    """The connection's packets just before and after the reset, in capture order."""
    c = reset.connection
    client, server = _packed(c.client.ip), _packed(c.server.ip)
    cport, sport = c.client.port, c.server.port
    start, stop = c.start - 1e-6, reset.time + AFTER_WINDOW_S
    kept: deque[LadderPacket] = deque(maxlen=before + 1)
    following: list[LadderPacket] = []
    for seg in iter_packets(open_capture(reset.capture)):
        if type(seg) is not TcpSegment:
            continue
        if seg.src == client and seg.dst == server and seg.sport == cport and seg.dport == sport:
            to_server = True
        elif seg.src == server and seg.dst == client and seg.sport == sport and seg.dport == cport:
            to_server = False
        else:
            continue
        if seg.ts < start:
            continue
        if seg.ts > stop:
            break
        packet = LadderPacket(seg.frame, seg.ts, to_server, flag_text(seg.flags), seg.ttl,
                              seg.payload_len, seg.seq, seg.ack)
        if seg.frame <= reset.frame:
            kept.append(packet)
        else:
            following.append(packet)
            if len(following) >= after:
                break
    return list(kept) + following


def hop_label(reset: ResetOut, lang: str) -> str:
    s = reset.rst_source
    label = f"{t(lang, 'middle')} @ hop {s.tracert_hop}"
    if s.tracert_name or s.tracert_address:
        label += f" {s.tracert_name or ''} [{s.tracert_address or '?'}]".replace("  ", " ")
    return label


def render_ladder(reset: ResetOut, packets: list[LadderPacket], lang: str,
                  lane: int = 46) -> Text:
    """Rich text of the ladder. The reset itself is drawn from the device that sent it:
    from the middle-device column when the verdict is a middle device."""
    info_w = 42
    xc, xm, xs = 0, lane // 2, lane - 1
    out = Text()
    side = t(lang, reset.observed_at) if reset.observed_at in ("client", "server") else "?"
    out.append(t(lang, "ladder", side=side) + "\n", style="bold")
    head = f"{'frame':>6} {'Δt (s)':>10} {'TTL':>4} {'flags':<12} {'len':>5}"
    left, mid, right = t(lang, "client"), hop_label(reset, lang), t(lang, "server")
    labels = left
    labels += " " * max(1, xm - cell_len(mid) // 2 - cell_len(labels)) + mid
    labels += " " * max(1, xs - cell_len(right) + 1 - cell_len(labels)) + right
    out.append(head.ljust(info_w) + " " + labels + "\n", style="bold")
    out.append(" " * info_w + " " + _lane(lane, xc, xm, xs) + "\n", style="dim")
    if not packets:
        out.append(t(lang, "no_packets") + "\n", style="italic")
        return out
    forged = reset.origin == "middle_device"
    for p in packets:
        is_rst = p.frame == reset.frame
        info = f"{p.frame:>6} {p.time - reset.time:>+10.3f} {p.ttl:>4} {p.flags:<12} {p.length:>5}"
        cells = list(_lane(lane, xc, xm, xs))
        style = "red bold" if is_rst else ("yellow" if "RST" in p.flags else "")
        if is_rst and forged:
            # the device at the hop sent it towards the end that captured it
            src = xm
            dst = xc if reset.claimed_sender == "server" else xs
            note = "  " + t(lang, "forged", hop=reset.rst_source.tracert_hop)
        else:
            src, dst = (xc, xs) if p.to_server else (xs, xc)
            note = ""
        _arrow(cells, src, dst, "═" if is_rst else "─")
        out.append(info.ljust(info_w) + " ")
        out.append("".join(cells), style=style)
        out.append(note + "\n", style=style)
    return out


def _lane(lane: int, xc: int, xm: int, xs: int) -> str:
    cells = [" "] * lane
    cells[xc], cells[xm], cells[xs] = "│", "┆", "│"
    return "".join(cells)


def _arrow(cells: list[str], src: int, dst: int, line: str) -> None:
    lo, hi = sorted((src, dst))
    for x in range(lo + 1, hi):
        cells[x] = "┼" if cells[x] == "┆" else line
    cells[src] = "●" if src not in (0, len(cells) - 1) else cells[src]
    cells[dst + (1 if dst < src else -1)] = "◀" if dst < src else "▶"


class Ladder(Static):
    """Shows one reset's ladder; ``show(reset, lang)`` reads the packets once per reset."""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self._cache: dict[str, list[LadderPacket]] = {}
        self.error: Optional[str] = None

    def show(self, reset: ResetOut, lang: str) -> None:
        packets = self._cache.get(reset.id)
        if packets is None:
            try:
                packets = packets_around(reset)
                self.error = None
            except Exception as exc:  # a capture moved or cut since the analysis
                packets, self.error = [], f"{reset.capture}: {exc}"
            self._cache[reset.id] = packets
        text = render_ladder(reset, packets, lang)
        if self.error:
            text.append(self.error + "\n", style="red")
        self.update(text)
