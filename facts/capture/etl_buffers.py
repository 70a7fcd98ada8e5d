"""ETL files (Event Tracing for Windows): buffers, the logfile header's clock, event streams.

An .etl file is a run of buffers, each starting with a 72-byte WMI_BUFFER_HEADER. The first
buffer holds a SYSTEM_TRACE_HEADER event whose payload is TRACE_LOGFILE_HEADER (clock type,
QPC frequency, session start time, boot time). Buffers are written per processor, each in
time order, so a reader merges the per-processor streams. Compressed buffers (flag 0x40,
what ``pktmon`` and ``netsh trace`` write on Windows 10+) hold plain LZXPRESS (LZ77, MS-XCA
2.3; not the Huffman variant) of everything after the header; their on-disk length is the
header's BufferSize and the decompressed length is Offset - 72.

``EtlFile`` never raises on a damaged body: it records one-line problems in ``problems`` and
keeps whatever it can still read.
"""
from __future__ import annotations

import math
import os
from bisect import bisect_right
from itertools import chain
from operator import itemgetter
from struct import Struct

from dissect.util.compression import lzxpress

from facts.errors import CaptureError

from .base import open_checked

BUFFER_HEADER = 72
FLAG_COMPRESSED = 0x40
FILETIME_EPOCH = 116444736000000000          # 1970-01-01 in 100 ns ticks since 1601
_MAX_BUFFER = 64 << 20                       # ETW caps buffers at 16 MiB; leave room

# size, saved, current, refcount, timestamp, sequence, clock, context, state, offset,
# flag, type (+16 bytes of union we do not need)
_BUF = Struct("<IIIiqqQIIIHH16x")
_U16 = Struct("<H")
_U32 = Struct("<I")
_Q = Struct("<q")

# System trace header types (byte 2 of the record) and their header lengths.
_SYSTEM_HEADER_LEN = {1: 32, 2: 32, 3: 24, 4: 24}

CLOCK_QPC, CLOCK_SYSTEM, CLOCK_CPU = 1, 2, 3


class EtlClock:
    """Turns raw event timestamps into UTC seconds (float) and FILETIME ticks (int).

    With the QPC clock (ETW's default) Windows' own consumers anchor the raw counter at the
    logfile header event, whose counter value corresponds to StartTime; without that anchor
    we fall back to BootTime + counter/frequency."""

    def __init__(self, clock_type: int, frequency: int, start_time: int, anchor: int,
                 boot_time: int):
        self.clock_type = clock_type if clock_type in (1, 2, 3) else CLOCK_QPC
        self.frequency = frequency if frequency > 0 else 10_000_000
        if anchor > 0 and start_time > 0:
            self.base_ticks, self.base_raw = start_time, anchor
        else:
            self.base_ticks, self.base_raw = boot_time, 0
        self.start_time = start_time
        self.boot_time = boot_time
        # When raw counts 100 ns ticks (system time, or the 10 MHz QPC of current Windows):
        # seconds = whole_seconds + (raw + tick_offset) / 1e7, with whole_seconds the session
        # start's whole seconds. raw + tick_offset is then small (time since the start), so
        # the float division is exact to the tick and the one rounding left is the float's
        # own -- as good as exact int division, at half the cost per packet.
        self.linear = False
        self.whole_seconds, self.tick_offset = 0.0, 0
        if self.clock_type == CLOCK_SYSTEM or self.frequency == 10_000_000:
            offset = -FILETIME_EPOCH if self.clock_type == CLOCK_SYSTEM else \
                self.base_ticks - self.base_raw - FILETIME_EPOCH
            whole = (self.base_ticks - FILETIME_EPOCH) // 10_000_000
            self.linear = True
            self.whole_seconds = float(whole)
            self.tick_offset = offset - whole * 10_000_000

    def ticks(self, raw: int) -> int:
        if self.clock_type == CLOCK_SYSTEM:
            return raw
        return self.base_ticks + (raw - self.base_raw) * 10_000_000 // self.frequency

    def seconds(self, raw: int) -> float:
        return (self.ticks(raw) - FILETIME_EPOCH) / 10_000_000     # int/int: correctly rounded


def parse_logfile_header(buf: bytes, path: str):
    """Return (EtlClock, info dict) from the first buffer, or raise CaptureError."""
    p = BUFFER_HEADER
    if len(buf) < p + 32:
        raise CaptureError(path, "not an ETL trace (first buffer too short)")
    htype, marker = buf[p + 2], buf[p + 3]
    hook = _U16.unpack_from(buf, p + 6)[0]
    if htype not in _SYSTEM_HEADER_LEN or marker & 0xC0 != 0xC0 or hook != 0:
        raise CaptureError(path, "not an ETL trace (no logfile header event)")
    size = _U16.unpack_from(buf, p + 4)[0]
    anchor = _Q.unpack_from(buf, p + 16)[0] if _SYSTEM_HEADER_LEN[htype] == 32 else 0
    h = p + _SYSTEM_HEADER_LEN[htype]
    if size < 0x110 or h + 0x110 > len(buf):
        raise CaptureError(path, "not an ETL trace (logfile header cut short)")
    pointer_size = _U32.unpack_from(buf, h + 0x2C)[0]
    base = 0xF8 if pointer_size == 8 else 0xF0
    if h + base + 0x20 > len(buf):
        raise CaptureError(path, "not an ETL trace (logfile header cut short)")
    boot, freq, start = Struct("<qqq").unpack_from(buf, h + base)
    clock_type = _U32.unpack_from(buf, h + base + 0x18)[0]
    cpu_mhz = _U32.unpack_from(buf, h + 0x34)[0]
    if clock_type == CLOCK_CPU and cpu_mhz:
        freq = cpu_mhz * 1_000_000
    info = {
        "buffer_size": _U32.unpack_from(buf, h)[0],
        "version": tuple(buf[h + 4:h + 8]),
        "os_build": _U32.unpack_from(buf, h + 8)[0],
        "processors": _U32.unpack_from(buf, h + 0x0C)[0],
        "end_time": _Q.unpack_from(buf, h + 0x10)[0],
        "timer_resolution": _U32.unpack_from(buf, h + 0x18)[0],
        "events_lost": _U32.unpack_from(buf, h + 0x30)[0],
        "pointer_size": pointer_size,
        "clock_type": clock_type,
        "perf_freq": freq,
        "start_time": start,
        "boot_time": boot,
    }
    return EtlClock(clock_type, freq, start, anchor, boot), info


class EtlFile:
    """Buffer index + per-processor event streams of one .etl file."""

    def __init__(self, path: str):
        self.path = str(path)
        # One line per kind of damage -- the file cut short, or corrupt data (a bad buffer
        # header, compressed stream or event size): the first occurrence's text and how
        # many there were.
        self._problems: dict[str, list] = {}
        with open_checked(self.path) as f:
            self.file_size = os.fstat(f.fileno()).st_size
            head = f.read(BUFFER_HEADER)
            if len(head) < BUFFER_HEADER:
                raise CaptureError(self.path, "not an ETL trace (shorter than a buffer header)")
            first_size = _BUF.unpack_from(head)[0]
            if not BUFFER_HEADER < first_size <= _MAX_BUFFER:
                raise CaptureError(self.path, f"not an ETL trace (buffer size {first_size})")
            f.seek(0)
            first = f.read(first_size)
        self.clock, self.info = parse_logfile_header(first, self.path)
        self.buffers = self._index()
        self._index_problems = {k: list(v) for k, v in self._problems.items()}

    def _problem(self, text: str) -> None:
        kind = "cut" if "cut short" in text else "corrupt"
        seen = self._problems.get(kind)
        if seen is None:
            self._problems[kind] = [text, 1]
        else:
            seen[1] += 1

    @property
    def problems(self) -> list[str]:
        return [text if n == 1 else f"{text} (and {n - 1} more like it)"
                for text, n in self._problems.values()]

    def _index(self):
        """(file offset, header tuple) of every buffer, from the headers alone."""
        out = []
        off = 0
        sizes = set()
        with open(self.path, "rb") as f:
            while off < self.file_size:
                f.seek(off)
                head = f.read(BUFFER_HEADER)
                if len(head) < BUFFER_HEADER:
                    self._problem(f"file cut short inside a buffer header at offset {off}"
                                  f" ({len(head)} of {BUFFER_HEADER} bytes)")
                    break
                hdr = _BUF.unpack(head)
                size = hdr[0]
                if head == b"\xff" * BUFFER_HEADER or head == bytes(BUFFER_HEADER):
                    break                    # preallocated tail of a circular/sized log
                if not BUFFER_HEADER <= size <= _MAX_BUFFER:
                    # Uncompressed logs use one buffer size throughout: step over the bad
                    # header with it; otherwise nothing after this point can be located.
                    if len(sizes) == 1:
                        step = next(iter(sizes))
                        self._problem(f"corrupt buffer header at offset {off} (size {size});"
                                      f" skipped {step} bytes")
                        off += step
                        continue
                    self._problem(f"corrupt buffer header at offset {off} (size {size});"
                                  f" {self.file_size - off} bytes after it unreadable")
                    break
                if not hdr[10] & FLAG_COMPRESSED:
                    sizes.add(size)
                out.append((off, hdr))
                off += size
        return out

    def reset_problems(self) -> None:
        """Forget the problems of a previous pass over the events (the index's stay)."""
        self._problems = {k: list(v) for k, v in self._index_problems.items()}

    def streams(self) -> dict:
        """Processor number -> that processor's (file offset, header) buffer entries."""
        streams: dict[int, list] = {}
        for off, hdr in self.buffers:
            streams.setdefault(hdr[7] & 0xFFFF, []).append((off, hdr))
        return streams

    def read_body(self, f, off: int, hdr, room: bytearray | None = None):
        """The event area of one buffer (after its header), decompressed when needed. With
        ``room`` (large enough: ``room_for``), an uncompressed body is read into it and
        returned as a memoryview of the part read: no new memory per buffer."""
        size, flag, used = hdr[0], hdr[10], hdr[9]
        f.seek(off + BUFFER_HEADER)
        if flag & FLAG_COMPRESSED:
            raw = f.read(size - BUFFER_HEADER)
            if len(raw) < size - BUFFER_HEADER:
                self._problem(f"file cut short inside compressed buffer at offset {off};"
                              f" its events are lost")
                return b""
            try:
                body = lzxpress.decompress(raw)
            except Exception as exc:          # any failure of a damaged stream
                self._problem(f"corrupt compressed buffer at offset {off}"
                              f" ({type(exc).__name__}); its events skipped")
                return b""
            want = used - BUFFER_HEADER
            if want <= 0 or want > len(body):
                want = len(body)
            return body[:want]
        have = min(size, self.file_size - off)
        if have < size:
            self._problem(f"file cut short inside buffer at offset {off}"
                          f" ({have} of {size} bytes); events after the cut are lost")
        # Offset is the filled length in the files we have seen (SavedOffset there points at
        # the last event); take the larger plausible one -- the walk stops at the 0xFF
        # filler of an unused tail anyway, so reading too far costs nothing. Only the filled
        # part is read: no unused tail, no second copy to trim it.
        end = self._filled(hdr)
        if room is None:
            return f.read(end - BUFFER_HEADER)
        view = memoryview(room)
        return view[:f.readinto(view[:end - BUFFER_HEADER])]

    @staticmethod
    def _filled(hdr) -> int:
        size, saved, used = hdr[0], hdr[1], hdr[9]
        ends = [e for e in (used, saved) if BUFFER_HEADER < e <= size]
        return max(ends) if ends else size

    def room_for(self, entries) -> bytearray:
        """A buffer ``read_body`` can read any uncompressed body of ``entries`` into."""
        return bytearray(max((self._filled(hdr) - BUFFER_HEADER for _off, hdr in entries
                              if not hdr[10] & FLAG_COMPRESSED), default=0))

    def is_cut(self, off: int, hdr) -> bool:
        """The file ends inside this buffer."""
        return off + hdr[0] > self.file_size

    def bodies(self, entries, progress=None, reuse=False):
        """(file offset, header, body) of each buffer in ``entries`` with a non-empty body,
        in order; ``progress(offset)`` is told the end of each buffer read. With ``reuse``
        the uncompressed bodies are memoryviews of one buffer that each next body is read
        into (bytes in 1 MB pieces of fresh memory, several streams' at a time, cost the
        page faults of new memory each time): the caller keeps nothing of a body past it."""
        room = self.room_for(entries) if reuse else None
        with open(self.path, "rb") as f:
            for off, hdr in entries:
                body = self.read_body(f, off, hdr, room)
                if progress is not None:
                    progress(min(off + hdr[0], self.file_size))
                if body:
                    yield off, hdr, body

    def problem(self, text: str) -> None:
        """Record a one-line problem found while walking a body (as ``walk`` is told to)."""
        self._problem(text)

    def _stream(self, entries, walk, proc, state, progress):
        """Per buffer of one processor's stream, in file order: the list of its events."""
        for off, hdr, body in self.bodies(entries, progress):
            # In a buffer cut short by the end of file the last event is expected to be
            # incomplete: the cut-short warning already says so.
            yield walk(body, off, proc, self.is_cut(off, hdr), state, self._problem)

    def events(self, walk, new_state, progress=None):
        """All events ``walk(body, off, proc, cut, state, problem) -> list`` finds in the
        buffers, merged across processor streams by timestamp (each item's first element).
        ``new_state()`` makes the walker's state for one stream; ``progress(offset)`` is told
        the end of each buffer read. Returns (iterator, states)."""
        self.reset_problems()
        streams = self.streams()
        states = [new_state() for _ in streams]
        gens = [self._stream(entries, walk, proc, state, progress)
                for (proc, entries), state in zip(streams.items(), states)]
        # Iterated by itertools.chain over the per-buffer lists: no Python frame resumed
        # per event.
        if len(gens) == 1:
            return chain.from_iterable(gens[0]), states
        return chain.from_iterable(merge_streams([_pieces(g) for g in gens])), states


    def resume_events(self, walk, state, index: int, body: bytes, start: int, progress=None):
        """The events of a single-stream file from record offset ``start`` of buffer
        ``index`` (whose body the caller has read) on: where a fused reader that met an
        event it does not handle itself hands the rest of the file to ``walk``."""
        (proc, entries), = self.streams().items()
        off, hdr = entries[index]
        first = walk(body, off, proc, self.is_cut(off, hdr), state, self._problem, start)
        rest = self._stream(entries[index + 1:], walk, proc, state, progress)
        return chain(first, chain.from_iterable(rest))


# The merge takes each buffer's events in pieces of at most this many (the first
# MERGE_PIECE, the next ...): with large buffers and several processors, whole buffers
# of event tuples waiting in the pool leave the CPU caches long before they are read.
# The compiled reader (etl_fastc) cuts its items at the same places, so the general and
# the compiled path merge the same lists and order events of equal timestamps alike.
MERGE_PIECE = 128


def _pieces(lists):
    n = MERGE_PIECE
    for events in lists:
        if len(events) <= n:
            yield events
        else:
            for i in range(0, len(events), n):
                yield events[i:i + n]


def merge_streams(streams):
    """Merge per-processor streams of event lists, each stream in time order: the compiled
    ``_etlwalk.merge`` when built (and ``RSTSLEUTH_NO_CEXT`` unset), else
    ``merge_streams_py``; the same lists either way (tests compare them)."""
    if _compiled_merge is not None:
        return _compiled_merge(streams)
    return merge_streams_py(streams)


def merge_streams_py(streams):
    """The merge by sorting a pool: load the next list (a buffer's piece) of the stream that
    is furthest behind, then every pooled event no later than the least advanced stream's
    last loaded timestamp is final. A C-level sort of nearly sorted runs per buffer costs far
    less than a per-event heap merge, and memory stays at about one buffer per processor.
    Yields lists of events in time order (equal timestamps in the order loaded)."""
    key = itemgetter(0)
    fronts = [[-math.inf, s] for s in streams]      # [last loaded timestamp, stream]
    pool: list = []
    while fronts:
        lag = min(fronts, key=key)
        events = next(lag[1], None)
        if events is None:
            fronts.remove(lag)
        elif events:
            pool += events
            lag[0] = events[-1][0]
        else:
            continue
        safe = min(f[0] for f in fronts) if fronts else math.inf
        if pool and pool[0][0] <= safe or not fronts:
            pool.sort(key=key)
            cut = bisect_right(pool, safe, key=key)
            if cut:
                yield pool[:cut]
                del pool[:cut]
    pool.sort(key=key)
    yield pool


def compiled(name: str):
    """``name`` of the optional compiled ``_etlwalk`` (None when it was not built or
    ``RSTSLEUTH_NO_CEXT`` is set: the Python code then does its work)."""
    if os.environ.get("RSTSLEUTH_NO_CEXT"):
        return None
    try:
        from . import _etlwalk
    except ImportError:
        return None
    return getattr(_etlwalk, name, None)


_compiled_merge = compiled("merge")


def sniff_etl(head: bytes) -> bool:
    """A WMI_BUFFER_HEADER at offset 0: plausible buffer size (8-byte multiple), saved and
    current offsets within it. ETL has no magic number; the reader confirms by finding the
    logfile header event."""
    if len(head) < 16:
        return False
    size, saved, current = Struct("<III").unpack_from(head)
    return (BUFFER_HEADER < size <= _MAX_BUFFER and size % 8 == 0 and saved <= size
            and (current <= size or current == 0))
