"""The compiled read+track pass (``facts._ctrack``) for every capture format.

``facts._ctrack.track_pcap`` walks a classic pcap file like ``facts.capture.pcap`` (same
chunks, same warnings), decodes what ``fastpcap``'s inline branch decodes (and IPv6 carrying
TCP directly, and the same over raw IP: ``INLINE_LINKTYPES``) without making a Python object per packet, gives every other frame to ``facts.decode.decode``,
and runs ``facts.tracker.Tracker``'s state machine in C. It leaves a ``State``, from which
either

* ``state.facts(capture)`` yields each ``Connection`` with its ``RstEvent`` list, exactly what
  ``facts.rst.iter_built`` yields for the same capture, built in C (``iter_facts``), or
* ``state.tracker()`` builds the ``Tracker`` whose ``Conn``/``Half``/``RstRecord``/``TcpSegment``
  objects are the ones the Python pass would have left, so ``facts.rst`` reads them unchanged
  (``track_pcap``, ``track_packets``).

``read_frames`` runs the same compiled tracker over any other reader's raw records (pcapng,
ETL, pcap link types without an inline layout): frames of link types 1/113/276 decode inline
with the pcap path's code, the rest through ``facts.decode.decode``, so no ``TcpSegment`` is
made for the common frames (``_ctrack.track_frames``). A pcapng file without damage is even
walked in C (``_ctrack.track_pcapng``, the blocks as ``PcapngCapture.walk`` reads them); at
the first block ``walk()`` would warn about, ``walk()`` reads the file instead. ``read_packets``/``track_packets`` run it over decoded packet
objects.

The module is optional: ``available()`` is False when it is not built or ``RSTSLEUTH_NO_CEXT``
is set, and ``facts.extract`` then runs the Python pass; ``usable(capture)`` says whether
``track_pcap`` reads that capture itself (classic pcap with an inline layout);
``facts_available()`` says whether the compiled facts match ``facts.models`` (field names and
order; otherwise ``facts.rst`` builds them from ``state.tracker()``).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Optional

from .capture import pcapng
from .capture.base import open_checked
from .capture.pcapng import PcapngCapture
from .capture.pcap import CHUNK, PcapCapture
from .decode import decode
from .packet import IcmpTooBig, IpFragment, TcpSegment
from .tracker import Conn, Half, RstRecord, SynInfo, Tracker

if TYPE_CHECKING:
    from .models import Connection, RstEvent

try:
    from . import _ctrack
except ImportError:  # not built: the Python pass does everything
    _ctrack = None
else:
    # The fact models (pydantic) are handed over on first use (facts_available): importing
    # them costs a tenth of a second, which ``facts.prefetch``'s reader spends walking the
    # file instead.
    _ctrack.setup({"TcpSegment": TcpSegment, "Half": Half, "Conn": Conn,
                   "RstRecord": RstRecord, "SynInfo": SynInfo, "Tracker": Tracker,
                   "IpFragment": IpFragment, "IcmpTooBig": IcmpTooBig})

# Link types the compiled walk decodes inline (_ctrack.h inline_layout): Ethernet, Linux
# SLL/SLL2, raw IP (any version, IPv4 only, IPv6 only).
INLINE_LINKTYPES = frozenset({1, 113, 276, 12, 14, 101, 228, 229})


def _facts_match() -> bool:
    """Hand the fact models to the compiled builder. The C code builds every field of these
    models by name and position: a model that gained or reordered fields (or needs
    pydantic's own construction) goes through facts.rst."""
    if _ctrack is None:
        return False
    from .fastmodel import model_is_plain
    from .models import Connection, Endpoint, RstEvent
    _ctrack.setup({"TcpSegment": TcpSegment, "Half": Half, "Conn": Conn,
                   "RstRecord": RstRecord, "SynInfo": SynInfo, "Tracker": Tracker,
                   "IpFragment": IpFragment, "IcmpTooBig": IcmpTooBig,
                   "Connection": Connection, "Endpoint": Endpoint, "RstEvent": RstEvent})
    built = _ctrack.fact_fields()
    return all(names == tuple(cls.model_fields) and model_is_plain(cls)
               for names, cls in zip(built, (Connection, Endpoint, RstEvent)))


# Whether the compiled facts match the models: worked out by the first facts_available().
FACTS_MATCH: Optional[bool] = None


def available() -> bool:
    """The compiled tracker is built and not switched off by ``RSTSLEUTH_NO_CEXT``."""
    return _ctrack is not None and not os.environ.get("RSTSLEUTH_NO_CEXT")


def facts_available() -> bool:
    """``available()``, and the compiled facts match the models."""
    global FACTS_MATCH
    if not available():
        return False
    if FACTS_MATCH is None:
        FACTS_MATCH = _facts_match()
    return FACTS_MATCH


def usable(capture) -> bool:
    return (available() and isinstance(capture, PcapCapture)
            and capture.linktype in INLINE_LINKTYPES)


def track_pcap(capture: PcapCapture,
               progress: Optional[Callable[[int, int], None]] = None) -> Tracker:
    """``read_pcap(capture, progress).tracker()``."""
    return read_pcap(capture, progress).tracker()


def read_pcap(capture: PcapCapture, progress: Optional[Callable[[int, int], None]] = None):
    """Read and track ``capture`` (a PcapCapture that ``usable`` accepts) in one compiled
    pass and return the tracker's ``State``; sets the capture's ``records_read``,
    ``bytes_read`` and ``warnings`` like its readers do. ``progress(bytes_read, size)`` is
    called as ``facts.extract`` calls it."""
    capture.warnings.clear()
    capture.records_read = 0
    size = 0
    if progress is not None:
        try:
            size = os.path.getsize(capture.path)
        except OSError:
            size = 0
    with open_checked(capture.path) as f:
        state, records, bytes_read, warning = _ctrack.track_pcap(
            f.fileno(), capture.linktype, capture.endian == ">", capture.ts_unit,
            capture.max_record, CHUNK, decode, progress, size)
    capture.records_read = records
    capture.bytes_read = bytes_read
    if warning is not None:
        if warning[0] == "cut":
            capture.cut_short(*warning[1:])
        else:
            capture.corrupt(*warning[1:])
    return state


def track_packets(packets: Iterable, progress: Optional[Callable[[int, int], None]] = None,
                  capture=None) -> Tracker:
    """``Tracker().feed(packets)`` in C: ``read_packets(...).tracker()``."""
    return read_packets(packets, progress, capture).tracker()


def read_packets(packets: Iterable, progress: Optional[Callable[[int, int], None]] = None,
                 capture=None):
    """The compiled tracker's ``State`` after the decoded packets of any reader (pcapng, ETL,
    pcap link types without an inline layout). With ``progress``, it is called as
    ``facts.extract`` calls it, from ``capture.bytes_read``."""
    if progress is None:
        return _ctrack.track_objects(packets)
    try:
        size = os.path.getsize(capture.path)
    except OSError:
        size = 0
    state = _ctrack.track_objects(
        packets, lambda: progress(min(capture.bytes_read, size - 1), size))
    progress(size, size)
    return state


def frame_source(capture):
    """The records ``read_frames`` reads from ``capture``: pcapng's ``walk()`` (frames in
    place, no copy), else ``records()``. (An ETL capture is read through its
    ``record_batches()`` by ``track_frame_batches`` instead: a list of records at a time.)"""
    if isinstance(capture, PcapngCapture):
        return capture.walk()
    return capture.records()


def _size(capture) -> int:
    try:
        return os.path.getsize(capture.path)
    except OSError:
        return 0


def read_frames(capture, progress: Optional[Callable[[int, int], None]] = None):
    """The compiled tracker's ``State`` after the raw records of any reader, decoded as
    ``facts.decode.decode`` decodes them (inline where the pcap path decodes inline).
    ``progress`` is called as ``facts.extract`` calls it, from ``capture.bytes_read``.
    An undamaged pcapng file is walked in C (``track_pcapng``); at the first block the
    Python walk would warn about, that walk reads the file instead (its first progress
    calls, the ones already made, are not repeated)."""
    if not hasattr(_ctrack, "track_frames"):   # a build older than this source
        from .decode import iter_packets
        return read_packets(iter_packets(capture), progress, capture)
    size = _size(capture) if progress is not None else 0
    done = 0
    if isinstance(capture, PcapngCapture) and hasattr(_ctrack, "track_pcapng"):
        tick = None if progress is None else lambda pos: progress(min(pos, size - 1), size)
        with open_checked(capture.path) as f:
            got = _ctrack.track_pcapng(f.fileno(), pcapng.CHUNK, decode, tick)
        if got[0] is not None:
            state, records, bytes_read, link_types = got
            capture.warnings.clear()
            capture.records_read = records
            capture.bytes_read = bytes_read
            capture.link_types.update(link_types)
            if progress is not None:
                progress(size, size)
            return state
        done = got[1]
    records = frame_source(capture)
    track = _ctrack.track_frames
    if hasattr(capture, "record_batches") and hasattr(_ctrack, "track_frame_batches"):
        records = capture.record_batches()      # ETL: a list of records at a time
        track = _ctrack.track_frame_batches
    if progress is None:
        return track(records, decode)
    calls = [0]

    def tick():
        calls[0] += 1
        if calls[0] > done:
            progress(min(capture.bytes_read, size - 1), size)
    state = track(records, decode, tick)
    progress(size, size)
    return state


def iter_facts(state, capture: str) -> Iterator[tuple["Connection", list["RstEvent"]]]:
    """What ``facts.rst.iter_built`` yields for the tracker this ``State`` holds (each
    connection in order of first packet, with its RSTs), built in C from the state, which it
    releases as it goes. Needs ``facts_available()``."""
    return state.facts(capture)
