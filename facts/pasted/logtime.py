"""Timestamps as firewalls and syslog servers print them.

A log line often carries two: the syslog server's (no year, its own clock) and the device's
(maybe with year and zone). The most complete one wins. Without a zone the wall clock is read as
UTC and flagged naive, because many firewalls log local time; the correlator can then try whole
zone offsets instead of trusting it.
"""
from __future__ import annotations

import calendar
import re
from datetime import datetime
from typing import Optional

from ._util import PastedModel

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_ISO = re.compile(r"(?P<y>\d{4})[-/](?P<mo>\d{2})[-/](?P<d>\d{2})[T ](?P<h>\d{2}):(?P<mi>\d{2}):"
                  r"(?P<s>\d{2})(?P<frac>\.\d+)?(?P<zone>Z|[+-]\d{2}:?\d{2})?")
_BSD = re.compile(r"\b(?P<mon>[A-Z][a-z]{2})\s+(?P<d>\d{1,2})\s+(?:(?P<y>\d{4})\s+)?(?P<h>\d{2}):"
                  r"(?P<mi>\d{2}):(?P<s>\d{2})(?P<frac>\.\d+)?(?:\s+(?P<zone>UTC|GMT))?\b")
# Leap year placeholder so that a year-less "Feb 29" still parses.
PLACEHOLDER_YEAR = 2000


class LogTime(PastedModel):
    text: str
    wall_clock: datetime
    year_known: bool
    zone_offset_s: Optional[int] = None

    @property
    def epoch(self) -> Optional[float]:
        """Seconds since the epoch, UTC (wall clock read as UTC when no zone); None without year."""
        if not self.year_known:
            return None
        base = calendar.timegm(self.wall_clock.timetuple()) + self.wall_clock.microsecond / 1e6
        return base - (self.zone_offset_s or 0)


def zone_offset(text: Optional[str]) -> Optional[int]:
    """'Z', 'UTC', '+01:00', '-0500' -> seconds east of UTC."""
    if not text:
        return None
    if text.upper() in ("Z", "UTC", "GMT"):
        return 0
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text.strip())
    if not m:
        return None
    sign = 1 if m.group(1) == "+" else -1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)


def _make(m: re.Match, year: Optional[int], month: int) -> Optional[LogTime]:
    try:
        frac = m.group("frac")
        wall = datetime(year or PLACEHOLDER_YEAR, month, int(m.group("d")), int(m.group("h")),
                        int(m.group("mi")), int(m.group("s")),
                        int(round(float(frac) * 1e6)) if frac else 0)
    except ValueError:
        return None
    return LogTime(text=m.group(0), wall_clock=wall, year_known=year is not None,
                   zone_offset_s=zone_offset(m.group("zone")))


def parse_time(text: str) -> Optional[LogTime]:
    """One timestamp string in any supported form."""
    found = find_times(text)
    return found[0] if found else None


def find_times(text: str) -> list[LogTime]:
    out: list[LogTime] = []
    for m in _ISO.finditer(text):
        t = _make(m, int(m.group("y")), int(m.group("mo")))
        if t:
            out.append(t)
    for m in _BSD.finditer(text):
        month = _MONTHS.get(m.group("mon").lower())
        if month:
            t = _make(m, int(m.group("y")) if m.group("y") else None, month)
            if t:
                out.append(t)
    return out


def best_time(text: str) -> Optional[LogTime]:
    """The most complete timestamp in ``text``: zone and year, then year, then the last one."""
    found = find_times(text)
    if not found:
        return None
    return max(enumerate(found), key=lambda it: (it[1].zone_offset_s is not None,
                                                 it[1].year_known, it[0]))[1]
