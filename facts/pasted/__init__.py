"""Facts from pasted command output, for engineers who have no capture.

``PARSERS`` maps a command name to its parser; ``parse(name, text)`` runs one; ``detect(text)``
says which command produced a paste. Every parser raises :class:`facts.errors.UserError` with a
one-line message naming itself when the text is not that command's output.
"""
from __future__ import annotations

from typing import Callable, Optional

from pydantic import BaseModel

from facts.errors import UserError

from . import firewall_log, netsh, netstat, ping, registry, tracert

PARSERS: dict[str, Callable[[str], BaseModel]] = {
    "tracert": tracert.parse_tracert,
    "reg_query": registry.parse_reg_query,
    "netsh_tcp_global": netsh.parse_netsh_tcp_global,
    "netstat": netstat.parse_netstat,
    "ping_mtu": ping.parse_ping,
    "firewall_log": firewall_log.parse_firewall_log,
}

# Most distinctive signature first: a tracert or ping header, the netsh title and reg.exe's key
# lines are unambiguous; netstat rows are recognised by shape only, so they come last.
_DETECTORS: list[tuple[str, Callable[[str], bool]]] = [
    ("tracert", tracert.looks_like),
    ("ping_mtu", ping.looks_like),
    ("netsh_tcp_global", netsh.looks_like),
    ("firewall_log", firewall_log.looks_like),
    ("reg_query", registry.looks_like),
    ("netstat", netstat.looks_like),
]


def parse(name: str, text: str) -> BaseModel:
    """Run the parser called ``name`` over ``text``."""
    try:
        parser = PARSERS[name]
    except KeyError:
        raise UserError(f"unknown pasted-output kind {name!r}; expected one of "
                        f"{', '.join(PARSERS)}") from None
    return parser(text)


def detect_all(text: str) -> list[str]:
    """Every parser whose signature appears in ``text`` (a paste may hold several outputs)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [name for name, looks in _DETECTORS if looks(text)]


def detect(text: str) -> Optional[str]:
    """The command that most likely produced ``text``, or None when nothing fits."""
    for name in detect_all(text):
        try:
            PARSERS[name](text)
        except UserError:
            continue  # the signature matched but the body did not parse; try the next
        return name
    return None


__all__ = ["PARSERS", "parse", "detect", "detect_all"]
