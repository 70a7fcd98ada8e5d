"""``etl_fast._fused`` with its stepping done by the compiled ``_etlwalk.walk``.

In a pktmon trace with 3 component copies per packet, a Python loop that merely steps
through the events (one ``unpack_from`` each) costs as much as a whole pcap pass. The C
walk steps over the records the loop never reads and over back-to-back copies, and hands
back per buffer the events left: ``(ts, key, app, code, dir, orig, start, end)``, key None
for a whole NDIS packet. Everything else -- the fold dicts and window, the clock, the
decoding, the hand-over to the general walk where the C walk stops -- is the Python
loop's, unchanged; tests compare this loop with the Python one and the general path.

``available()`` is False when the extension was not built (``setup.py`` marks it optional)
or ``RSTSLEUTH_NO_CEXT`` is set; ``etl_fast`` then runs its Python loop.
"""
from __future__ import annotations

import os

from facts.decode import decode
from facts.packet import TcpSegment

from .etl import PM_DIRS
from .etl_events import (KW_MEDIA, NDIS_DIRECTIONS, NDIS_GUID, NDIS_LINKTYPES, PKTMON_GUID,
                         SIZE_AT_4, StreamState, walk_buffer)
from .fastpcap import LAYOUTS

try:
    if os.environ.get("RSTSLEUTH_NO_CEXT"):
        raise ImportError("RSTSLEUTH_NO_CEXT is set")
    from ._etlwalk import walk as _walk
except ImportError:
    _walk = None

# The C side hard-codes the media mask it returns for NDIS packets.
assert KW_MEDIA == 0x10200
SIZE_AT_4_TABLE = bytes(1 if i in SIZE_AT_4 else 0 for i in range(256))


def available() -> bool:
    return _walk is not None


def compiled_walk():
    """``_etlwalk.walk`` (None when not ``available()``); ``etl_mergec`` walks with it."""
    return _walk


def fused_c(cap, entries, records, fold_fast, count_events):
    """``etl_fast._fused`` over ``_etlwalk.walk`` (``fold_fast``/``count_events`` are
    etl_fast's, passed in to keep the import one-way)."""
    walk = _walk
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
    last_group = None
    last_number = last_app = 0
    eth_unpack = LAYOUTS[1][0].unpack_from
    new = TcpSegment.__new__
    Seg = TcpSegment
    pktmon_guid, ndis_guid, size_at_4 = PKTMON_GUID, NDIS_GUID, SIZE_AT_4_TABLE
    ndis_lts, ndis_dirs = NDIS_LINKTYPES, NDIS_DIRECTIONS
    last_lt = None
    in_fast = True
    try:
        with open(etl.path, "rb") as f:
            for index, (off, hdr) in enumerate(entries):
                body = etl.read_body(f, off, hdr)
                cap.note_offset(min(off + hdr[0], etl.file_size))
                (items, p, last_group, last_number, last_app, pm, nd) = walk(
                    body, 0, last_group, last_number, last_app, pktmon_guid, ndis_guid,
                    size_at_4)
                pm_events += pm
                nd_events += nd
                for ts, key, app, code, dcode, orig, start, end in items:
                    if key is not None:
                        if app != 1:
                            e = live.get(key)
                            if e is None:
                                e = older.get(key)
                            if e is not None and app > e[0]:        # a later copy
                                live[key] = (app, e[1], e[2])
                                continue
                        if ts - generation_start > window:
                            older, live, generation_start = live, {}, ts
                        direction = pm_dirs[dcode]
                        frame += 1
                        live[key] = (app, frame, direction)
                        lt = code
                    else:
                        frame += 1
                        lt = ndis_lts[code]
                        direction = ndis_dirs[dcode]
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
                    # fastpcap.fast_segment, inlined on purpose: this loop exists for speed
                    # and a call per packet costs ~15 % here (bench_etl.py).
                    if lt == 1 and end - start >= 54:
                        (etype, vihl, totlen, ip_id, frag, ttl, proto, src, dst, sport,
                         dport, seq, ack, off_res, tflags, win) = eth_unpack(body, start)
                        if (etype == 0x0800 and vihl == 0x45 and proto == 6
                                and not frag & 0x3FFF and totlen >= 40 and off_res >= 0x50):
                            seg = new(Seg)
                            seg.frame = frame
                            seg.ts = tsf
                            seg.ipv = 4
                            seg.src = src
                            seg.dst = dst
                            seg.sport = sport
                            seg.dport = dport
                            seg.ttl = ttl
                            seg.ip_id = ip_id
                            seg.seq = seq
                            seg.ack = ack
                            seg.flags = tflags
                            seg.reserved = off_res & 0x0F
                            seg.window = win
                            seg.fragmented = False
                            seg.direction = direction
                            doff = (off_res >> 4) << 2
                            plen = totlen - 20 - doff
                            seg.payload_len = plen if plen > 0 else 0
                            data_start = start + 34 + doff
                            ip_end = start + 14 + totlen
                            if ip_end <= end:
                                seg.truncated = False
                                seg.payload = body[data_start:ip_end] if plen > 0 else b""
                            else:
                                seg.truncated = True
                                seg.payload = body[data_start:end] if end > data_start \
                                    else b""
                            yield seg
                            continue
                    pkt = decode(lt, body[start:end], frame, tsf, orig, direction)
                    if pkt is not None:
                        yield pkt
                cap.records_read = frame
                if p >= 0:
                    # The C walk stopped at an event the general walk judges: as in
                    # etl_fast._fused, it takes over there with the back-to-back state.
                    key = None if last_group is None else (last_group << 16) | last_number
                    state.last = (key, last_app, key is not None)
                    state.pktmon_events += pm_events
                    state.ndis_events += nd_events
                    pm_events = nd_events = 0
                    in_fast = False
                    events = etl.resume_events(walk_buffer, state, index, body, p,
                                               cap.note_offset)
                    yield from fold_fast(cap, records, stats, events, [state], frame, live,
                                         older, generation_start)
                    break
        cap.bytes_read = etl.file_size
    finally:
        if in_fast:
            cap.records_read = frame
        state.pktmon_events += pm_events
        state.ndis_events += nd_events
        count_events(cap, [state])
        cap.finish_pass(stats)
