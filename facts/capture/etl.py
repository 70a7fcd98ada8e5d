"""Windows packet captures in ETL form: ``pktmon`` and ``netsh trace`` (NDIS) .etl files.

``EtlCapture`` offers the same interface as the pcap/pcapng readers (format "etl"), so
everything downstream reads .etl unchanged:

- Microsoft-Windows-PktMon events 160 (flow) and 170 (drop). pktmon logs the same packet once
  per networking component it crosses; copies are folded into one packet keyed on
  (PktGroupId, PktNumber) -- a restart of AppearanceCount under the same key is a new packet
  (corpus 29: 2705 copies, 260 packets). The packet gets the time and direction of its first
  appearance and the bytes of its first Ethernet / raw-IP copy (the Wi-Fi form comes first
  on receive). Drops are kept as evidence in ``drops``. Payloads are truncated to the capture
  length (128 bytes by default): origlen is OriginalPayloadSize.
- Microsoft-Windows-NDIS-PacketCapture event 1001: one packet may span several events
  (first/last fragment keywords) and is reassembled; the keyword names link type and
  send/receive.

Direction: "out" = sent by the machine that captured, "in" = received by it. Buffers, clock
and per-processor merge live in ``etl_buffers``, the per-buffer event walk in ``etl_events``,
the fold in ``fold_records`` here. ``records()`` and ``fast_packets()`` run the fused loops
of ``etl_fast``, which do the common events themselves and give the same results.
"""
from __future__ import annotations

from collections import deque
from typing import Iterator

from pydantic import BaseModel

from facts import linktypes

from .base import Capture
from .etl_buffers import EtlFile, sniff_etl
from .etl_events import (KW_FRAGMENT_FIRST, KW_FRAGMENT_LAST, KW_NATIVE_80211, KW_WWAN_RAW_IP,
                         NDIS_DIRECTIONS, NDIS_GUID, NDIS_LINKTYPES, NDIS_WHOLE, PKTMON,
                         PKTMON_DROP_FIELDS, PKTMON_GUID, StreamState, walk_buffer)

PKTMON_LINKTYPES = {1: linktypes.ETHERNET, 2: linktypes.IEEE802_11, 3: linktypes.RAW}
# pktmon's direction tags: Rx (3) is a packet arriving, Tx (4) one leaving.
PKTMON_DIRECTIONS = {3: "in", 4: "out"}
PM_DIRS = tuple(PKTMON_DIRECTIONS.get(i) for i in range(8))      # by DirTag & 7

# Copies of one pktmon packet are logged within microseconds; a key not seen for this long
# is forgotten, which keeps folding memory bounded on long captures.
_FOLD_WINDOW_S = 2.0
# A packet is yielded once a copy in a link type the decoder reads fully (Ethernet, raw IP)
# has been seen -- Wi-Fi copies keep the Protected bit although pktmon logs them decrypted
# -- or when no further copy arrived for this long.
_HOLD_S = 0.05
_PREFERRED = frozenset((linktypes.ETHERNET, linktypes.RAW))
# A pktmon packet waiting for a preferred copy is a list: [last AppearanceCount, frame (0
# until yielded), direction, first raw timestamp, chosen payload, its link type, its original
# size, preferred copy seen, drops waiting for the frame, fold key]. Indexes are written as
# literals in the per-event loop.


class EtlDrop(BaseModel):
    """A pktmon drop event (170): which component discarded which packet, and why."""
    frame: int
    time: float
    component: int
    edge: int
    reason: int
    location: int
    direction: str | None = None


def pktmon_linktype(packet_type: int, data: bytes) -> int:
    """The link type a pktmon payload really has. PacketType describes the logging edge and
    sometimes disagrees with the bytes (a Wi-Fi edge logging the Ethernet form a miniport
    handed up): when only the other of Ethernet / 802.11 locates an IP header, believe it."""
    lt = PKTMON_LINKTYPES.get(packet_type, linktypes.ETHERNET)
    if lt == linktypes.RAW or linktypes.ip_offset(lt, data) is not None:
        return lt
    other = linktypes.ETHERNET if lt == linktypes.IEEE802_11 else linktypes.IEEE802_11
    return other if linktypes.ip_offset(other, data) is not None else lt


def remembered(memory: int) -> tuple:
    """A packet the compiled fold (``_etlwalk.fold``) remembered as one int,
    AppearanceCount | direction code << 16 | frame << 19, as ``fold_records`` remembers
    it: (AppearanceCount, frame, direction)."""
    return memory & 0xFFFF, memory >> 19, PM_DIRS[(memory >> 16) & 7]


class EtlCapture(Capture):
    format = "etl"

    def __init__(self, path):
        super().__init__(path)
        self.etl = EtlFile(self.path)
        self.info = self.etl.info
        self.clock = self.etl.clock
        self.drops: list[EtlDrop] = []
        self.providers_seen: set[str] = set()
        self.events_read = 0

    def records(self) -> Iterator[tuple]:
        """Through the fused loop of ``etl_fast`` (same records as ``general_records``)."""
        from .etl_fast import iter_fused
        return iter_fused(self, records=True)

    def record_batches(self):
        """The records for ``_ctrack.track_frame_batches``: those of ``records()``, where
        the compiled walk runs as batches of its kept items (``etl_fastc.fused_c``)."""
        from .etl_fast import record_batches
        return record_batches(self)

    def fast_packets(self):
        """Decoded packets straight from the buffers (``etl_fast``): pktmon copies are
        stepped over on their fold key and common frames decoded in place."""
        from .etl_fast import iter_fused
        return iter_fused(self)

    def general_records(self) -> Iterator[tuple]:
        """The records through ``walk_buffer`` and ``fold_records`` alone: what the fused
        loop hands unusual events to, and the reference it is tested against."""
        stats = self.start_pass()
        try:
            yield from self.fold_records(stats)
            self.bytes_read = self.etl.file_size
        finally:
            self.finish_pass(stats)

    def start_pass(self) -> dict:
        """Reset what a pass over the file reports; returns its fragment counters."""
        self.warnings.clear()
        self.drops = []
        self.records_read = 0
        self.events_read = 0
        self.link_types = set()
        self.bytes_read = 0
        self.etl.reset_problems()
        return {"orphan": 0, "incomplete": 0}

    def fold_spans(self) -> tuple[int, int]:
        """_FOLD_WINDOW_S and _HOLD_S in raw timestamp units."""
        clock = self.clock
        ticks_per_s = clock.frequency if clock.clock_type != 2 else 10_000_000
        return int(_FOLD_WINDOW_S * ticks_per_s), int(_HOLD_S * ticks_per_s)

    def finish_pass(self, stats) -> None:
        self.warnings.extend(self.etl.problems)
        if not self.events_read and not self.warnings:
            self.warnings.append(
                "no packet events in this trace (neither Microsoft-Windows-PktMon nor"
                " Microsoft-Windows-NDIS-PacketCapture): record with 'pktmon start -c' or"
                " 'netsh trace start capture=yes'")
        if stats["orphan"] or stats["incomplete"]:
            self.warnings.append(
                f"NDIS packet fragments lost: {stats['incomplete']} packets incomplete"
                f" (yielded as captured), {stats['orphan']} fragments without a first part"
                f" (skipped)")

    def fold_records(self, stats, resume=None, handback=None):
        """The fold. ``resume`` = (events, states, frame, live, older, generation_start)
        continues a pass the fused reader (``etl_fast``) began with the same state. With a
        ``handback`` list, once no packet waits (no pktmon packet held for a better copy,
        no NDIS packet half reassembled) the fold stops before the next event and appends
        (that event, frame, live, older, generation_start) for the fused reader."""
        clock = self.clock
        seconds = clock.seconds
        linear = clock.linear
        whole_s, tick_off = clock.whole_seconds, clock.tick_offset
        window, hold = self.fold_spans()
        # Fold keys -> packets in two generations of ``window`` each: a key unseen for two
        # windows is forgotten, at O(1) cost per event. A yielded packet is remembered as a
        # tuple (AppearanceCount, frame, direction): tuples of scalars leave the cyclic GC
        # alone, while tens of thousands of live lists would make every collection crawl.
        # A packet still waiting for a preferred copy is a list (see _HOLD_S).
        if resume is None:
            events, states = self.etl.events(walk_buffer, StreamState, self.note_offset)
            frame, live, older, generation_start = 0, {}, {}, 0
        else:
            events, states, frame, live, older, generation_start = resume
        queue: deque = deque()              # pktmon packets waiting for a preferred copy
        pending: dict = {}                  # (proc, miniport, lower) -> [ts, kw, bytearray]
        pm_dirs = PM_DIRS
        link_types = self.link_types
        armed = False
        try:
            for ev in events:
                if armed and not queue and not pending:
                    handback.append((ev, frame, live, older, generation_start))
                    return
                armed = handback is not None
                if ev[1] == PKTMON:
                    ts, _kind, eid, key, appearance, dirtag, ptype, orig, pstart, pend, body = ev
                    if appearance == 1:
                        e = None                # a first appearance is a new packet: no lookup
                    else:
                        e = live.get(key)
                        if e is None:
                            e = older.get(key)
                        if type(e) is int:
                            e = remembered(e)
                    if e is None or appearance <= e[0]:
                        if ts - generation_start > window:
                            older, live, generation_start = live, {}, ts
                        data = body[pstart:pend]
                        if ptype == 1:             # Ethernet as labelled (never seen wrong)
                            lt, good = 1, True
                        else:
                            lt = pktmon_linktype(ptype, data)
                            good = lt in _PREFERRED
                        direction = pm_dirs[dirtag & 7]
                        if good and not queue:
                            frame += 1
                            live[key] = e = (appearance, frame, direction)
                            if lt not in link_types:
                                link_types.add(lt)
                            self.records_read = frame
                            yield (frame, whole_s + (ts + tick_off) / 1e7 if linear
                                   else seconds(ts), lt, data,
                                   orig if orig > len(data) else len(data), direction)
                        else:
                            live[key] = e = [appearance, 0, direction, ts, data, lt, orig,
                                             good, None, key]
                            queue.append(e)
                    elif type(e) is list:
                        e[0] = appearance
                        if not e[7]:
                            data = body[pstart:pend]
                            lt = pktmon_linktype(ptype, data)
                            if lt in _PREFERRED:
                                e[4], e[5], e[6], e[7] = data, lt, orig, True
                    else:
                        live[key] = e = (appearance, e[1], e[2])
                    if eid == 170:                                    # drop
                        component, edge, _filter, reason, location = \
                            PKTMON_DROP_FIELDS.unpack_from(body, pstart - 18)
                        drop = (ts, component, edge, reason, location, e[2])
                        if e[1]:
                            self._drop(e[1], drop)
                        else:
                            e[8] = (e[8] or []) + [drop]
                    if queue:
                        while queue and (queue[0][7] or ts - queue[0][3] > hold):
                            w = queue.popleft()
                            frame += 1
                            done = (w[0], frame, w[2])
                            if live.get(w[9]) is w:
                                live[w[9]] = done
                            elif older.get(w[9]) is w:
                                older[w[9]] = done
                            yield self._pktmon_record(frame, w)
                    continue
                if ev[1] == NDIS_WHOLE:
                    ts, _kind, lt, data, direction = ev
                    frame += 1
                    if lt not in link_types:
                        link_types.add(lt)
                    self.records_read = frame
                    yield (frame, whole_s + (ts + tick_off) / 1e7 if linear
                           else seconds(ts), lt, data, len(data), direction)
                    continue
                ts, _kind, kw, miniport, lower, fstart, fend, body, proc = ev
                rkey = (proc, miniport, lower)
                if kw & KW_FRAGMENT_FIRST:
                    old = pending.pop(rkey, None)
                    if old is not None:
                        stats["incomplete"] += 1
                        frame += 1
                        yield self._ndis_record(frame, old)
                    pending[rkey] = [ts, kw, bytearray(body[fstart:fend])]
                    continue
                part = pending.get(rkey)
                if part is None:
                    stats["orphan"] += 1
                    continue
                part[2] += body[fstart:fend]
                if kw & KW_FRAGMENT_LAST:
                    del pending[rkey]
                    frame += 1
                    yield self._ndis_record(frame, part)
            while queue:
                frame += 1
                yield self._pktmon_record(frame, queue.popleft())
            for part in pending.values():
                stats["incomplete"] += 1
                frame += 1
                yield self._ndis_record(frame, part)
        finally:
            pktmon = sum(st.pktmon_events for st in states)
            ndis = sum(st.ndis_events for st in states)
            self.events_read = pktmon + ndis
            if pktmon:
                self.providers_seen.add("pktmon")
            if ndis:
                self.providers_seen.add("ndis")

    def note_offset(self, offset: int) -> None:
        if offset > self.bytes_read:
            self.bytes_read = offset

    def _drop(self, frame, drop):
        ts, component, edge, reason, location, direction = drop
        self.drops.append(EtlDrop(frame=frame, time=self.clock.seconds(ts), component=component,
                                  edge=edge, reason=reason, location=location,
                                  direction=direction))

    def _pktmon_record(self, frame, w):
        w[1] = frame
        for drop in w[8] or ():
            self._drop(frame, drop)
        w[8] = None
        return self._record(frame, w[3], w[5], w[4], w[6], w[2])

    def _ndis_record(self, frame, part):
        ts, kw, data = part
        data = bytes(data)
        return self._record(frame, ts, NDIS_LINKTYPES[kw & (KW_NATIVE_80211 | KW_WWAN_RAW_IP)],
                            data, len(data), NDIS_DIRECTIONS[(kw >> 32) & 3])

    def _record(self, frame, ts, lt, data, orig, direction):
        self.link_types.add(lt)
        self.records_read = frame
        return frame, self.clock.seconds(ts), lt, data, max(orig, len(data)), direction


__all__ = ["EtlCapture", "EtlDrop", "NDIS_GUID", "PKTMON_GUID", "sniff_etl",
           "pktmon_linktype"]
