"""The compiled read+track pass (``facts._ctrack``) for classic pcap files.

``facts._ctrack.track_pcap`` walks the file like ``facts.capture.pcap`` (same chunks, same
warnings), decodes what ``fastpcap``'s inline branch decodes (and IPv6 carrying TCP directly)
without making a Python object per packet, gives every other frame to ``facts.decode.decode``,
and runs ``facts.tracker.Tracker``'s state machine in C. It returns a ``Tracker`` whose
``Conn``/``Half``/``RstRecord``/``TcpSegment`` objects are the ones the Python pass would have
left, so ``facts.rst`` reads them unchanged.

``track_packets`` runs the same compiled tracker over decoded packet objects, for every other
reader (pcapng, ETL, pcap link types without an inline layout).

The module is optional: ``available()`` is False when it is not built or ``RSTSLEUTH_NO_CEXT``
is set, and ``facts.extract`` then runs the Python pass; ``usable(capture)`` says whether
``track_pcap`` reads that capture itself (classic pcap with an inline layout).
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Optional

from .capture.base import open_checked
from .capture.fastpcap import LAYOUTS
from .capture.pcap import CHUNK, PcapCapture
from .decode import decode
from .packet import IcmpTooBig, IpFragment, TcpSegment
from .tracker import Conn, Half, RstRecord, SynInfo, Tracker

try:
    from . import _ctrack
except ImportError:  # not built: the Python pass does everything
    _ctrack = None
else:
    _ctrack.setup({"TcpSegment": TcpSegment, "Half": Half, "Conn": Conn,
                   "RstRecord": RstRecord, "SynInfo": SynInfo, "Tracker": Tracker,
                   "IpFragment": IpFragment, "IcmpTooBig": IcmpTooBig})


def available() -> bool:
    """The compiled tracker is built and not switched off by ``RSTSLEUTH_NO_CEXT``."""
    return _ctrack is not None and not os.environ.get("RSTSLEUTH_NO_CEXT")


def usable(capture) -> bool:
    return (available() and isinstance(capture, PcapCapture)
            and capture.linktype in LAYOUTS)


def track_pcap(capture: PcapCapture,
               progress: Optional[Callable[[int, int], None]] = None) -> Tracker:
    """Read and track ``capture`` (a PcapCapture that ``usable`` accepts) in one compiled
    pass; sets its ``records_read``, ``bytes_read`` and ``warnings`` like its readers do.
    ``progress(bytes_read, size)`` is called as ``facts.extract`` calls it."""
    capture.warnings.clear()
    capture.records_read = 0
    size = 0
    if progress is not None:
        try:
            size = os.path.getsize(capture.path)
        except OSError:
            size = 0
    with open_checked(capture.path) as f:
        tracker, records, bytes_read, warning = _ctrack.track_pcap(
            f.fileno(), capture.linktype, capture.endian == ">", capture.ts_unit,
            capture.max_record, CHUNK, decode, progress, size)
    capture.records_read = records
    capture.bytes_read = bytes_read
    if warning is not None:
        if warning[0] == "cut":
            capture.cut_short(*warning[1:])
        else:
            capture.corrupt(*warning[1:])
    return tracker


def track_packets(packets: Iterable, progress: Optional[Callable[[int, int], None]] = None,
                  capture=None) -> Tracker:
    """``Tracker().feed(packets)`` in C, for the decoded packets of any reader (pcapng, ETL,
    pcap link types without an inline layout). With ``progress``, it is called as
    ``facts.extract`` calls it, from ``capture.bytes_read``."""
    if progress is None:
        return _ctrack.track_objects(packets)
    try:
        size = os.path.getsize(capture.path)
    except OSError:
        size = 0
    tracker = _ctrack.track_objects(
        packets, lambda: progress(min(capture.bytes_read, size - 1), size))
    progress(size, size)
    return tracker
