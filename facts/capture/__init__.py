"""Capture files → records. ``open_capture`` sniffs the format from the first bytes.

To add a format, append one ``(sniff, reader_class)`` pair to ``READERS``: ``sniff(head)``
gets the first 16 bytes of the file and returns True when the reader claims it;
``reader_class(path)`` (a class or any callable returning a Capture) must raise
``CaptureError`` for a file it cannot read at all.
"""
from __future__ import annotations

from facts.errors import CaptureError

from .base import Capture, open_checked
from .etl_buffers import sniff_etl
from .pcap import PcapCapture, sniff_pcap
from .pcapng import PcapngCapture, sniff_pcapng


def _etl_capture(path) -> Capture:
    # imported when an .etl file is opened: the ETL reader pulls in pydantic, which would
    # delay the start of every pcap read in a background thread (facts.prefetch)
    from .etl import EtlCapture
    return EtlCapture(path)


READERS: list = [
    (sniff_pcap, PcapCapture),
    (sniff_pcapng, PcapngCapture),
    (sniff_etl, _etl_capture),
]


# pcap (usec, nsec; both byte orders) and pcapng, to tell a cut-off header from a stranger
_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
           b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")


def open_capture(path) -> Capture:
    with open_checked(path) as f:
        try:
            head = f.read(16)
        except OSError as exc:
            raise CaptureError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if not head:
        raise CaptureError(str(path), "empty file")
    for sniff, reader in READERS:
        if sniff(head):
            return reader(path)
    if len(head) < 4 and any(m.startswith(head) for m in _MAGICS):
        raise CaptureError(str(path), f"truncated file header ({len(head)} bytes)")
    magic = int.from_bytes(head[:4].ljust(4, b"\0"), "big")
    raise CaptureError(str(path), f"not a capture file (unknown magic 0x{magic:08x})")


__all__ = ["Capture", "CaptureError", "PcapCapture", "PcapngCapture", "READERS",
           "open_capture"]
