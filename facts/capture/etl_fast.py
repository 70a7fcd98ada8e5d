"""The fused ETL reader: buffer walk, pktmon fold and decode in one loop. It is what
``EtlCapture.fast_packets`` returns, so ``facts.decode.iter_packets`` reads .etl this way;
``EtlCapture.records()`` runs the same loop and yields records instead of decoding.

Through ``records()`` a pktmon packet costs an event tuple per copy, a record tuple, a
copy of its bytes and the general decoder. Here, for a trace with one processor stream,
one ``unpack_from`` per event reads the event header and the pktmon fields together; a
copy of the packet just passed (same PktGroupId/PktNumber, higher AppearanceCount, logged
back to back by the call chain that carries the packet) is stepped over on those fields
alone; the first copy of a packet is folded and, when it is Ethernet/IPv4/TCP, decoded in
place in the buffer. Whole NDIS packets take the same road.

Anything else -- a drop, a Wi-Fi copy, a packet without PktGroupId, an NDIS fragment,
extended data items, damage -- hands the rest of the file, from that event on and with
the fold state so far, to the general fold (``EtlCapture.fold_records``), whose records
are then decoded one by one; traces with several processor streams need the timestamp
merge and take that road from the start. Either way the packets, frame numbers, drops,
warnings and counters are those ``records()`` + ``facts.decode.decode`` give (tests
compare them).
"""
from __future__ import annotations

from struct import Struct

from facts.decode import decode
from facts.packet import TcpSegment

from .etl import PM_DIRS
from .etl_events import (EXTENDED_INFO, KW_MEDIA, KW_WHOLE, NDIS_DIRECTIONS, NDIS_GUID,
                         NDIS_LINKTYPES, PKTMON_GUID, SIZE_AT_4, StreamState, walk_buffer)
from .fastpcap import LAYOUTS, fast_segment

# The EVENT_HEADER fields of etl_events._EVT, then at +80 the pktmon fields of
# etl_events._PKTMON (PktGroupId, PktNumber, AppearanceCount, DirTag, PacketType,
# OriginalPayloadSize, LoggedPayloadSize). For an NDIS event the same bytes are
# MiniportIfIndex | LowerIfIndex << 32 and FragmentSize (low, high half).
_HOT = Struct("<HBBH10xq16sH6xQ24xQHHHH14xHH")
_HOT_LEN = _HOT.size                                  # 114 = 80 + pktmon's 34
_EVT = Struct("<HBBH18x16sH")                         # size, type, marker, flags, guid, id
_U16 = Struct("<H")
_U32 = Struct("<I")
_END, _STOP = -1, -2


def iter_fused(cap, records: bool = False):
    """Decoded packets of an ``EtlCapture`` (see the module text); with ``records`` its
    ``(frame, ts, linktype, data, origlen, direction)`` records instead."""
    streams = cap.etl.streams()
    if len(streams) != 1:
        return _general_pass(cap, records)
    return _fused(cap, next(iter(streams.values())), records)


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


def _general_pass(cap, records):
    stats = cap.start_pass()
    try:
        folded = cap.fold_records(stats)
        yield from folded if records else _decoded(folded)
        cap.bytes_read = cap.etl.file_size
    finally:
        cap.finish_pass(stats)


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
    eth_unpack = LAYOUTS[1][0].unpack_from
    new = TcpSegment.__new__
    Seg = TcpSegment
    ext = EXTENDED_INFO
    pktmon_guid, ndis_guid = PKTMON_GUID, NDIS_GUID
    handed = False
    try:
        with open(etl.path, "rb") as f:
            for index, (off, hdr) in enumerate(entries):
                body = etl.read_body(f, off, hdr)
                cap.note_offset(min(off + hdr[0], etl.file_size))
                n = len(body)
                p = 0
                while p + 8 <= n:
                    if p + _HOT_LEN > n:
                        q = _other_record(body, p, n)
                        if q >= 0:
                            p = q
                            continue
                        if q == _END:
                            p = -1
                        break
                    (size, htype, marker, flags, ts, guid, eid, kw, group, number, app,
                     dirtag, ptype, orig, logged) = unpack(body, p)
                    if not ((htype == 0x13 or htype == 0x12) and marker & 0x80) \
                            or size < 80 or p + size > n:
                        q = _other_record(body, p, n)
                        if q >= 0:
                            p = q
                            continue
                        if q == _END:
                            p = -1
                        break
                    if guid == pktmon_guid:
                        if eid != 160:
                            if eid != 170:
                                p += (size + 7) & ~7
                                continue
                            break                                   # a drop
                        if flags & ext or not group:
                            break
                        if size < _HOT_LEN:
                            p += (size + 7) & ~7
                            continue
                        if number == last_number and group == last_group and app > last_app:
                            pm_events += 1                          # a back-to-back copy
                            last_app = app
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
                        start = p + _HOT_LEN
                        end = start + logged
                        if end > p + size:
                            end = p + size
                        lt = 1 if ptype == 1 else 101
                        p += (size + 7) & ~7
                        if lt not in link_types:
                            link_types.add(lt)
                        tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
                    elif guid == ndis_guid:
                        if flags & ext:
                            break
                        if eid != 1001 or size < 92:
                            p += (size + 7) & ~7
                            continue
                        if kw & KW_WHOLE != KW_WHOLE:
                            break                                   # a fragment
                        nd_events += 1
                        frame += 1
                        start = p + 92
                        end = start + (number | app << 16)
                        if end > p + size:
                            end = p + size
                        lt = NDIS_LINKTYPES[kw & KW_MEDIA]
                        direction = NDIS_DIRECTIONS[(kw >> 32) & 3]
                        orig = 0
                        p += (size + 7) & ~7
                        if lt not in link_types:
                            link_types.add(lt)
                        tsf = whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts)
                    else:
                        p += (size + 7) & ~7
                        continue
                    if records:
                        data = body[start:end]
                        cap.records_read = frame
                        yield (frame, tsf, lt, data, orig if orig > len(data) else len(data),
                               direction)
                        continue
                    # From here as fastpcap.iter_pcap: Ethernet/IPv4/TCP decoded in place.
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
                else:
                    p = -1                      # the end of the body
                # p >= 0: a break at an event this loop leaves to the general fold.
                cap.records_read = frame
                if p >= 0:
                    # The general fold takes over at the event in hand (with the walk's
                    # back-to-back state: in this loop every packet passed was preferred).
                    key = None if last_group is None else (last_group << 16) | last_number
                    state.last = (key, last_app, key is not None)
                    state.pktmon_events += pm_events
                    state.ndis_events += nd_events
                    handed = True
                    events = etl.resume_events(walk_buffer, state, index, body, p,
                                               cap.note_offset)
                    folded = cap.fold_records(
                        stats, (events, [state], frame, live, older, generation_start))
                    yield from folded if records else _decoded(folded)
                    break
        cap.bytes_read = etl.file_size
    finally:
        if not handed:
            cap.records_read = frame
            cap.events_read = pm_events + nd_events
            if pm_events:
                cap.providers_seen.add("pktmon")
            if nd_events:
                cap.providers_seen.add("ndis")
        cap.finish_pass(stats)
