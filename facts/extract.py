"""One capture file → CaptureInfo + Connections + RstEvents (what ``analyze`` reasons over).

``extract`` returns everything at once; ``iter_facts`` is the streaming form that
``rstsleuth facts`` prints. Both read the file once; memory is O(connections + RSTs).
Facts are final only at the end of the file (host-wide baselines, data after a RST), so the
stream yields after the pass, not during it.
"""
from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from itertools import islice
from operator import attrgetter
from typing import Any, Callable, Iterator, Optional, Union

from pydantic import BaseModel

from . import ctrack
from .capture import Capture, open_capture
from .decode import iter_packets
from .models import CaptureInfo, Connection, RstEvent
from .rst import iter_built
from .tracker import Tracker

PROGRESS_EVERY = 65536  # packets between progress calls
_frame = attrgetter("frame")

Progress = Callable[[int, int], None]  # (bytes read, file size): the reader's file position


class Extraction(BaseModel):
    capture: CaptureInfo
    connections: list[Connection]
    rsts: list[RstEvent]


@contextmanager
def no_cyclic_gc():
    """The cyclic collector off for a block that allocates many long-lived objects and no
    garbage cycles: the pass (per-connection state, then the models) and ``analyze`` (the
    evidence and the report). The collector would traverse them again and again (a quarter
    of the pass, two thirds of a report on 5 000 resets) and find nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _run(capture, progress: Optional[Progress], state: Any = None
         ) -> tuple[CaptureInfo, Union[Tracker, Any]]:
    """The pass: a Tracker (Python pass), or the compiled tracker's State when the compiled
    facts can be built from it (else the Tracker made from that State). ``state``: the pass
    already made (``facts.prefetch`` reads before this module's imports)."""
    if state is not None:
        pass
    elif ctrack.usable(capture):
        # Compiled read+track pass: no Python object per packet.
        state = ctrack.read_pcap(capture, progress)
    elif ctrack.available():
        # Other readers hand over raw frames; the compiled tracker decodes the common ones
        # inline (no TcpSegment per packet) and the rest through facts.decode.
        state = ctrack.read_frames(capture, progress)
    else:
        state = _track(capture, progress)
    if isinstance(state, Tracker):
        counts = (state.tcp_packets, state.rst_packets, state.first_ts, state.last_ts)
    else:
        counts = state.counts()
        if not ctrack.facts_available():
            state = state.tracker()
    tcp, rst, first, last = counts
    info = CaptureInfo(
        path=capture.path, format=capture.format, link_types=sorted(capture.link_types),
        records=capture.records_read, tcp_packets=tcp, rst_packets=rst, first_time=first,
        last_time=last, warnings=list(capture.warnings))
    return info, state


def _built(state, capture: str) -> Iterator[tuple[Connection, list[RstEvent]]]:
    """Each connection with its RSTs: built in C from a compiled State, else by facts.rst."""
    if isinstance(state, Tracker):
        return iter_built(state, capture)
    return ctrack.iter_facts(state, capture)


def _track(capture, progress: Optional[Progress]) -> Tracker:
    tracker = Tracker()
    packets = iter_packets(capture)
    if progress is None:
        tracker.feed(packets)
    else:
        try:
            size = os.path.getsize(capture.path)
        except OSError:
            size = 0
        while True:
            chunk = list(islice(packets, PROGRESS_EVERY))
            if not chunk:
                break
            tracker.feed(chunk)
            progress(min(capture.bytes_read, size - 1), size)
        progress(size, size)
    return tracker


def extract(path, *, progress: Optional[Progress] = None, read: Any = None) -> Extraction:
    """Read ``path`` (a file name, or a capture ``open_capture`` returned) once and return
    its facts. ``read``: the compiled pass over that capture, when already done
    (``ctrack.read_pcap``). Raises CaptureError when the file cannot be read at all; problems
    after a good start land in ``capture.warnings``."""
    with no_cyclic_gc():
        capture = path if isinstance(path, Capture) else open_capture(path)
        info, state = _run(capture, progress, read)
        # facts.rst.build_facts's order: connections by first packet, RSTs by frame
        connections: list[Connection] = []
        rsts: list[RstEvent] = []
        for conn, events in _built(state, info.path):
            connections.append(conn)
            rsts.extend(events)
        del state
        rsts.sort(key=_frame)
        return Extraction(capture=info, connections=connections, rsts=rsts)


class FactStream:
    """Iterator over a capture's Connection and RstEvent facts (each connection followed by
    its RSTs). ``capture`` holds the CaptureInfo once the file has been read (the first
    ``next`` reads it). Opening checks the file, so a CaptureError comes at once."""

    def __init__(self, path, *, connections: bool = True):
        self._source = open_capture(path)
        self.with_connections = connections
        self.capture: Optional[CaptureInfo] = None
        self._it: Optional[Iterator[Union[Connection, RstEvent]]] = None

    def __iter__(self) -> "FactStream":
        return self

    def __next__(self) -> Union[Connection, RstEvent]:
        if self._it is None:
            self._it = self._generate()
        return next(self._it)

    def _generate(self) -> Iterator[Union[Connection, RstEvent]]:
        with no_cyclic_gc():
            info, state = _run(self._source, None)
            self.capture = info
            built = _built(state, info.path)
            del state
        for conn, events in built:
            if self.with_connections:
                yield conn
            yield from events


def iter_facts(path, *, connections: bool = True) -> FactStream:
    """Connections and RstEvents of ``path``; raises CaptureError at once when the file
    cannot be read at all."""
    return FactStream(path, connections=connections)
