"""``ping`` with the don't-fragment bit (Windows ``ping -f -l SIZE``, Linux ``ping -M do -s SIZE``)
as path MTU evidence: which sizes passed, which needed fragmentation, what MTU was reported.

Several runs pasted together are one MTU search; the path MTU is the largest size that passed
plus the IP+ICMP headers (28 bytes on IPv4, 48 on IPv6), known once a larger size failed.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Literal, Optional

from pydantic import Field

from facts.errors import UserError

from ._util import PastedModel, fail, lines_of

EXPECTED = ("ping output ('Pinging ... with N bytes of data:', '正在 Ping ... 具有 N 字节的数据:' "
            "or 'PING host (addr) N(M) bytes of data.')")

_HEADERS = [
    ("windows", re.compile(r"Pinging\s+(?P<target>[^\s\[]+)(?:\s+\[(?P<addr>[^\]]+)\])?\s+with\s+"
                           r"(?P<size>\d+)\s+bytes of data", re.I)),
    ("windows", re.compile(r"正在\s*Ping\s+(?P<target>[^\s\[]+)(?:\s+\[(?P<addr>[^\]]+)\])?\s+具有\s*"
                           r"(?P<size>\d+)\s*字节的数据")),
    ("linux", re.compile(r"^PING\s+(?P<target>[^\s(]+)\s*\((?P<addr>[^)]+)\)(?:\s+from\s+\S+\s+\S+:)?"
                         r"\s+(?P<size>\d+)(?:\((?P<total>\d+)\)\s+bytes of data|\s+data bytes)")),
]
# A command line: optional prompt ("C:\\>", "PS C:\\x>", "$", "user@host:~$"), then ping.
_COMMAND = re.compile(r"^\s*(?:(?:PS\s+)?[A-Za-z]:\\[^>]*>|\S*[$#])?\s*(?:sudo\s+)?"
                      r"ping(?:\.exe|6)?\s+(?!statistics)(?P<args>.+)$", re.I)
_WIN_REPLY = re.compile(r"(?:Reply from\s+(?P<a1>\S+?):|来自\s+(?P<a2>\S+)\s+的回复\s*[:：])\s*"
                        r"(?:bytes|字节)=(?P<bytes>\d+)\s+(?:time|时间)(?P<op>[=<])(?P<ms>\d+)\s*ms",
                        re.I)
_WIN_FRAG = re.compile(r"(?:(?:Reply from\s+(?P<a1>\S+?):|来自\s+(?P<a2>\S+)\s+的回复\s*[:：])\s*)?"
                       r"(?:Packet needs to be fragmented but DF set|需要拆分数据包但是设置\s*DF)", re.I)
_LINUX_REPLY = re.compile(r"^(?P<bytes>\d+)\s+bytes from\s+.*?icmp_seq=\d+.*?time=(?P<ms>[\d.]+)\s*ms")
_LINUX_FRAG = re.compile(r"^From\s+(?P<addr>\S+)(?:\s+\([^)]*\))?.*?(?:Frag needed and DF set\s*"
                         r"\(mtu\s*=\s*(?P<mtu>\d+)\)|Packet too big:\s*mtu\s*=\s*(?P<mtu6>\d+))", re.I)
_LOCAL_TOO_LONG = re.compile(r"message too long(?:,\s*mtu\s*[=:]\s*(?P<mtu>\d+))?", re.I)
_UNRESOLVED = re.compile(r"Ping request could not find host[^\n]*|Ping 请求找不到主机[^\n]*|"
                         r"^ping: [^\n]*(?:Name or service not known|Temporary failure in name "
                         r"resolution|unknown host)[^\n]*", re.M)
_TIMEOUT = re.compile(r"^\s*(?:Request timed out|请求超时)")
_UNREACHABLE = re.compile(r"Destination (?:host|net) unreachable|无法访问目标", re.I)


class PingAttempt(PastedModel):
    """One ping run at one payload size."""

    tool: Literal["windows", "linux"]
    target: str
    target_ip: Optional[str] = None
    size: int = Field(description="ICMP payload bytes (-l / -s)")
    total_size: int = Field(description="IP packet size: payload + IP and ICMP headers")
    df_set: Optional[bool] = Field(None, description="From the pasted command line (-f / -M do); "
                                   "None when no command line was pasted")
    replies: int = 0
    frag_needed: int = 0
    timeouts: int = 0
    unreachable: int = 0
    mtu_reported: Optional[int] = None
    reported_by: Optional[str] = Field(None, description="Router that sent the ICMP "
                                       "fragmentation-needed, when shown")
    rtts_ms: list[float] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.replies > 0 and self.frag_needed == 0

    @property
    def failed(self) -> bool:
        """Nothing came back at this size (fragmentation needed, or silently dropped)."""
        return self.replies == 0 and (self.frag_needed > 0 or self.timeouts > 0)


class PathMtuFacts(PastedModel):
    attempts: list[PingAttempt] = Field(default_factory=list)
    size_tried: int = Field(description="Largest payload size tried")
    sizes_tried: list[int] = Field(default_factory=list)
    fragmentation_needed: bool = Field(description="Some size drew 'needs to be fragmented' / "
                                       "'Frag needed' / 'message too long'")
    mtu_reported: Optional[int] = Field(None, description="MTU named by the ICMP error or the "
                                        "local stack (smallest seen)")
    path_mtu: Optional[int] = Field(None, description="Known path MTU: the reported MTU, else the "
                                    "largest passing size + headers once a larger size failed")
    path_mtu_exact: bool = Field(False, description="Reported, or a size one byte larger failed")
    path_mtu_at_least: Optional[int] = Field(None, description="Largest size that passed, "
                                             "with headers")
    blackhole_suspected: bool = Field(False, description="A larger DF size timed out with no "
                                      "ICMP error while a smaller one passed (PMTUD black hole)")


def _overhead(addr: Optional[str]) -> int:
    try:
        return 48 if addr and ipaddress.ip_address(addr.split("%")[0]).version == 6 else 28
    except ValueError:
        return 28


def _df_from_command(args: str) -> bool:
    return bool(re.search(r"(?:^|\s)[-/]f(?:\s|$)|-M\s*(?:do|probe)\b", args))


def _start(tool: str, m: re.Match, command: Optional[str]) -> PingAttempt:
    addr = m.group("addr")
    try:
        target_ip = str(ipaddress.ip_address((addr or m.group("target")).split("%")[0]))
    except ValueError:
        target_ip = None
    size = int(m.group("size"))
    total = m.groupdict().get("total")
    total_size = int(total) if total else size + _overhead(target_ip)
    return PingAttempt(tool=tool, target=m.group("target"), target_ip=target_ip, size=size,
                       total_size=total_size,
                       df_set=_df_from_command(command) if command is not None else None)


def _record(att: PingAttempt, line: str) -> None:
    if m := _WIN_FRAG.search(line):
        att.frag_needed += 1
        att.reported_by = att.reported_by or m.group("a1") or m.group("a2")
    elif m := _WIN_REPLY.search(line):
        att.replies += 1
        att.rtts_ms.append(0.5 if m.group("op") == "<" else float(m.group("ms")))
    elif m := _LINUX_REPLY.search(line):
        att.replies += 1
        att.rtts_ms.append(float(m.group("ms")))
    elif m := _LINUX_FRAG.search(line):
        att.frag_needed += 1
        att.reported_by = att.reported_by or m.group("addr")
        mtu = int(m.group("mtu") or m.group("mtu6"))
        att.mtu_reported = min(att.mtu_reported or mtu, mtu)
    elif m := _LOCAL_TOO_LONG.search(line):
        att.frag_needed += 1
        if m.group("mtu"):
            mtu = int(m.group("mtu"))
            att.mtu_reported = min(att.mtu_reported or mtu, mtu)
    elif _TIMEOUT.search(line):
        att.timeouts += 1
    elif _UNREACHABLE.search(line):
        att.unreachable += 1


def parse_ping(text: str) -> PathMtuFacts:
    """Parse one or more pasted DF pings; raise UserError when there is no ping header."""
    attempts: list[PingAttempt] = []
    command: Optional[str] = None
    current: Optional[PingAttempt] = None
    for line in lines_of(text):
        header = next(((tool, m) for tool, rx in _HEADERS if (m := rx.search(line))), None)
        if header:
            current = _start(header[0], header[1], command)
            attempts.append(current)
            command = None
            continue
        cm = _COMMAND.match(line) if "ping" in line.lower() else None
        if cm:
            command, current = cm.group("args"), None
            continue
        if current is not None:
            _record(current, line)
    if not attempts:
        unresolved = _UNRESOLVED.search(text)
        if unresolved:
            raise UserError(f"pasted ping_mtu: no packet was sent, the target name did not "
                            f"resolve ({unresolved.group(0).strip()})")
        raise fail("ping_mtu", EXPECTED)
    return _summarise(attempts)


def _summarise(attempts: list[PingAttempt]) -> PathMtuFacts:
    usable = [a for a in attempts if a.df_set is not False]  # without DF a reply proves nothing
    reported = [a.mtu_reported for a in attempts if a.mtu_reported]
    passed = [a.total_size for a in usable if a.passed]
    failed = [a.total_size for a in usable if a.failed]
    facts = PathMtuFacts(attempts=attempts, size_tried=max(a.size for a in attempts),
                         sizes_tried=[a.size for a in attempts],
                         fragmentation_needed=any(a.frag_needed for a in attempts),
                         mtu_reported=min(reported) if reported else None)
    if passed:
        best = max(passed)
        facts.path_mtu_at_least = best
        larger_failed = [f for f in failed if f > best]
        if larger_failed or best >= 1500:
            facts.path_mtu = best
            facts.path_mtu_exact = bool(larger_failed) and min(larger_failed) == best + 1
        facts.blackhole_suspected = any(a.failed and a.frag_needed == 0 and a.total_size > best
                                        for a in usable)
    if facts.mtu_reported is not None:
        facts.path_mtu, facts.path_mtu_exact = facts.mtu_reported, True
    return facts


def looks_like(text: str) -> bool:
    return any(rx.search(line) for line in lines_of(text) for _, rx in _HEADERS)
