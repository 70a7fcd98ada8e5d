"""The fused ETL reader: buffer walk, pktmon fold and decode in one loop. It is what
``EtlCapture.fast_packets`` returns, so ``facts.decode.iter_packets`` reads .etl this way;
``EtlCapture.records()`` runs the same loops and yields records instead of decoding.

Through the general path (``walk_buffer`` -> merge -> ``EtlCapture.fold_records``) a pktmon
packet costs an event tuple, a record tuple, a copy of its bytes and the general decoder.
Here, for a trace with one processor stream, one ``unpack_from`` per event reads the event
header and the pktmon fields together; a copy of the packet just passed (same
PktGroupId/PktNumber, higher AppearanceCount, logged back to back by the call chain that
carries the packet) is stepped over on those fields alone; the first copy of a packet is
folded and, when it is Ethernet/IPv4/TCP, decoded in place in the buffer (the inline
branch of ``fastpcap.iter_pcap``). Whole NDIS packets take the same road.

The first other event -- a drop, a Wi-Fi copy, a packet without PktGroupId, an NDIS
fragment, extended data items, damage -- hands the rest of the file to ``walk_buffer``
from that event on, with the fold state so far, and ``_fold_fast`` folds its events:
common ones in place, the others through ``fold_records``, which hands the stream back
as soon as no packet waits for a better copy or for its other fragments. Traces with
several processor streams need the timestamp merge of the walked events and take that
road from the start (``_merged``). Either way the records, packets, frame numbers, drops,
warnings and counters are those of the general path (tests compare them). With the
compiled ``_etlwalk`` built, ``etl_fastc.fused_c`` reads every trace instead (C walk per
buffer, C merge of the streams, C fold); the loops here are the fallback without it.
"""
from __future__ import annotations

from itertools import chain
from struct import Struct

from facts.decode import decode

from . import etl_fastc
from .etl import PM_DIRS
from .etl_events import (EXTENDED_INFO, KW_MEDIA, KW_WHOLE, NDIS_DIRECTIONS, NDIS_GUID,
                         NDIS_LINKTYPES, NDIS_WHOLE, PKTMON, PKTMON_GUID, SIZE_AT_4,
                         StreamState, walk_buffer)
from .fastpcap import LAYOUTS, fast_segment

# The EVENT_HEADER fields of etl_events._EVT, then at +80 the pktmon fields of
# etl_events._PKTMON (PktGroupId, PktNumber, AppearanceCount, DirTag, PacketType,
# OriginalPayloadSize, LoggedPayloadSize). For an NDIS event the same bytes are
# MiniportIfIndex | LowerIfIndex << 32 and FragmentSize (low, high half).
# (Header type and marker are read as one little-endian word; literals in the loop below:
# 114 = this struct's size, 92 = NDIS's 80 + 12, flag 1 = extended data items, keyword
# 0xC0000000 = first and last fragment, event ids 160/170 pktmon flow/drop, 1001 NDIS.)
_HOT = Struct("<HHH10xq16sH6xQ24xQHHHH14xHH")
_HOT_LEN = _HOT.size
assert _HOT_LEN == 114 and EXTENDED_INFO == 1 and KW_WHOLE == 0xC0000000
_EVT = Struct("<HBBH18x16sH")                         # size, type, marker, flags, guid, id
_U16 = Struct("<H")
_U32 = Struct("<I")
_END, _STOP = -1, -2


def iter_fused(cap, records: bool = False):
    """Decoded packets of an ``EtlCapture`` (see the module text); with ``records`` its
    ``(frame, ts, linktype, data, origlen, direction)`` records instead."""
    if etl_fastc.available():
        return etl_fastc.fused_c(cap, records, _decoded, _count_events)
    streams = cap.etl.streams()
    if len(streams) != 1:
        return _merged(cap, records)
    return _fused(cap, next(iter(streams.values())), records)


def record_batches(cap):
    """``records()``, with the compiled walk in batches for ``_ctrack.track_frame_batches``
    (see ``etl_fastc.fused_c``); without it, the records one at a time."""
    if etl_fastc.available():
        return etl_fastc.fused_c(cap, True, _decoded, _count_events, batches=True)
    return iter_fused(cap, records=True)


def _decoded(records):
    layout = LAYOUTS[1]
    fast = fast_segment
    for frame, ts, lt, data, origlen, direction in records:
        if lt == 1:
            seg = fast(data, 0, len(data), frame, ts, direction, layout)
            if seg is not None:
                yield seg
                continue
        pkt = decode(lt, data, frame, ts, origlen, direction)
        if pkt is not None:
            yield pkt


def _merged(cap, records):
    """Several processor streams: ``walk_buffer`` (which already drops back-to-back copies)
    and the timestamp merge, then ``_fold_fast``."""
    stats = cap.start_pass()
    events, states = cap.etl.events(walk_buffer, StreamState, cap.note_offset)
    try:
        yield from _fold_fast(cap, records, stats, events, states, 0, {}, {}, 0)
        cap.bytes_read = cap.etl.file_size
    finally:
        _count_events(cap, states)
        cap.finish_pass(stats)


def _count_events(cap, states):
    pktmon = sum(st.pktmon_events for st in states)
    ndis = sum(st.ndis_events for st in states)
    cap.events_read = pktmon + ndis
    if pktmon:
        cap.providers_seen.add("pktmon")
    if ndis:
        cap.providers_seen.add("ndis")


def _fold_fast(cap, records, stats, events, states, frame, live, older, generation_start):
    """The fold of ``fold_records`` for the common events of a walked event stream, with
    in-place decoding. The first other event goes to ``fold_records`` with the state so
    far; it hands back once no packet waits, and this loop goes on from there."""
    clock = cap.clock
    seconds, linear = clock.seconds, clock.linear
    whole_s, tick_off = clock.whole_seconds, clock.tick_offset
    window, _hold = cap.fold_spans()
    pm_dirs = PM_DIRS
    link_types = cap.link_types
    last_lt = None
    layout = LAYOUTS[1]
    fast = fast_segment
    stream = events
    in_fast = True
    try:
        while True:
            for ev in stream:
                kind = ev[1]
                if kind == PKTMON:
                    ts, _kind, eid, key, app, dirtag, ptype, orig, start, end, body = ev
                    if eid != 160 or ptype != 1 and ptype != 3:
                        break                   # a drop, a Wi-Fi or unknown copy
                    if app != 1:
                        e = live.get(key)
                        if e is None:
                            e = older.get(key)
                        if e is not None and app > e[0]:                # a later copy
                            live[key] = (app, e[1], e[2])
                            continue
                    if ts - generation_start > window:
                        older, live, generation_start = live, {}, ts
                    direction = pm_dirs[dirtag & 7]
                    frame += 1
                    live[key] = (app, frame, direction)
                    lt = 1 if ptype == 1 else 101
                elif kind == NDIS_WHOLE:
                    ts, _kind, lt, body, direction = ev
                    frame += 1
                    start, end, orig = 0, len(body), 0
                else:
                    break                       # an NDIS fragment
                if lt != last_lt:
                    link_types.add(lt)
                    last_lt = lt
                tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
                if records:
                    data = body[start:end]
                    cap.records_read = frame
                    yield (frame, tsf, lt, data, orig if orig > len(data) else len(data),
                           direction)
                    continue
                if lt == 1:
                    seg = fast(body, start, end, frame, tsf, direction, layout)
                    if seg is not None:
                        yield seg
                        continue
                pkt = decode(lt, body[start:end], frame, tsf, orig, direction)
                if pkt is not None:
                    yield pkt
            else:
                return
            # fold_records may read to the end yielding nothing (a last drop): the count
            # of the packets so far must already stand.
            cap.records_read = frame
            in_fast = False
            back: list = []
            folded = cap.fold_records(stats, (chain((ev,), events), states, frame, live, older,
                                              generation_start), back)
            yield from folded if records else _decoded(folded)
            if not back:
                return                          # the fold read to the end (and counted)
            ev, frame, live, older, generation_start = back[0]
            in_fast = True
            stream = chain((ev,), events)   # never nested: always onto ``events``
    finally:
        if in_fast:
            cap.records_read = frame


def _other_record(body, p, n):
    """Where a record the fused loop does not read itself ends: the next offset, _END for
    the unused tail of the buffer, _STOP when the general walk must judge it (a packet
    event it would read, or damage it reports). Mirrors ``etl_events.walk_buffer``."""
    htype, marker = body[p + 2], body[p + 3]
    if not ((htype == 0x13 or htype == 0x12) and marker & 0x80):
        word = _U32.unpack_from(body, p)[0]
        if word == 0xFFFFFFFF or word == 0:
            return _END
        size = _U16.unpack_from(body, p + 4 if htype in SIZE_AT_4 else p)[0]
        if size < 8 or p + size > n:
            return _STOP
        return p + ((size + 7) & ~7)
    size = _U16.unpack_from(body, p)[0]
    if size < 80 or p + size > n:
        return _STOP
    nxt = p + ((size + 7) & ~7)
    if p + 56 > n:
        return nxt                      # the walk reads no provider here: stepped over
    _size, _t, _m, flags, guid, eid = _EVT.unpack_from(body, p)
    if guid == PKTMON_GUID:
        if eid != 160 and eid != 170 or (not flags & EXTENDED_INFO and size < _HOT_LEN):
            return nxt
        return _STOP
    return _STOP if guid == NDIS_GUID else nxt


def _fused(cap, entries, records):
    stats = cap.start_pass()
    etl = cap.etl
    clock = cap.clock
    seconds, linear = clock.seconds, clock.linear
    whole_s, tick_off = clock.whole_seconds, clock.tick_offset
    window, _hold = cap.fold_spans()
    pm_dirs = PM_DIRS
    live: dict = {}
    older: dict = {}
    generation_start = frame = 0
    link_types = cap.link_types
    state = StreamState()
    pm_events = nd_events = 0
    last_group = last_number = None
    last_app = 0
    unpack = _HOT.unpack_from
    fast_seg, eth_layout = fast_segment, LAYOUTS[1]
    pktmon_guid, ndis_guid = PKTMON_GUID, NDIS_GUID
    ndis_lts, ndis_dirs, media = NDIS_LINKTYPES, NDIS_DIRECTIONS, KW_MEDIA
    last_lt = None
    in_fast = True
    try:
        with open(etl.path, "rb") as f:
            for index, (off, hdr) in enumerate(entries):
                body = etl.read_body(f, off, hdr)
                cap.note_offset(min(off + hdr[0], etl.file_size))
                n = len(body)
                p = 0
                limit = n - 114                 # an event header + pktmon fields fit
                while True:
                    if p > limit:
                        if p + 8 > n:
                            p = -1              # the end of the body
                            break
                        q = _other_record(body, p, n)
                        if q >= 0:
                            p = q
                            continue
                        if q == _END:
                            p = -1
                        break
                    (size, hm, flags, ts, guid, eid, kw, group, number, app, dirtag, ptype,
                     orig, logged) = unpack(body, p)
                    # hm & 0x80FE == 0x8012: header type 0x12/0x13 with the 0x80 marker bit.
                    if hm & 0x80FE != 0x8012 or size < 80 or p + size > n:
                        q = _other_record(body, p, n)
                        if q >= 0:
                            p = q
                            continue
                        if q == _END:
                            p = -1
                        break
                    if guid == pktmon_guid:
                        if (eid == 160 and number == last_number and group == last_group
                                and app > last_app and size >= 114 and not flags & 1):
                            pm_events += 1                          # a back-to-back copy
                            last_app = app
                            p += (size + 7) & ~7
                            continue
                        if eid != 160:
                            if eid != 170:
                                p += (size + 7) & ~7
                                continue
                            break                                   # a drop
                        if flags & 1 or not group:                  # extended data items
                            break
                        if size < 114:
                            p += (size + 7) & ~7
                            continue
                        if ptype != 1 and ptype != 3:
                            break                                   # Wi-Fi or unknown
                        pm_events += 1
                        last_group, last_number, last_app = group, number, app
                        key = (group << 16) | number
                        if app != 1:
                            e = live.get(key)
                            if e is None:
                                e = older.get(key)
                            if e is not None and app > e[0]:        # a later copy
                                live[key] = (app, e[1], e[2])
                                p += (size + 7) & ~7
                                continue
                        if ts - generation_start > window:
                            older, live, generation_start = live, {}, ts
                        direction = pm_dirs[dirtag & 7]
                        frame += 1
                        live[key] = (app, frame, direction)
                        start = p + 114
                        end = start + logged
                        if end > p + size:
                            end = p + size
                        lt = 1 if ptype == 1 else 101
                    elif guid == ndis_guid:
                        if flags & 1:
                            break
                        if eid != 1001 or size < 92:
                            p += (size + 7) & ~7
                            continue
                        if kw & 0xC0000000 != 0xC0000000:
                            break                                   # a fragment
                        nd_events += 1
                        frame += 1
                        start = p + 92
                        end = start + (number | app << 16)
                        if end > p + size:
                            end = p + size
                        lt = ndis_lts[kw & media]
                        direction = ndis_dirs[(kw >> 32) & 3]
                        orig = 0
                    else:
                        p += (size + 7) & ~7
                        continue
                    p += (size + 7) & ~7
                    if lt != last_lt:
                        link_types.add(lt)
                        last_lt = lt
                    tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
                    if records:
                        data = body[start:end]
                        cap.records_read = frame
                        yield (frame, tsf, lt, data, orig if orig > len(data) else len(data),
                               direction)
                        continue
                    # As fastpcap.iter_pcap: Ethernet/IPv4/TCP decoded in place.
                    if lt == 1:
                        seg = fast_seg(body, start, end, frame, tsf, direction, eth_layout)
                        if seg is not None:
                            yield seg
                            continue
                    pkt = decode(lt, body[start:end], frame, tsf, orig, direction)
                    if pkt is not None:
                        yield pkt
                # p >= 0: a break at an event this loop leaves to the general fold.
                cap.records_read = frame
                if p >= 0:
                    # The walk takes over at the event in hand (with its back-to-back state:
                    # in this loop every packet passed was preferred), folded by _fold_fast.
                    key = None if last_group is None else (last_group << 16) | last_number
                    state.last = (key, last_app, key is not None)
                    state.pktmon_events += pm_events
                    state.ndis_events += nd_events
                    pm_events = nd_events = 0
                    in_fast = False
                    events = etl.resume_events(walk_buffer, state, index, body, p,
                                               cap.note_offset)
                    yield from _fold_fast(cap, records, stats, events, [state], frame, live,
                                          older, generation_start)
                    break
        cap.bytes_read = etl.file_size
    finally:
        if in_fast:
            cap.records_read = frame
        state.pktmon_events += pm_events
        state.ndis_events += nd_events
        _count_events(cap, [state])
        cap.finish_pass(stats)
