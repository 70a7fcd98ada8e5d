"""Firewall session-teardown log lines: Cisco ASA/FTD 302014, Palo Alto TRAFFIC (syslog CSV) and
FortiGate traffic (key=value). Each becomes one :class:`FirewallLogEntry` with the 4-tuple, the
time, the session duration and the teardown reason, normalised so the KB can ask "did the
firewall time this session out?" whatever the vendor.
"""
from __future__ import annotations

import csv
import ipaddress
import re
from datetime import datetime, timezone
from typing import Literal, Optional

from pydantic import Field

from ._util import PastedModel, fail, lines_of
from .logtime import LogTime, best_time, parse_time, zone_offset

EXPECTED = ("firewall log lines (Cisco ASA '%ASA-6-302014: Teardown TCP connection', Palo Alto "
            "TRAFFIC CSV, or FortiGate 'date= time= ... srcip= ... action=')")

Reason = Literal["idle_timeout", "policy_deny", "threat", "tcp_rst", "fin", "other"]
Vendor = Literal["cisco_asa", "paloalto", "fortigate"]

_ASA = re.compile(
    r"%(?:ASA|FTD|FWSM|PIX)-\d-302014:\s*Teardown TCP connection\s+(?P<id>\d+)\s+for\s+"
    r"(?P<if1>[^:\s]+):(?P<ip1>\[?[0-9A-Fa-f:.]+?\]?)/(?P<p1>\d+)(?:\([^)]*\))?\s+to\s+"
    r"(?P<if2>[^:\s]+):(?P<ip2>\[?[0-9A-Fa-f:.]+?\]?)/(?P<p2>\d+)(?:\([^)]*\))?\s+"
    r"duration\s+(?P<dur>[\d:]+)\s+bytes\s+(?P<bytes>\d+)\s*(?P<reason>.*?)\s*$")
_KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_PAN_REASONS = {"aged-out": "idle_timeout", "policy-deny": "policy_deny", "threat": "threat",
                "tcp-rst-from-client": "tcp_rst", "tcp-rst-from-server": "tcp_rst",
                "tcp-fin": "fin"}
_FORTI_ACTIONS = {"timeout": "idle_timeout", "deny": "policy_deny", "server-rst": "tcp_rst",
                  "client-rst": "tcp_rst", "close": "fin", "block": "policy_deny"}


class FirewallLogEntry(PastedModel):
    line_no: int = Field(description="1-based line in the paste")
    vendor: Vendor
    time: Optional[float] = Field(None, description="Seconds since the epoch, UTC; the wall clock "
                                  "read as UTC when the line has no zone (see time_naive); None "
                                  "when the line has no year")
    time_naive: bool = Field(True, description="No zone on the line: 'time' may be local time")
    year_known: bool = False
    wall_clock: datetime = Field(description="Timestamp as printed (year 2000 when absent)")
    time_text: str = ""
    src: str
    sport: int
    dst: str
    dport: int
    src_zone: Optional[str] = Field(None, description="Interface or zone name of src")
    dst_zone: Optional[str] = None
    nat_src: Optional[str] = None
    nat_sport: Optional[int] = None
    nat_dst: Optional[str] = None
    nat_dport: Optional[int] = None
    duration_s: Optional[float] = None
    bytes: Optional[int] = None
    session_id: Optional[str] = None
    reason_raw: str
    reason: Reason
    reset_from: Optional[str] = Field(None, description="Who sent the RST the firewall saw: "
                                      "client/server (initiator/responder), inside/outside "
                                      "(ASA interface side) or firewall (ASA 'APPLIANCE')")

    @property
    def end_time(self) -> Optional[float]:
        return self.time

    @property
    def start_time(self) -> Optional[float]:
        if self.time is None or self.duration_s is None:
            return None
        return self.time - self.duration_s


class FirewallLog(PastedModel):
    entries: list[FirewallLogEntry] = Field(default_factory=list)
    skipped_lines: int = Field(0, description="Non-empty lines that were not teardown records")

    def by_reason(self, reason: str) -> list[FirewallLogEntry]:
        return [e for e in self.entries if e.reason == reason]


def _ip(text: str) -> Optional[str]:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def _duration(text: str) -> Optional[float]:
    parts = text.split(":")
    if not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return float(seconds)


def _time_fields(t: Optional[LogTime]) -> dict:
    if t is None:
        raise ValueError("no timestamp")
    return dict(time=t.epoch, time_naive=t.zone_offset_s is None, year_known=t.year_known,
                wall_clock=t.wall_clock, time_text=t.text)


def normalise_asa_reason(reason: str) -> tuple[str, Optional[str]]:
    """ASA teardown reason -> (normalised reason, reset_from)."""
    r = reason.lower()
    if "reset" in r or "received rst" in r:
        if "ips" in r:
            return "threat", "firewall"
        side = "firewall" if "appliance" in r else "inside" if re.search(r"reset\s*-\s*i\b", r) \
            else "outside" if re.search(r"reset\s*-\s*o\b", r) else None
        return "tcp_rst", side
    if "conn-timeout" in r or "idle timeout" in r or "flow timed out" in r:
        return "idle_timeout", None
    if "deny" in r:
        return "policy_deny", None
    if "ips" in r or "inspection" in r or "threat" in r:
        return "threat", None
    if "fin" in r and "timeout" not in r:
        return "fin", None
    # SYN Timeout (embryonic), FIN Timeout (half-closed), Xlate Clear...: not idle teardowns.
    return "other", None


def _parse_asa(no: int, line: str, m: re.Match) -> Optional[FirewallLogEntry]:
    src, dst = _ip(m.group("ip1")), _ip(m.group("ip2"))
    if src is None or dst is None:
        return None
    reason_raw = m.group("reason").strip() or "unknown"
    reason, side = normalise_asa_reason(reason_raw)
    return FirewallLogEntry(
        line_no=no, vendor="cisco_asa", **_time_fields(best_time(line[:m.start()])),
        src=src, sport=int(m.group("p1")), dst=dst, dport=int(m.group("p2")),
        src_zone=m.group("if1"), dst_zone=m.group("if2"), duration_s=_duration(m.group("dur")),
        bytes=int(m.group("bytes")), session_id=m.group("id"), reason_raw=reason_raw,
        reason=reason, reset_from=side)


def _int(text: str) -> Optional[int]:
    return int(text) if text and text.isdigit() else None


def _parse_paloalto(no: int, line: str) -> Optional[FirewallLogEntry]:
    fields = next(csv.reader([line]))
    try:
        base = next(i for i, f in enumerate(fields) if f == "TRAFFIC") - 3
    except StopIteration:
        return None
    f = fields[base:] if base >= 0 else None
    if f is None or len(f) < 47:
        return None
    src, dst = _ip(f[7]), _ip(f[8])
    t = parse_time(f[6]) or parse_time(f[1])
    if src is None or dst is None or t is None:
        return None
    # PAN-OS CSV times carry no zone; an RFC 5424 syslog header in front does.
    header = best_time(line.split(",", 1)[0])
    if header is not None and header.zone_offset_s is not None:
        t = t.model_copy(update={"zone_offset_s": header.zone_offset_s})
    reason_raw = f[46] or f[4]
    reason = _PAN_REASONS.get(reason_raw, "other")
    if reason == "other" and f[4] in ("deny", "drop"):
        reason = "policy_deny"
    side = {"tcp-rst-from-client": "client", "tcp-rst-from-server": "server"}.get(reason_raw)
    nat_src, nat_dst = _ip(f[9]), _ip(f[10])
    return FirewallLogEntry(
        line_no=no, vendor="paloalto", **_time_fields(t), src=src, sport=int(f[24]), dst=dst,
        dport=int(f[25]), src_zone=f[16] or None, dst_zone=f[17] or None,
        nat_src=nat_src if nat_src not in (None, "0.0.0.0") else None,
        nat_sport=_int(f[26]) or None, nat_dst=nat_dst if nat_dst not in (None, "0.0.0.0") else None,
        nat_dport=_int(f[27]) or None, duration_s=float(f[36]) if _int(f[36]) is not None else None,
        bytes=_int(f[31]), session_id=f[22] or None, reason_raw=reason_raw, reason=reason,
        reset_from=side)


def _forti_time(kv: dict[str, str]) -> Optional[LogTime]:
    t = parse_time(f"{kv.get('date', '')} {kv.get('time', '')}")
    if t is None:
        return None
    event = kv.get("eventtime", "")
    if event.isdigit():
        # FortiOS prints seconds, micro- or nanoseconds depending on version: scale by length.
        value = int(event)
        while value > 10**11:
            value /= 1000
        utc = datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
        return LogTime(text=f"eventtime={event}", wall_clock=utc, year_known=True, zone_offset_s=0)
    offset = zone_offset(kv.get("tz"))
    return t.model_copy(update={"zone_offset_s": offset}) if offset is not None else t


def _parse_fortigate(no: int, line: str) -> Optional[FirewallLogEntry]:
    kv = {k: v.strip('"') for k, v in _KV.findall(line)}
    if kv.get("type", "traffic") != "traffic" or "srcip" not in kv or "dstip" not in kv:
        return None
    src, dst = _ip(kv["srcip"]), _ip(kv["dstip"])
    sport, dport = _int(kv.get("srcport", "")), _int(kv.get("dstport", ""))
    t = _forti_time(kv)
    if None in (src, dst, sport, dport, t) or kv.get("proto", "6") != "6":
        return None
    action = kv.get("action", "")
    reason = _FORTI_ACTIONS.get(action, "other")
    if kv.get("utmaction") in ("block", "reset") or kv.get("craction") in ("2", "4"):
        reason = "threat"
    side = {"server-rst": "server", "client-rst": "client"}.get(action)
    sent, rcvd = _int(kv.get("sentbyte", "")), _int(kv.get("rcvdbyte", ""))
    return FirewallLogEntry(
        line_no=no, vendor="fortigate", **_time_fields(t), src=src, sport=sport, dst=dst,
        dport=dport, src_zone=kv.get("srcintf"), dst_zone=kv.get("dstintf"),
        nat_src=_ip(kv.get("transip", "")), nat_sport=_int(kv.get("transport", "")),
        nat_dst=_ip(kv.get("tranip", "")), nat_dport=_int(kv.get("tranport", "")),
        duration_s=float(kv["duration"]) if _int(kv.get("duration", "")) is not None else None,
        bytes=(sent or 0) + (rcvd or 0) if sent is not None or rcvd is not None else None,
        session_id=kv.get("sessionid"), reason_raw=action or "unknown", reason=reason,
        reset_from=side)


def parse_line(no: int, line: str) -> Optional[FirewallLogEntry]:
    """One log line, or None when it is not a TCP session-end record we understand."""
    try:
        if m := _ASA.search(line):
            return _parse_asa(no, line, m)
        if ",TRAFFIC," in line:
            return _parse_paloalto(no, line)
        if "srcip=" in line and "action=" in line:
            return _parse_fortigate(no, line)
    except (ValueError, IndexError):
        return None  # a truncated or mangled line is skipped, not fatal
    return None


def parse_firewall_log(text: str) -> FirewallLog:
    """Parse pasted firewall log lines; raise UserError when none is a teardown record."""
    log = FirewallLog()
    for no, line in enumerate(lines_of(text), 1):
        if not line.strip():
            continue
        entry = parse_line(no, line)
        if entry is None:
            log.skipped_lines += 1
        else:
            log.entries.append(entry)
    if not log.entries:
        raise fail("firewall_log", EXPECTED)
    return log


def looks_like(text: str) -> bool:
    return bool(_ASA.search(text)) or ",TRAFFIC," in text or \
        ("srcip=" in text and "action=" in text and "dstip=" in text)
