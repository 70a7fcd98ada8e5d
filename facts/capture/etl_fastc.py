"""The compiled-path reader of .etl files (``_etlwalk``): walk, time merge, fold and
records or decoding, for traces with one processor stream or several.

Per processor stream, each buffer is walked by ``_etlwalk.walk``, a piece of
``MERGE_PIECE`` items at a time, each just before it is used. The walk steps over the
records the loop never reads and over pktmon back-to-back copies and hands back compact
items ``(ts, key, app, code, dir, orig, start, end, body, extra)``: key None for a whole
NDIS packet; ``extra`` what the loop needs of the frame, copied while the walk has it in
the CPU caches: reading records, its bytes (also standing for the body, so that each
stream reads its buffers into one reused buffer); decoding, the header fields and payload
of a frame ``fastpcap.fast_segment`` would decode (so that the loop builds the
``TcpSegment`` without a struct unpack). Where the walk stops at an event the general walk must judge (a
drop, a Wi-Fi copy, a packet without PktGroupId, an NDIS fragment, extended data items,
damage), ``walk_buffer`` walks the rest of that buffer only, with the same back-to-back
state, and its common events are turned into the compact form (``_stream``). Several
streams are merged by time exactly as ``EtlFile.events`` merges ``walk_buffer``'s lists
(``merge_streams`` over lists cut at the same places, so events of equal timestamps get the
same frame numbers); one stream is read in file order. ``_etlwalk.fold`` folds each list's
compact items (later copies -- of another processor, or not back to back -- through the
fold dicts ``live``/``older`` as everywhere); the loop decodes what it keeps, or reading
records, ``_etlwalk.records`` makes their records (in C, as they are taken). The first
event of the general form hands the stream to ``EtlCapture.fold_records``, which hands it
back once no packet waits. Records, packets, frame numbers, drops, warnings and counters
are those of ``general_records`` (tests compare them).

``available()`` is False when the extension was not built (``setup.py`` marks it optional)
or ``RSTSLEUTH_NO_CEXT`` is set; ``etl_fast`` then runs its Python loops.
"""
from __future__ import annotations

from itertools import chain

from facts.decode import decode
from facts.packet import TcpSegment

from . import etl_buffers
from .etl import PM_DIRS
from .etl_buffers import compiled, merge_streams
from .etl_events import (KW_MEDIA, KW_NATIVE_80211, KW_WWAN_RAW_IP, NDIS_DIRECTIONS,
                         NDIS_GUID, NDIS_LINKTYPES, NDIS_WHOLE, PKTMON, PKTMON_GUID, SIZE_AT_4,
                         StreamState, walk_buffer)

_walk = compiled("walk")
_fold = compiled("fold")
_records = compiled("records")

# The C side hard-codes the media mask it returns for NDIS packets.
assert KW_MEDIA == 0x10200
SIZE_AT_4_TABLE = bytes(1 if i in SIZE_AT_4 else 0 for i in range(256))


def available() -> bool:
    return _walk is not None and _fold is not None and _records is not None


# A whole NDIS packet of walk_buffer's form back to the keyword bits the C walk returns.
_NDIS_CODES = {1: 0, 101: KW_WWAN_RAW_IP, 105: KW_NATIVE_80211}
_NDIS_DCODES = {None: 0, "out": 1, "in": 2}
assert all(NDIS_LINKTYPES[c] == lt for lt, c in _NDIS_CODES.items())
assert all(NDIS_DIRECTIONS[c] == d for d, c in _NDIS_DCODES.items())


def _compact(ev):
    """A ``walk_buffer`` event in the C walk's item form when the merged loop reads it
    itself (a pktmon Ethernet/raw-IP flow copy with a PktGroupId, a whole NDIS packet);
    any other event unchanged. Compact items have ``key`` (index 1) None or > 3, general
    events their kind (1-3) there."""
    kind = ev[1]
    if kind == PKTMON:
        ts, _kind, eid, key, app, dirtag, ptype, orig, start, end, body = ev
        if eid == 160 and key > 0 and (ptype == 1 or ptype == 3):
            return (ts, key, app, 1 if ptype == 1 else 101, dirtag & 7, orig, start, end, body,
                    None)
    elif kind == NDIS_WHOLE:
        ts, _kind, lt, data, direction = ev
        return (ts, None, 0, _NDIS_CODES[lt], _NDIS_DCODES[direction], 0, 0, len(data), data,
                None)
    return ev


def _general_item(ev):
    """A merged item in ``walk_buffer``'s form, for ``fold_records``."""
    key = ev[1]
    if key is None:
        ts, _key, _app, code, dcode, _orig, start, end, body, _extra = ev
        return ts, NDIS_WHOLE, NDIS_LINKTYPES[code], body[start:end], NDIS_DIRECTIONS[dcode]
    if key > 3:
        ts, key, app, code, dcode, orig, start, end, body, _extra = ev
        return ts, PKTMON, 160, key, app, dcode, 1 if code == 1 else 3, orig, start, end, body
    return ev


def _general(events):
    """The merged items in ``walk_buffer``'s form, for ``fold_records``."""
    return map(_general_item, events)


def _general_from(cur, merged):
    """The items from index ``cur[1]`` of list ``cur[0]`` on, then those of the lists left
    in ``merged``, in ``walk_buffer``'s form; ``cur`` is kept at the list and index of the
    item last handed out (where the fast loop goes on when ``fold_records`` hands back)."""
    lst, i = cur
    while True:
        for i in range(i, len(lst)):
            cur[1] = i
            yield _general_item(lst[i])
        lst = next(merged, None)
        if lst is None:
            return
        cur[0] = lst
        i = 0


def _stream(etl, entries, proc, state, progress, extra=0):
    """One processor's stream as lists of items, each buffer's cut into pieces of
    ``MERGE_PIECE`` items exactly as ``etl_buffers._pieces`` cuts ``walk_buffer``'s list of
    it (see the module text). The
    C walk's back-to-back state (last PktGroupId, PktNumber, AppearanceCount, None
    until a preferred copy was passed) and ``state.last`` of ``walk_buffer`` are handed
    over to each other where one takes over from the other. ``extra``: what the C walk
    puts last in its items (see _etlwalk.walk; None in those of ``walk_buffer``: the loop
    then slices and decodes the body itself)."""
    walk = _walk
    pktmon_guid, ndis_guid, size_at_4 = PKTMON_GUID, NDIS_GUID, SIZE_AT_4_TABLE
    piece = etl_buffers.MERGE_PIECE
    last_group = None
    last_number = last_app = 0
    # extra 3: the items hold their frames' bytes, not the body, so one buffer per stream
    # takes each next body (EtlFile.bodies' reuse)
    reuse = extra == 3
    for off, hdr, body in etl.bodies(entries, progress, reuse):
        p = 0
        pieces = 0
        while True:
            # Walked a piece at a time, each just before the merge (or, for one stream,
            # the loop) takes it: a whole buffer of items made at once would have left the
            # CPU caches by then (1.4x pcap instead of 0.9x for one stream of 1 MB
            # buffers). A full piece may also have stopped before an event the general
            # walk judges; the next call then returns no items, p unchanged.
            items, p, last_group, last_number, last_app, pm, nd = walk(
                body, p, last_group, last_number, last_app, pktmon_guid, ndis_guid,
                size_at_4, extra, piece)
            state.pktmon_events += pm
            state.ndis_events += nd
            if p >= 0 and len(items) == piece:
                pieces += 1
                yield items
                continue
            break
        if p >= 0:
            key = None if last_group is None else (last_group << 16) | last_number
            state.last = (key, last_app, key is not None)
            # walk_buffer's events keep the body: a copy of a reused one
            items += map(_compact, walk_buffer(bytes(body) if reuse else body, off, proc,
                                               etl.is_cut(off, hdr), state, etl.problem, p))
            key, last_app, good = state.last
            # The C walk steps over copies only after a preferred copy with a PktGroupId
            # (walk_buffer's key of a packet without one is negative).
            if good and key is not None and key > 0:
                last_group, last_number = key >> 16, key & 0xFFFF
            else:
                last_group = None
            for i in range(piece, len(items), piece):
                pieces += 1
                yield items[i - piece:i]
            items = items[(len(items) - 1) // piece * piece:] if items else items
        if items or not pieces:             # as etl_buffers._pieces cuts the buffer's list
            yield items


def fused_c(cap, records, decoded, count_events, batches=False):
    """Decoded packets (or with ``records`` the records) of an ``EtlCapture`` (see the
    module text; ``decoded``/``count_events`` are etl_fast's, passed in to keep the import
    one-way). The records of each list the fold kept are made in C (``_etlwalk.records``,
    one iterator per list, chained: no Python step per record). With ``batches`` (and
    ``records``) each such list is handed over as one batch ``(kept, frame, ctx)`` for
    ``_ctrack.track_frame_batches`` instead, which makes the records itself (frame + 1 on,
    clock, link types and directions from ``ctx``). The records of the general fold
    (drops, damage, fragments...) come one tuple at a time either way."""
    loop = _loop(cap, "batches" if batches else "records" if records else "packets",
                 decoded, count_events)
    return chain.from_iterable(loop) if records and not batches else loop


def _loop(cap, mode, decoded, count_events):
    """fused_c's loop. mode "packets": decoded packets; "records": iterables of records
    (for chain.from_iterable); "batches": batches and records (see fused_c)."""
    stats = cap.start_pass()
    etl = cap.etl
    streams = etl.streams()
    states = [StreamState() for _ in streams]
    # batches: the C side reads each frame in the buffer, so the walk copies nothing
    extra = {"batches": 0, "records": 3, "packets": 1}[mode]
    lists = [_stream(etl, entries, proc, state, cap.note_offset, extra)
             for (proc, entries), state in zip(streams.items(), states)]
    merged = merge_streams(lists) if len(lists) > 1 else iter(lists[0] if lists else ())
    clock = cap.clock
    seconds, linear = clock.seconds, clock.linear
    whole_s, tick_off = clock.whole_seconds, clock.tick_offset
    window, _hold = cap.fold_spans()
    pm_dirs = PM_DIRS
    live: dict = {}
    older: dict = {}
    generation_start = frame = 0
    link_types = cap.link_types
    new = TcpSegment.__new__
    Seg = TcpSegment
    ndis_lts, ndis_dirs = NDIS_LINKTYPES, NDIS_DIRECTIONS
    fold, make_records = _fold, _records
    packets, batches = mode == "packets", mode == "batches"
    last_lt = None
    lst: list = []
    i = 0
    in_fast = True
    ctx = (linear, whole_s, tick_off, seconds, ndis_lts, ndis_dirs, pm_dirs, link_types)
    try:
        while True:
            if i >= len(lst):
                lst = next(merged, None)
                if lst is None:
                    break                   # the end of the merged stream
                i = 0
            # The fold of the compact items is compiled (_etlwalk.fold): it stops at the
            # first event of walk_buffer's general form, at index i.
            kept, i, _end_frame, live, older, generation_start = fold(
                lst, i, frame, live, older, generation_start, window, pm_dirs)
            if kept and not packets:
                if batches:
                    # bytes_read (what a tick reports) stands still until the next list
                    # is taken, as it does while records mode yields this one's records
                    cap.records_read = frame + len(kept)
                    yield kept, frame, ctx
                else:
                    # the iterator sets records_read as it hands out each record
                    yield make_records(kept, frame, ctx, cap)
                frame += len(kept)
                kept = ()
            for ts, key, _app, code, dcode, orig, start, end, body, extra in kept:
                frame += 1
                if key is None:
                    lt = ndis_lts[code]
                    direction = ndis_dirs[dcode]
                else:
                    lt = code
                    direction = pm_dirs[dcode]
                if lt != last_lt:
                    link_types.add(lt)
                    last_lt = lt
                tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
                if extra is not None:
                    # fastpcap.fast_segment, with the header fields read by the C walk.
                    (src, dst, sport, dport, ttl, ip_id, seq, ack, tflags, reserved, win, plen,
                     payload, truncated) = extra
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
                    seg.reserved = reserved
                    seg.window = win
                    seg.fragmented = False
                    seg.direction = direction
                    seg.payload_len = plen
                    seg.truncated = truncated
                    seg.payload = payload
                    yield seg
                    continue
                pkt = decode(lt, body[start:end], frame, tsf, orig, direction)
                if pkt is not None:
                    yield pkt
            if i >= len(lst):
                continue
            # lst[i] is of walk_buffer's general form: fold_records judges it and what
            # follows, and hands back (at cur: the list and index of the event it stopped
            # before) once no packet waits. It may read to the end yielding nothing (a
            # last drop): the count of the packets so far must already stand.
            cap.records_read = frame
            in_fast = False
            back: list = []
            cur = [lst, i]
            folded = cap.fold_records(stats, (_general_from(cur, merged), states, frame, live,
                                              older, generation_start), back)
            if packets:
                yield from decoded(folded)
            elif batches:
                yield from folded
            else:
                yield folded                # its records, one at a time (records_read too)
            if not back:
                break                       # the fold read to the end
            _ev, frame, live, older, generation_start = back[0]
            lst, i = cur
            in_fast = True
        cap.bytes_read = etl.file_size
    finally:
        if in_fast and mode != "records":
            cap.records_read = frame
        count_events(cap, states)
        cap.finish_pass(stats)
