"""``netstat -ano`` (Windows, any locale) and ``netstat -tan[p]`` (Linux) socket tables.

Windows localises the title and the column header but never the state names, so rows are
recognised by their shape, which also makes ``netstat -ano | findstr :443`` fragments (no
header at all) work. Linux states are mapped onto the Windows spelling so that one set of
helpers serves both.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Literal, Optional

from pydantic import Field

from ._util import PastedModel, fail, lines_of

EXPECTED = "'netstat -ano' rows ('TCP    local:port    remote:port    STATE    PID')"

WINDOWS_STATES = {"CLOSED", "LISTENING", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1",
                  "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT", "DELETE_TCB",
                  "BOUND"}
_LINUX_STATE = {"LISTEN": "LISTENING", "SYN_RECV": "SYN_RECEIVED", "FIN_WAIT1": "FIN_WAIT_1",
                "FIN_WAIT2": "FIN_WAIT_2", "CLOSE": "CLOSED", "UNKNOWN": "CLOSED"}
_WIN_ROW = re.compile(r"^\s*(?P<proto>TCP|UDP)\s+(?P<local>\S+)\s+(?P<remote>\S+)"
                      r"(?:\s+(?P<state>[A-Z_12]+))?\s+(?P<pid>\d+)\s*$")
_LINUX_ROW = re.compile(r"^\s*(?P<proto>tcp6?|udp6?)\s+\d+\s+\d+\s+(?P<local>\S+)\s+"
                        r"(?P<remote>\S+)(?:\s+(?P<state>[A-Z_12]+))?(?:\s+(?P<pid>\d+|-)\S*.*)?$")
# Windows' default dynamic port range since Vista (netsh int ipv4 show dynamicport tcp).
EPHEMERAL_RANGE_WINDOWS = (49152, 65535)


class NetstatEntry(PastedModel):
    proto: Literal["TCP", "UDP"]
    ip_version: Literal[4, 6]
    local_ip: str
    local_port: int
    remote_ip: Optional[str] = Field(None, description="None for UDP '*:*'")
    remote_port: Optional[int] = None
    state: Optional[str] = Field(None, description="Windows spelling; None for UDP")
    pid: Optional[int] = None


class Netstat(PastedModel):
    source: Literal["windows", "linux"]
    entries: list[NetstatEntry] = Field(default_factory=list)

    def listening(self, port: int) -> list[NetstatEntry]:
        """TCP sockets listening on ``port`` (any address)."""
        return [e for e in self.entries
                if e.proto == "TCP" and e.state == "LISTENING" and e.local_port == port]

    def established(self, port: int) -> list[NetstatEntry]:
        """Established TCP connections with ``port`` on either end."""
        return [e for e in self.entries if e.proto == "TCP" and e.state == "ESTABLISHED"
                and port in (e.local_port, e.remote_port)]

    def count_by_state(self, port: Optional[int] = None) -> dict[str, int]:
        """TCP connections per state, optionally only those with ``port`` on either end."""
        return dict(Counter(e.state for e in self.entries if e.proto == "TCP" and e.state and
                            (port is None or port in (e.local_port, e.remote_port))))

    def ephemeral_ports_in_use(self, remote: str, remote_port: Optional[int] = None) -> int:
        """Distinct local ports tied up in connections to ``remote`` (``ip`` or ``ip:port``).

        Every state but LISTENING counts: TIME_WAIT and CLOSE_WAIT sockets still hold their
        local port, which is how a client runs out of ports towards one server.
        """
        ip, port = _split_remote(remote)
        port = remote_port if remote_port is not None else port
        return len({(e.local_ip, e.local_port) for e in self.entries
                    if e.proto == "TCP" and e.state not in (None, "LISTENING")
                    and e.remote_ip == ip and (port is None or e.remote_port == port)})

    def ephemeral_fraction_in_use(self, remote: str, remote_port: Optional[int] = None,
                                  port_range: tuple[int, int] = EPHEMERAL_RANGE_WINDOWS) -> float:
        """Share of the dynamic port range held towards ``remote``; near 1.0 means new
        connections to it fail (port exhaustion)."""
        low, high = port_range
        ip, port = _split_remote(remote)
        port = remote_port if remote_port is not None else port
        used = {e.local_port for e in self.entries
                if e.proto == "TCP" and e.state not in (None, "LISTENING") and e.remote_ip == ip
                and (port is None or e.remote_port == port) and low <= e.local_port <= high}
        return len(used) / (high - low + 1)


def _canonical(addr: str) -> str:
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return addr


def _split_remote(remote: str) -> tuple[str, Optional[int]]:
    remote = remote.strip()
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", remote)
    if m:
        return _canonical(m.group(1)), int(m.group(2)) if m.group(2) else None
    if remote.count(":") == 1:
        host, port = remote.split(":")
        return _canonical(host), int(port)
    return _canonical(remote), None


def _endpoint(text: str) -> tuple[Optional[str], Optional[int]]:
    """'1.2.3.4:80', '[::1]:80', ':::80' (Linux), '*:*' / '0.0.0.0:*' -> (ip, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    host = None if host in ("*", "") else _canonical(host)
    return host, (int(port) if port.isdigit() else None)


def _entry(proto: str, local: str, remote: str, state: Optional[str], pid: Optional[str]):
    lip, lport = _endpoint(local)
    rip, rport = _endpoint(remote)
    if lip is None or lport is None:
        return None
    version = 6 if ":" in lip else 4
    return NetstatEntry(proto=proto, ip_version=version, local_ip=lip, local_port=lport,
                        remote_ip=rip, remote_port=rport, state=state,
                        pid=int(pid) if pid and pid.isdigit() else None)


def parse_netstat(text: str) -> Netstat:
    """Parse pasted netstat rows; raise UserError when there are none."""
    entries: list[NetstatEntry] = []
    source: Optional[str] = None
    for line in lines_of(text):
        m = _WIN_ROW.match(line)
        if m and (m.group("state") is None or m.group("state") in WINDOWS_STATES):
            e = _entry(m.group("proto"), m.group("local"), m.group("remote"), m.group("state"),
                       m.group("pid"))
            source = source or "windows"
        else:
            m = _LINUX_ROW.match(line)
            if not m:
                continue
            state = m.group("state")
            state = _LINUX_STATE.get(state, state) if state else None
            e = _entry(m.group("proto")[:3].upper(), m.group("local"), m.group("remote"), state,
                       m.group("pid"))
            source = source or "linux"
        if e is not None:
            entries.append(e)
    if not entries:
        raise fail("netstat", EXPECTED)
    return Netstat(source=source, entries=entries)


def looks_like(text: str) -> bool:
    return any(_WIN_ROW.match(line) or _LINUX_ROW.match(line) for line in lines_of(text))
