"""Windows ``tracert`` and Linux ``traceroute`` / ``traceroute6`` output (en and zh-CN).

The analyzer names the device that forged a RST from its tracert hop (TTL decrements + 1), so
the one thing this parser must get right is the hop number -> address mapping, including hops
that never answered (``* * *``) and Linux hops where different probes came back from
different routers (load-balanced paths).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

from pydantic import Field

from facts.errors import UserError

from ._util import PastedModel, fail, lines_of

EXPECTED = "tracert/traceroute output (a 'Tracing route to' / 'traceroute to' header and hop lines)"

_WIN_HEADER = re.compile(
    r"(?:Tracing route to|通过最多\s*\d+\s*个跃点跟踪\s*(?:到)?|^\s*到)\s*"
    r"(?P<target>[^\s\[]+)(?:\s*\[(?P<addr>[^\]]+)\])?", re.IGNORECASE)
_WIN_MAXHOPS = re.compile(r"(?:maximum of|通过最多)\s*(\d+)")
_LINUX_HEADER = re.compile(
    r"traceroute6?\s+to\s+(?P<target>\S+)\s+\((?P<addr>[^)]+)\),\s*(?P<max>\d+)\s+hops max",
    re.IGNORECASE)
# Windows probe column: "<1 ms", "12 ms", "<1 毫秒", "*".
_WIN_PROBE = re.compile(r"(<?\d+)\s*(?:ms|毫秒)|\*")
_WIN_HOP = re.compile(r"^\s*(\d{1,3})\s+(.*)$")
_TIMEOUT_TEXT = ("Request timed out", "请求超时")
_UNRESOLVED = re.compile(r"Unable to resolve target system name[^\n]*|无法解析目标系统名称[^\n]*|"
                         r"traceroute6?: unknown host[^\n]*|^\S+: Name or service not known|"
                         r"^\S+: Temporary failure in name resolution", re.M)
_REPORTS = re.compile(r"(?:reports|报告)\s*[:：]\s*(.*)$", re.IGNORECASE)
_NAME_ADDR_WIN = re.compile(r"^(?P<name>\S+)\s+\[(?P<addr>[^\]]+)\]$")
# Linux token stream: "name (addr)", "addr", "1.23 ms", "*", "!H".
_LINUX_TOKEN = re.compile(
    r"(?P<rtt>\d+(?:\.\d+)?)\s*ms"
    r"|(?P<star>\*)"
    r"|(?P<ann>![A-Za-z]?\d*|!<\d+>)"
    r"|(?P<host>[^\s()]+)(?:\s+\((?P<paren>[^)]+)\))?")


class Hop(PastedModel):
    """One tracert hop: the router that answered at this TTL (None when no probe answered)."""

    number: int
    address: Optional[str] = None
    name: Optional[str] = None
    rtts_ms: list[Optional[float]] = Field(default_factory=list,
                                           description="Per probe; None for '*'. '<1 ms' -> 0.5")
    addresses: list[str] = Field(default_factory=list, description="Every address that answered "
                                 "at this hop (Linux shows several when paths are balanced)")
    names: dict[str, str] = Field(default_factory=dict, description="address -> reverse name")
    annotations: list[str] = Field(default_factory=list, description="'!H', '!X', ... or a "
                                   "Windows 'reports: ...' message")
    timed_out: bool = False

    @property
    def label(self) -> str:
        """'name [addr]', 'addr', or '*' for a hop that never answered."""
        if self.address is None:
            return self.name or "*"
        return f"{self.name} [{self.address}]" if self.name else self.address


class Trace(PastedModel):
    """A whole trace: target and hops in order."""

    tool: Literal["tracert", "traceroute"]
    target_name: Optional[str] = None
    target_ip: Optional[str] = None
    ip_version: Optional[Literal[4, 6]] = None
    max_hops: Optional[int] = None
    hops: list[Hop] = Field(default_factory=list)
    complete: bool = Field(False, description="Windows printed 'Trace complete.' / '跟踪完成。'")
    reached_target: bool = False

    def hop(self, n: int) -> Optional[Hop]:
        """Hop number ``n`` (1-based, tracert numbering), or None when the trace has no such hop."""
        for hop in self.hops:
            if hop.number == n:
                return hop
        return None

    def hop_for_rst(self, rst) -> Optional[Hop]:
        """The hop that sent a RST, from its ``tracert_hop`` (TTL decrements + 1). Meaningful
        when this trace was run from the capture point towards the RST's claimed sender."""
        return self.hop(rst.tracert_hop)


def _ip(text: str) -> Optional[str]:
    """Canonical address text, or None when ``text`` is not an IP address (it is a name)."""
    try:
        return str(ipaddress.ip_address(text.split("%")[0]))
    except ValueError:
        return None


def _win_rtt(token: str) -> float:
    # '<1 ms' means below the timer resolution: 0.5 keeps ordering and never claims zero.
    return 0.5 if token.startswith("<") else float(token)


def _parse_windows_hop(number: int, rest: str) -> Hop:
    hop = Hop(number=number)
    pos = 0
    while len(hop.rtts_ms) < 3:
        m = _WIN_PROBE.match(rest, pos)
        if not m:
            break
        hop.rtts_ms.append(None if m.group(0) == "*" else _win_rtt(m.group(1)))
        pos = m.end()
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
    tail = rest[pos:].strip()
    reports = _REPORTS.search(tail)
    if reports:
        hop.annotations.append(reports.group(0).strip())
        tail = tail[:reports.start()].strip()
    if not tail or any(tail.startswith(t) for t in _TIMEOUT_TEXT):
        hop.timed_out = not reports
        return hop
    m = _NAME_ADDR_WIN.match(tail)
    name, addr = (m.group("name"), m.group("addr")) if m else (None, tail.split()[0])
    address = _ip(addr)
    if address is None:  # a bare name without brackets cannot happen with tracert; keep the text
        hop.name = addr
        return hop
    hop.address, hop.name = address, name
    hop.addresses = [address]
    if name:
        hop.names[address] = name
    return hop


def _parse_linux_hop(number: int, rest: str) -> Hop:
    hop = Hop(number=number)
    pos = 0
    while pos < len(rest):
        if rest[pos].isspace():
            pos += 1
            continue
        m = _LINUX_TOKEN.match(rest, pos)
        if not m:
            break
        pos = m.end()
        if m.group("rtt") is not None:
            hop.rtts_ms.append(float(m.group("rtt")))
        elif m.group("star"):
            hop.rtts_ms.append(None)
        elif m.group("ann"):
            hop.annotations.append(m.group("ann"))
        else:
            host, paren = m.group("host"), m.group("paren")
            address = _ip(paren) if paren else _ip(host)
            if address is None:
                continue
            if address not in hop.addresses:
                hop.addresses.append(address)
            if paren and host != paren and _ip(host) != address:
                hop.names[address] = host
    if hop.addresses:
        hop.address = hop.addresses[0]
        hop.name = hop.names.get(hop.address)
    hop.timed_out = not hop.addresses and all(r is None for r in hop.rtts_ms)
    return hop


def _finish(trace: Trace) -> Trace:
    if trace.target_ip is None and trace.target_name and _ip(trace.target_name):
        trace.target_ip = _ip(trace.target_name)
    if trace.target_ip:
        trace.ip_version = ipaddress.ip_address(trace.target_ip).version
        trace.reached_target = any(trace.target_ip in h.addresses for h in trace.hops)
    return trace


def parse_tracert(text: str) -> Trace:
    """Parse pasted tracert/traceroute output; raise UserError when it is neither."""
    lines = lines_of(text)
    trace: Optional[Trace] = None
    for i, line in enumerate(lines):
        m = _LINUX_HEADER.search(line)
        if m:
            trace = Trace(tool="traceroute", target_name=m.group("target"),
                          target_ip=_ip(m.group("addr")), max_hops=int(m.group("max")))
            body = lines[i + 1:]
            break
        if "Tracing route to" in line or "个跃点跟踪" in line:
            # zh-CN splits the header: "通过最多 30 个跃点跟踪" / "到 name [addr] 的路由:".
            header = line if re.search(r"(route to|到)\s*\S", line) else \
                f"{line} {lines[i + 1] if i + 1 < len(lines) else ''}"
            hm = _WIN_HEADER.search(header)
            mx = _WIN_MAXHOPS.search(header + " " + (lines[i + 1] if i + 1 < len(lines) else ""))
            trace = Trace(tool="tracert", max_hops=int(mx.group(1)) if mx else None)
            if hm:
                trace.target_name = hm.group("target")
                trace.target_ip = _ip(hm.group("addr")) if hm.group("addr") else None
            body = lines[i + 1:]
            break
    if trace is None:
        unresolved = _UNRESOLVED.search(text)
        if unresolved:
            raise UserError(f"pasted tracert: the trace never started, the target name did not "
                            f"resolve ({unresolved.group(0).strip()})")
        raise fail("tracert", EXPECTED)
    for line in body:
        if trace.tool == "tracert" and re.match(r"\s*(Trace complete|跟踪完成)", line):
            trace.complete = True
            continue
        m = _WIN_HOP.match(line)
        if not m:
            continue
        number, rest = int(m.group(1)), m.group(2)
        hop = _parse_windows_hop(number, rest) if trace.tool == "tracert" else \
            _parse_linux_hop(number, rest)
        if not hop.rtts_ms and not hop.addresses and not hop.timed_out and not hop.annotations:
            continue  # e.g. "over a maximum of 30 hops:" never matches, but stray numbers might
        trace.hops.append(hop)
    if not trace.hops:
        raise fail("tracert", EXPECTED + "; the header was found but no hop lines")
    return _finish(trace)


def looks_like(text: str) -> bool:
    return bool(_LINUX_HEADER.search(text)) or "Tracing route to" in text or "个跃点跟踪" in text
