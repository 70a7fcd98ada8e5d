"""The event walk inside one ETL buffer, for the two Windows packet providers.

Records are 8-byte aligned. EVENT_HEADER records (header type 0x12/0x13 with the 0x80 marker
bit; Size in the first word) of Microsoft-Windows-PktMon and -NDIS-PacketCapture are parsed;
every other record (system, perfinfo, trace, WPP message headers, other providers) is
stepped over by its size field. The walk returns a list per buffer -- a plain loop filling a
list costs less per event than a generator -- of compact tuples:

- PktMon 160/170: ``(ts, PKTMON, event_id, key, appearance, dirtag, ptype, orig, pstart,
  pend, body)``
- NDIS 1001, a whole packet in one event: ``(ts, NDIS_WHOLE, linktype, data, direction)``
- NDIS 1001, a fragment: ``(ts, NDIS, keyword, miniport, lower, fstart, fend, body,
  processor)``

PktMon copies are pre-folded here: a packet's copies are logged back to back by the one
call chain that carries it through the stack, so once the walk has passed on an Ethernet /
raw-IP copy (PacketType 1 or 3), the flow copies that immediately follow it with the same key
and a higher AppearanceCount are counted and dropped before they cost a tuple. The global
fold in ``etl.EtlCapture`` handles everything else (interleaved copies, copies on other
processors, Wi-Fi copies, drops, restarts).
"""
from __future__ import annotations

from struct import Struct

PKTMON_GUID = bytes.fromhex("d9804f4dbdc8734dbb5b19c90402c5ac")   # {4d4f80d9-c8bd-...}
NDIS_GUID = bytes.fromhex("6e00d62e29470946b4233ee7bcd678ef")     # {2ED6006E-4729-...}
PKTMON, NDIS, NDIS_WHOLE = 1, 2, 3
PROVIDERS = {PKTMON_GUID: PKTMON, NDIS_GUID: NDIS}
PKTMON_FLOW, PKTMON_DROP = 160, 170
NDIS_PACKET = 1001

# NDIS-PacketCapture keywords: the medium, fragment position and direction of a packet.
KW_NATIVE_80211 = 0x10000
KW_WWAN_RAW_IP = 0x200
KW_FRAGMENT_FIRST = 0x40000000
KW_FRAGMENT_LAST = 0x80000000
KW_SEND = 0x100000000
KW_RECEIVE = 0x200000000
KW_WHOLE = KW_FRAGMENT_FIRST | KW_FRAGMENT_LAST
KW_MEDIA = KW_NATIVE_80211 | KW_WWAN_RAW_IP
# Link types: Ethernet 1, raw IP 101, native 802.11 105 (facts.linktypes names them).
NDIS_LINKTYPES = {0: 1, KW_WWAN_RAW_IP: 101, KW_NATIVE_80211: 105,
                  KW_NATIVE_80211 | KW_WWAN_RAW_IP: 105}
NDIS_DIRECTIONS = (None, "out", "in", None)     # keyword bits 32 (send) and 33 (receive)

# The EVENT_HEADER fields we use: size, header type (low byte), marker flags (high byte),
# flags, timestamp, provider GUID (raw bytes), event id, keyword. Property, thread, process,
# version/channel/level/opcode/task, processor time and activity id are skipped.
_EVT = Struct("<HBBH10xq16sH6xQ")
# PktGroupId, PktNumber, AppearanceCount, DirTag, PacketType, ComponentId, EdgeId, FilterId,
# DropReason, DropLocation, OriginalPayloadSize, LoggedPayloadSize, then Payload (34 bytes).
# Read per event: everything but the component/edge/filter/drop fields, which
# PKTMON_DROP_FIELDS reads (at +16) for drop events only.
_PKTMON = Struct("<QHHHH14xHH")
PKTMON_DROP_FIELDS = Struct("<HHHII")
PKTMON_HEADER = 34
# _EVT's fields (header type and marker as one word), then at +80 the fields of _PKTMON:
# a whole pktmon flow event header in one unpack (114 bytes).
PKTMON_FLOW_EVENT = Struct("<HHH10xq16sH6xQ24xQHHHH14xHH")
# MiniportIfIndex, LowerIfIndex, FragmentSize, then Fragment (and, in newer versions,
# GFT offload fields after it, which we do not need).
_NDIS = Struct("<III")
_U16 = Struct("<H")
_U32 = Struct("<I")
_EXT = Struct("<HHHH")
# System/compact/perfinfo trace headers keep Version in the first word, Size in the second.
SIZE_AT_4 = frozenset((1, 2, 3, 4, 16, 17))
EXTENDED_INFO = 0x0001


class StreamState:
    """Per-processor-stream state of the walk: the last pktmon packet passed on (key,
    AppearanceCount, whether a preferred copy of it was among those passed) and the counts
    of packet events seen."""

    __slots__ = ("last", "pktmon_events", "ndis_events")

    def __init__(self):
        self.last = (None, 0, False)
        self.pktmon_events = 0
        self.ndis_events = 0


def walk_buffer(body: bytes, off: int, proc: int, cut: bool, state: StreamState,
                problem, start: int = 0) -> list:
    """Packet events of one buffer body. ``off`` is the buffer's file offset (for messages),
    ``cut`` says the file ended inside this buffer (an incomplete last event is then
    expected, not corruption), ``problem(text)`` records a one-line problem. ``start`` is
    the offset of the first record to walk (the fused reader hands a buffer over mid-way)."""
    out: list = []
    add = out.append
    n = len(body)
    p = start
    unpack = _EVT.unpack_from
    unpack_pm = _PKTMON.unpack_from
    unpack_nd = _NDIS.unpack_from
    get = PROVIDERS.get
    last_key, last_app, last_good = state.last
    pktmon_events = ndis_events = 0
    unpack_flow = PKTMON_FLOW_EVENT.unpack_from
    limit = n - PKTMON_FLOW_EVENT.size
    try:
        while p + 8 <= n:
            if p <= limit:
                # The common records first, header and provider fields in one unpack: a
                # pktmon flow event or a whole NDIS packet, without extended data (0x80FE/
                # 0x8012: header type 0x12/0x13 with the marker bit). The same steps as
                # the general code below. For NDIS, group is MiniportIfIndex|LowerIfIndex
                # << 32 and number|appearance << 16 is FragmentSize.
                (size, hm, flags, ts, guid, eid, kw, group, number, appearance, dirtag,
                 ptype, orig, logged) = unpack_flow(body, p)
                if hm & 0x80FE == 0x8012 and not flags & EXTENDED_INFO and p + size <= n:
                    if eid == 160 and guid == PKTMON_GUID and 114 <= size and group:
                        pktmon_events += 1
                        key = (group << 16) | number
                        if key == last_key and appearance > last_app:
                            if last_good:
                                last_app = appearance
                                p += (size + 7) & ~7
                                continue
                            last_good = ptype == 1 or ptype == 3
                        else:
                            last_key, last_good = key, ptype == 1 or ptype == 3
                        last_app = appearance
                        pstart = p + 114
                        pend = pstart + logged
                        if pend > p + size:
                            pend = p + size
                        add((ts, PKTMON, 160, key, appearance, dirtag, ptype, orig, pstart,
                             pend, body))
                        p += (size + 7) & ~7
                        continue
                    if (eid == NDIS_PACKET and guid == NDIS_GUID and 92 <= size
                            and kw & KW_WHOLE == KW_WHOLE):
                        ndis_events += 1
                        fstart = p + 92
                        fend = fstart + (number | appearance << 16)
                        if fend > p + size:
                            fend = p + size
                        add((ts, NDIS_WHOLE, NDIS_LINKTYPES[kw & KW_MEDIA], body[fstart:fend],
                             NDIS_DIRECTIONS[(kw >> 32) & 3]))
                        p += (size + 7) & ~7
                        continue
            if p + 56 <= n:
                size, htype, marker, flags, ts, guid, eid, kw = unpack(body, p)
            else:
                size, htype, marker = _U16.unpack_from(body, p)[0], body[p + 2], body[p + 3]
                flags = ts = eid = kw = 0
                guid = None
            if not ((htype == 0x13 or htype == 0x12) and marker & 0x80):
                word = _U32.unpack_from(body, p)[0]
                if word == 0xFFFFFFFF or word == 0:
                    return out                     # unused tail of the buffer
                size = _U16.unpack_from(body, p + 4 if htype in SIZE_AT_4 else p)[0]
                if size < 8 or p + size > n:
                    if not (cut and size >= 8):
                        problem(f"corrupt event in buffer at offset {off}"
                                f" (size {size} at +{p}); rest of that buffer skipped")
                    return out
                p += (size + 7) & ~7
                continue
            if size < 80 or p + size > n:
                if not (cut and size >= 80):
                    problem(f"corrupt event in buffer at offset {off}"
                            f" (size {size} at +{p}); rest of that buffer skipped")
                return out
            end = p + size
            start = p + 80
            p += (size + 7) & ~7
            kind = get(guid)
            if kind is None:
                continue
            if flags & EXTENDED_INFO:
                start = skip_extended(body, start, end)
                if start is None:
                    continue
            if kind == PKTMON:
                if eid != 160 and eid != 170 or start + PKTMON_HEADER > end:   # flow, drop
                    continue
                pktmon_events += 1
                group, number, appearance, dirtag, ptype, orig, logged = \
                    unpack_pm(body, start)
                pstart = start + PKTMON_HEADER
                pend = pstart + logged
                if pend > end:
                    pend = end
                # One int key (ints hash far cheaper than tuples); PktGroupId 0 would say
                # nothing, so such packets fold on their bytes instead.
                if group:
                    key = (group << 16) | number
                else:
                    key = hash(body[pstart:pend]) - (1 << 80)
                if key == last_key and appearance > last_app:
                    if eid == 160 and last_good:
                        last_app = appearance
                        continue
                    last_good = last_good or ptype == 1 or ptype == 3
                else:
                    last_key, last_good = key, ptype == 1 or ptype == 3
                last_app = appearance
                add((ts, PKTMON, eid, key, appearance, dirtag, ptype, orig, pstart, pend,
                     body))
            elif eid == NDIS_PACKET and start + 12 <= end:
                ndis_events += 1
                miniport, lower, fsize = unpack_nd(body, start)
                fstart = start + 12
                fend = fstart + fsize
                if fend > end:
                    fend = end
                if kw & KW_WHOLE == KW_WHOLE:
                    add((ts, NDIS_WHOLE, NDIS_LINKTYPES[kw & KW_MEDIA], body[fstart:fend],
                         NDIS_DIRECTIONS[(kw >> 32) & 3]))
                else:
                    add((ts, NDIS, kw, miniport, lower, fstart, fend, body, proc))
        return out
    finally:
        state.last = (last_key, last_app, last_good)
        state.pktmon_events += pktmon_events
        state.ndis_events += ndis_events


def skip_extended(body: bytes, p: int, end: int):
    """Step over extended data items (each an 8-byte header + data, 8-byte aligned, linked
    by bit 0 of the third word). Returns the user data offset, or None when malformed."""
    while True:
        if p + 8 > end:
            return None
        _r, _ext_type, linkage, data_size = _EXT.unpack_from(body, p)
        p = (p + 8 + data_size + 7) & ~7
        if not linkage & 1:
            return p if p <= end else None
