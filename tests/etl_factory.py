"""Test helper that WRITES Windows packet-capture .etl files (there is no public ``netsh trace``
sample): Microsoft-Windows-NDIS-PacketCapture event 1001 (fragmented, both directions) and
Microsoft-Windows-PktMon events 160/170 (several components per packet, truncated payloads),
in plain or LZXPRESS-compressed buffers, one or several processors.

Layout follows what real files hold (checked against the pktmon corpus file): a header
buffer with a SYSTEM_TRACE_HEADER + TRACE_LOGFILE_HEADER (QPC clock, 10 MHz), then per-
processor buffers of EVENT_HEADER records, 8-byte aligned, unused tails filled with 0xFF.
"""
from __future__ import annotations

from dataclasses import dataclass
from struct import Struct

FILETIME_EPOCH = 116444736000000000
PKTMON_GUID = bytes.fromhex("d9804f4dbdc8734dbb5b19c90402c5ac")
NDIS_GUID = bytes.fromhex("6e00d62e29470946b4233ee7bcd678ef")
QPC_FREQ = 10_000_000
ANCHOR_QPC = 5_000_000_000           # counter value of the logfile header event

_BUF = Struct("<IIIiqqQIIIHH16s")
_EVT = Struct("<HHHHIIq16sHBBBBHQQ16s")
_SYS = Struct("<HBBHHIIqII")
_PKTMON = Struct("<QHHHHHHHIIHH")
_NDIS = Struct("<III")


@dataclass
class Packet:
    """One packet to log. ``ticks``: FILETIME (100 ns since 1601) of its capture."""
    ticks: int
    data: bytes
    linktype: int = 1
    direction: str | None = "in"

    @property
    def seconds(self) -> float:
        return (self.ticks - FILETIME_EPOCH) / 10_000_000      # int/int: nearest float


def filetime(unix_seconds: float) -> int:
    return FILETIME_EPOCH + round(unix_seconds * 1e7)


def lzxpress_compress(data: bytes) -> bytes:
    """Plain LZXPRESS (MS-XCA 2.3) with a greedy run-length matcher: a byte repeated at least
    3 times becomes a literal plus a distance-1 match (exercising the match path);
    everything else is literals. Each 32-bit flag word announces 32 items, MSB first."""
    out = bytearray()
    items: list[tuple[bool, bytes]] = []
    i, n = 0, len(data)
    while i < n:
        run = 1
        while i + run < n and data[i + run] == data[i] and run < 10:
            run += 1
        items.append((False, data[i:i + 1]))
        if run >= 4:
            items.append((True, _match(1, run - 1)))
            i += run
        else:
            i += 1
    for start in range(0, len(items), 32):
        group = items[start:start + 32]
        flags = 0
        for k, (is_match, _) in enumerate(group):
            if is_match:
                flags |= 1 << (31 - k)
        # Unused trailing flag bits are set, as the reference compressor does: a decoder
        # meeting one at the end of input stops.
        for k in range(len(group), 32):
            flags |= 1 << (31 - k)
        out += flags.to_bytes(4, "little")
        for _, chunk in group:
            out += chunk
    return bytes(out)


def _match(distance: int, length: int) -> bytes:
    """Short match token (length 3..9 fits the 3-bit field; runs are capped at 10 bytes so
    the nibble/byte length escapes are never needed)."""
    return (((distance - 1) << 3) | (length - 3)).to_bytes(2, "little")


class _Writer:
    def __init__(self, start_ticks: int, buffer_size: int, compressed: bool, processors: int):
        self.start_ticks = start_ticks
        self.buffer_size = buffer_size
        self.compressed = compressed
        self.processors = max(1, processors)
        self.events: list[list[bytes]] = [[] for _ in range(self.processors)]
        self.sequence = 0

    def qpc(self, ticks: int) -> int:
        return ANCHOR_QPC + (ticks - self.start_ticks) * QPC_FREQ // 10_000_000

    def event(self, proc: int, ticks: int, guid: bytes, event_id: int, keyword: int,
              user: bytes, extended: bytes = b"") -> None:
        size = 80 + len(extended) + len(user)
        flags = 0x1 if extended else 0
        head = _EVT.pack(size, 0xC013, flags, 0, 0x1234, 4, self.qpc(ticks), guid, event_id,
                         0, 0, 4, 0, 0, keyword, 0, bytes(16))
        rec = head + extended + user
        self.events[proc % self.processors].append(rec + b"\0" * (-len(rec) % 8))

    def header_buffer(self, end_ticks: int) -> bytes:
        h = bytearray(0x118)
        Struct("<I4sIIqIIIIIIII").pack_into(
            h, 0, self.buffer_size, bytes((10, 0, 2, 0)), 19042, self.processors, end_ticks,
            156250, 0, 0x10000001, 0, 1, 8, 0, 2400)
        boot = self.start_ticks - 3600 * 10_000_000 - 12345678   # deliberately not exact
        Struct("<qqqII").pack_into(h, 0xF8, boot, QPC_FREQ, self.start_ticks, 1, 0)
        names = "rstsleuth-test\0".encode("utf-16-le") + "C:\\t.etl\0".encode("utf-16-le")
        payload = bytes(h) + names
        sys_hdr = _SYS.pack(2, 2, 0xC0, 32 + len(payload), 0, 4, 8, ANCHOR_QPC, 0, 0)
        rec = sys_hdr + payload
        rec += b"\0" * (-len(rec) % 8)
        used = 72 + len(rec)
        return self._buffer(rec, used, proc=0, flag=0x1, btype=4, compress=False)

    def _buffer(self, body: bytes, used: int, proc: int, flag: int, btype: int,
                compress: bool) -> bytes:
        self.sequence += 1
        if compress:
            payload = lzxpress_compress(body)
            size = 72 + len(payload)
            flag |= 0x40
        else:
            payload = body + b"\xff" * (self.buffer_size - 72 - len(body))
            size = self.buffer_size
        head = _BUF.pack(size, used, used, 0, 0, self.sequence, 0, proc, 3, used, flag, btype,
                         bytes(16))
        return head + payload

    def data_buffers(self):
        room = self.buffer_size - 72
        out = []
        for proc, recs in enumerate(self.events):
            body = bytearray()
            for rec in recs:
                if len(rec) > room:
                    raise ValueError("event larger than a buffer")
                if len(body) + len(rec) > room:
                    out.append(self._buffer(bytes(body), 72 + len(body), proc, 0x20, 0,
                                            self.compressed))
                    body = bytearray()
                body += rec
            if body:
                out.append(self._buffer(bytes(body), 72 + len(body), proc, 0x20, 0,
                                        self.compressed))
        return out

    def write(self, path, end_ticks: int) -> str:
        with open(path, "wb") as f:
            f.write(self.header_buffer(end_ticks))
            for buf in self.data_buffers():
                f.write(buf)
        return str(path)


def _bounds(packets):
    start = min(p.ticks for p in packets) - 10_000_000 if packets else filetime(1.6e9)
    end = max(p.ticks for p in packets) + 10_000_000 if packets else start
    return start, end


NDIS_KW_80211, NDIS_KW_RAWIP = 0x10000, 0x200
NDIS_KW_FIRST, NDIS_KW_LAST = 0x40000000, 0x80000000
NDIS_KW_SEND, NDIS_KW_RECV = 0x100000000, 0x200000000


def write_ndis_etl(path, packets: list[Packet], *, compressed: bool = False,
                   fragment_size: int | None = None, processors: int = 1,
                   buffer_size: int = 65536, extended: bool = False) -> str:
    """``netsh trace capture=yes`` style: event 1001 per fragment of each packet."""
    start, end = _bounds(packets)
    w = _Writer(start, buffer_size, compressed, processors)
    for i, p in enumerate(packets):
        kw = {105: NDIS_KW_80211, 101: NDIS_KW_RAWIP}.get(p.linktype, 0)
        kw |= {"out": NDIS_KW_SEND, "in": NDIS_KW_RECV}.get(p.direction, 0)
        step = fragment_size or max(1, len(p.data))
        chunks = [p.data[k:k + step] for k in range(0, len(p.data), step)] or [b""]
        for k, chunk in enumerate(chunks):
            fkw = kw | (NDIS_KW_FIRST if k == 0 else 0) | (
                NDIS_KW_LAST if k == len(chunks) - 1 else 0)
            ext = b""
            if extended:
                # Two linked items: a related activity id and a 4-byte one.
                ext = Struct("<HHHH").pack(0, 1, 1, 16) + bytes(range(16)) + \
                    Struct("<HHHH").pack(0, 5, 0, 4) + b"\x01\x02\x03\x04" + b"\0" * 4
            user = _NDIS.pack(7, 7, len(chunk)) + chunk
            w.event(i, p.ticks + k, NDIS_GUID, 1001, fkw, user, ext)
    return w.write(path, end)


PKTMON_TYPES = {1: 1, 105: 2, 101: 3}
PKTMON_DIRTAGS = {"in": 3, "out": 4}


def to_80211(eth: bytes) -> bytes:
    """The native 802.11 form of an Ethernet frame (FromDS data frame, LLC/SNAP), with the
    Protected bit set as pktmon's Wi-Fi copies have it although logged decrypted."""
    dst, src, etype, body = eth[0:6], eth[6:12], eth[12:14], eth[14:]
    return (b"\x08\x42\x2c\x00" + dst + b"\x02\x00\x00\x00\x00\x01" + src + b"\x00\x00"
            + b"\xaa\xaa\x03\x00\x00\x00" + etype + body)


def write_pktmon_etl(path, packets: list[Packet], *, compressed: bool = False,
                     components: int = 3, snaplen: int = 128, drops: dict | None = None,
                     wifi_first: bool = False, processors: int = 1,
                     buffer_size: int = 65536) -> str:
    """``pktmon start -c`` style: each packet logged once per component (event 160) with
    AppearanceCount 1..n, payload cut to ``snaplen``; ``drops`` maps packet index to
    (component, reason) for an event 170 after its flow copies. ``wifi_first``: inbound
    Ethernet packets are first logged in their 802.11 form, as at a Wi-Fi miniport."""
    start, end = _bounds(packets)
    w = _Writer(start, buffer_size, compressed, processors)
    drops = drops or {}
    for i, p in enumerate(packets):
        group = (3 << 48) | (i + 1)
        forms = [(p.linktype, p.data)] * components
        if wifi_first and p.linktype == 1 and p.direction == "in":
            forms = [(105, to_80211(p.data))] + forms[1:]
        app = 0
        for k, (lt, data) in enumerate(forms):
            app += 1
            logged = data[:snaplen]
            user = _PKTMON.pack(group, 1, app, PKTMON_DIRTAGS.get(p.direction, 0),
                                PKTMON_TYPES[lt], 10 + k, 1 + k % 2, 0, 0, 0, len(data),
                                len(logged)) + logged
            w.event(i, p.ticks + k * 3, PKTMON_GUID, 160, 0x10, user)
        if i in drops:
            component, reason = drops[i]
            app += 1
            logged = p.data[:snaplen]
            user = _PKTMON.pack(group, 1, app, PKTMON_DIRTAGS.get(p.direction, 0),
                                PKTMON_TYPES[p.linktype], component, 1, 0, reason, 0xE0004,
                                len(p.data), len(logged)) + logged
            w.event(i, p.ticks + len(forms) * 3, PKTMON_GUID, 170, 0x20, user)
    return w.write(path, end)
