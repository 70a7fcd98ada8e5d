"""Windows packet captures in ETL form: ``pktmon`` and ``netsh trace`` (NDIS) .etl files.

``EtlCapture`` offers the same interface as the pcap/pcapng readers (format "etl"), so
everything downstream reads .etl unchanged:

- Microsoft-Windows-PktMon events 160 (flow) and 170 (drop). pktmon logs the same packet once
  per networking component it crosses; copies are folded into one packet keyed on
  (PktGroupId, PktNumber) -- a restart of AppearanceCount under the same key is a new packet.
  The first appearance is kept (the packet as it entered the stack). Drops are kept as
  evidence in ``drops``. Payloads are truncated to the capture length (128 bytes by default):
  origlen is OriginalPayloadSize.
- Microsoft-Windows-NDIS-PacketCapture event 1001: one packet may span several events
  (first/last fragment keywords) and is reassembled; the keyword names link type and
  send/receive.

Direction: "out" = sent by the machine that captured, "in" = received by it.
"""
from __future__ import annotations

from collections import deque
from struct import Struct
from typing import Iterator

from pydantic import BaseModel

from facts import linktypes

from .base import Capture
from .etl_buffers import EtlFile, sniff_etl

PKTMON_GUID = bytes.fromhex("d9804f4dbdc8734dbb5b19c90402c5ac")   # {4d4f80d9-c8bd-...}
NDIS_GUID = bytes.fromhex("6e00d62e29470946b4233ee7bcd678ef")     # {2ED6006E-4729-...}
PKTMON, NDIS = 1, 2
_PROVIDERS = {PKTMON_GUID: PKTMON, NDIS_GUID: NDIS}

PKTMON_FLOW, PKTMON_DROP = 160, 170
NDIS_PACKET = 1001

# PktGroupId, PktNumber, AppearanceCount, DirTag, PacketType, ComponentId, EdgeId, FilterId,
# DropReason, DropLocation, OriginalPayloadSize, LoggedPayloadSize, then Payload
_PKTMON = Struct("<QHHHHHHHIIHH")
# MiniportIfIndex, LowerIfIndex, FragmentSize, then Fragment
_NDIS = Struct("<III")

PKTMON_LINKTYPES = {1: linktypes.ETHERNET, 2: linktypes.IEEE802_11, 3: linktypes.RAW}
# pktmon's direction tags: Rx (3) is a packet arriving, Tx (4) one leaving.
PKTMON_DIRECTIONS = {3: "in", 4: "out"}

KW_NATIVE_80211 = 0x10000
KW_WWAN_RAW_IP = 0x200
KW_FRAGMENT_FIRST = 0x40000000
KW_FRAGMENT_LAST = 0x80000000
KW_SEND = 0x100000000
KW_RECEIVE = 0x200000000

# Copies of one pktmon packet are logged within microseconds; a key not seen for this long
# is forgotten, which keeps folding memory bounded on long captures.
_FOLD_WINDOW_S = 2.0
_SWEEP_EVERY = 4096
# A packet is yielded once a copy in a link type the decoder reads fully (Ethernet, raw IP)
# has been seen -- Wi-Fi copies keep the Protected bit although pktmon logs them decrypted
# -- or when no further copy arrived for this long.
_HOLD_S = 0.05
_PREFERRED = frozenset((linktypes.ETHERNET, linktypes.RAW))
# Fields of a pending pktmon packet (a list, for speed): first raw timestamp, direction,
# chosen payload, its link type, its original size, whether it is a preferred copy, last raw
# timestamp, last AppearanceCount, frame once yielded, drops waiting for that frame.
_FIRST, _DIR, _DATA, _LT, _ORIG, _GOOD, _LAST, _APPEAR, _FRAME, _DROPS = range(10)


class EtlDrop(BaseModel):
    """A pktmon drop event (170): which component discarded which packet, and why."""
    frame: int
    time: float
    component: int
    edge: int
    reason: int
    location: int
    direction: str | None = None


def _ndis_linktype(keyword: int) -> int:
    if keyword & KW_NATIVE_80211:
        return linktypes.IEEE802_11
    if keyword & KW_WWAN_RAW_IP:
        return linktypes.RAW
    return linktypes.ETHERNET


def _ndis_direction(keyword: int):
    if keyword & KW_SEND:
        return "out"
    if keyword & KW_RECEIVE:
        return "in"
    return None


def pktmon_linktype(packet_type: int, data: bytes) -> int:
    """The link type a pktmon payload really has. PacketType describes the logging edge and
    sometimes disagrees with the bytes (a Wi-Fi edge logging the Ethernet form a miniport
    handed up): when only the other of Ethernet / 802.11 locates an IP header, believe it."""
    lt = PKTMON_LINKTYPES.get(packet_type, linktypes.ETHERNET)
    if lt == linktypes.RAW or linktypes.ip_offset(lt, data) is not None:
        return lt
    other = linktypes.ETHERNET if lt == linktypes.IEEE802_11 else linktypes.IEEE802_11
    return other if linktypes.ip_offset(other, data) is not None else lt


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
        self.warnings.clear()
        self.drops = []
        self.records_read = 0
        self.events_read = 0
        self.link_types = set()
        stats = {"orphan": 0, "incomplete": 0}
        try:
            yield from self._records(stats)
        finally:
            self._finish(stats)

    def _finish(self, stats) -> None:
        self.warnings.extend(self.etl.problems)
        if stats["orphan"] or stats["incomplete"]:
            self.warnings.append(
                f"NDIS packet fragments lost: {stats['incomplete']} packets incomplete"
                f" (yielded as captured), {stats['orphan']} fragments without a first part"
                f" (skipped)")

    def _records(self, stats):
        clock = self.clock
        seconds = clock.seconds
        ticks_per_s = clock.frequency if clock.clock_type != 2 else 10_000_000
        window = _FOLD_WINDOW_S * ticks_per_s
        hold = _HOLD_S * ticks_per_s
        live: dict = {}                     # fold key -> entry (see _PktmonPacket)
        queue: deque = deque()              # pktmon packets not yet yielded, in arrival order
        pending: dict = {}                  # (proc, miniport, lower) -> [ts, kw, bytearray]
        unpack_pm = _PKTMON.unpack_from
        unpack_nd = _NDIS.unpack_from
        link_types = self.link_types
        state = {"frame": 0}
        since_sweep = 0
        for ts, kind, eid, kw, start, end, body, proc in self.etl.events(_PROVIDERS):
            self.events_read += 1
            if kind == PKTMON:
                if eid != PKTMON_FLOW and eid != PKTMON_DROP or start + 34 > end:
                    continue
                self.providers_seen.add("pktmon")
                (group, number, appearance, dirtag, ptype, component, edge, _filter, reason,
                 location, orig, logged) = unpack_pm(body, start)
                pstart = start + 34
                pend = pstart + logged
                if pend > end:
                    pend = end
                key = (group, number) if group else (0, hash(body[pstart:pend]))
                e = live.get(key)
                if e is None or appearance <= e[_APPEAR]:
                    data = body[pstart:pend]
                    lt = pktmon_linktype(ptype, data)
                    e = [ts, PKTMON_DIRECTIONS.get(dirtag), data, lt, orig,
                         lt in _PREFERRED, ts, appearance, 0, []]
                    live[key] = e
                    queue.append(e)
                else:
                    e[_APPEAR] = appearance
                    e[_LAST] = ts
                    if not e[_GOOD]:
                        data = body[pstart:pend]
                        lt = pktmon_linktype(ptype, data)
                        if lt in _PREFERRED:
                            e[_DATA], e[_LT], e[_ORIG], e[_GOOD] = data, lt, orig, True
                if eid == PKTMON_DROP:
                    drop = (ts, component, edge, reason, location, PKTMON_DIRECTIONS.get(dirtag))
                    if e[_FRAME]:
                        self._drop(e[_FRAME], drop)
                    else:
                        e[_DROPS].append(drop)
                while queue and (queue[0][_GOOD] or ts - queue[0][_FIRST] > hold):
                    yield self._pktmon_record(state, queue.popleft())
                since_sweep += 1
                if since_sweep >= _SWEEP_EVERY:
                    since_sweep = 0
                    horizon = ts - window
                    for k in [k for k, v in live.items() if v[_LAST] < horizon and v[_FRAME]]:
                        del live[k]
            elif kind == NDIS:
                if eid != NDIS_PACKET or start + 12 > end:
                    continue
                self.providers_seen.add("ndis")
                miniport, lower, fsize = unpack_nd(body, start)
                fstart = start + 12
                fend = fstart + fsize
                if fend > end:
                    fend = end
                first = kw & KW_FRAGMENT_FIRST
                last = kw & KW_FRAGMENT_LAST
                if first and last:
                    frame = state["frame"] = state["frame"] + 1
                    lt = _ndis_linktype(kw)
                    link_types.add(lt)
                    data = body[fstart:fend]
                    self.records_read = frame
                    yield frame, seconds(ts), lt, data, len(data), _ndis_direction(kw)
                    continue
                rkey = (proc, miniport, lower)
                if first:
                    old = pending.pop(rkey, None)
                    if old is not None:
                        stats["incomplete"] += 1
                        yield self._ndis_record(state, old)
                    pending[rkey] = [ts, kw, bytearray(body[fstart:fend])]
                    continue
                part = pending.get(rkey)
                if part is None:
                    stats["orphan"] += 1
                    continue
                part[2] += body[fstart:fend]
                if last:
                    del pending[rkey]
                    yield self._ndis_record(state, part)
        while queue:
            yield self._pktmon_record(state, queue.popleft())
        for part in pending.values():
            stats["incomplete"] += 1
            yield self._ndis_record(state, part)

    def _drop(self, frame, drop):
        ts, component, edge, reason, location, direction = drop
        self.drops.append(EtlDrop(frame=frame, time=self.clock.seconds(ts), component=component,
                                  edge=edge, reason=reason, location=location,
                                  direction=direction))

    def _pktmon_record(self, state, e):
        frame = state["frame"] = state["frame"] + 1
        e[_FRAME] = frame
        for drop in e[_DROPS]:
            self._drop(frame, drop)
        e[_DROPS] = []
        data = e[_DATA]
        self.link_types.add(e[_LT])
        self.records_read = frame
        orig = e[_ORIG]
        return (frame, self.clock.seconds(e[_FIRST]), e[_LT], data,
                orig if orig > len(data) else len(data), e[_DIR])

    def _ndis_record(self, state, part):
        frame = state["frame"] = state["frame"] + 1
        ts, kw, data = part
        lt = _ndis_linktype(kw)
        self.link_types.add(lt)
        self.records_read = frame
        data = bytes(data)
        return frame, self.clock.seconds(ts), lt, data, len(data), _ndis_direction(kw)


__all__ = ["EtlCapture", "EtlDrop", "sniff_etl", "pktmon_linktype"]
