"""What every capture reader offers (pcap, pcapng, and the ETL reader)."""
from __future__ import annotations

import os
from typing import Iterator

from facts.errors import CaptureError

# A record longer than this is treated as corruption: no link layer we decode sends frames
# this big (Linux's largest snaplen is 262144), and a fuzzed length would otherwise make us
# buffer up to 4 GiB.
MAX_RECORD = 262144

Record = tuple  # (frame, ts, linktype, data, origlen, direction)


class Capture:
    """A capture file being read. ``records()`` streams
    ``(frame, ts, linktype, data, origlen, direction)`` tuples; ``frame`` is the 1-based
    record number as Wireshark shows it, ``ts`` float seconds UTC, ``direction`` 'in',
    'out' or None. Problems met while reading land in ``warnings`` (one line each).
    ``records_read`` and ``bytes_read`` grow while iterating."""

    format = "?"

    def __init__(self, path):
        self.path = str(path)
        self.warnings: list[str] = []
        self.link_types: set[int] = set()
        self.records_read = 0
        # How far into the file the reader has got (advances a chunk at a time), for
        # progress bars; equals the file size once records() is exhausted.
        self.bytes_read = 0

    def records(self) -> Iterator[Record]:
        raise NotImplementedError

    def fast_packets(self):
        """A fused read+decode iterator for this file, or None to use the general path."""
        return None

    def __repr__(self):
        return f"<{type(self).__name__} {self.format} {self.path!r}>"


def open_checked(path):
    """Open a file for reading, turning OS errors into one-line CaptureErrors."""
    p = str(path)
    if not os.path.exists(p):
        raise CaptureError(p, "no such file")
    if os.path.isdir(p):
        raise CaptureError(p, "is a directory, not a capture file")
    try:
        return open(p, "rb")
    except OSError as exc:
        raise CaptureError(p, f"cannot open: {exc.strerror or exc}") from None
