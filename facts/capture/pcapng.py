"""pcapng, walked block by block with ``struct`` (dpkt 1.9.8 gets interfaces, Simple Packet
Blocks and later sections wrong).

Each Section Header Block sets the byte order and empties the interface list; every
Interface Description Block brings its own link type, snaplen, if_tsresol and if_tsoffset.
Enhanced (6), Simple (3) and obsolete (2) Packet Blocks are records; other blocks are skipped.
A block with an impossible length is skipped by scanning forward for the next plausible
block (one warning saying how many bytes were lost).
"""
from __future__ import annotations

import re
from struct import Struct

from facts import linktypes
from facts.errors import CaptureError

from .base import Capture, open_checked

CHUNK = 4 << 20
SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
_PACKET_BLOCKS = (EPB, SPB, PB)
# Block types a resynchronising scan accepts as "plausible" (pcapng spec + common extras).
_KNOWN = {SHB, IDB, PB, SPB, 4, 5, EPB, 7, 8, 9, 0x0A, 0xBAD, 0x40000BAD, 0x80000001}
_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
# Wireshark shows custom blocks and systemd journal entries as frames of their own; count
# them (without yielding) so our frame numbers stay Wireshark's.
_COUNTED_RECORDS = (0xBAD, 0x40000BAD, 9)
MAX_BLOCK = 16 << 20
_DIRECTION = (None, "in", "out", None)


def sniff_pcapng(head: bytes) -> bool:
    return head[:4] == b"\x0a\x0d\x0d\x0a"


class _Iface:
    __slots__ = ("linktype", "snaplen", "div", "offset")

    def __init__(self, linktype, snaplen, div, offset):
        self.linktype, self.snaplen, self.div, self.offset = linktype, snaplen, div, offset


def _options(buf: bytes, p: int, end: int, e: str):
    """(code, value) pairs of an options area; stops at opt_endofopt or a bad length."""
    hdr = Struct(e + "HH").unpack_from
    while p + 4 <= end:
        code, length = hdr(buf, p)
        if code == 0 or p + 4 + length > end:
            return
        yield code, buf[p + 4:p + 4 + length]
        p += 4 + ((length + 3) & ~3)


def _parse_idb(buf: bytes, p: int, blen: int, e: str) -> _Iface:
    linktype, _res, snaplen = Struct(e + "HHI").unpack_from(buf, p + 8)
    div, offset = 1_000_000, 0
    for code, value in _options(buf, p + 16, p + blen - 4, e):
        if code == 9 and value:                     # if_tsresol
            v = value[0]
            div = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
        elif code == 14 and len(value) >= 8:        # if_tsoffset, whole seconds
            offset = Struct(e + "q").unpack_from(value)[0]
    return _Iface(linktype, snaplen, div, offset)


def _block_ok(buf: bytes, p: int, avail: int, e: str):
    """Type and length of a complete, self-consistent block at p, or None."""
    if p + 12 > avail:
        return None
    if buf[p:p + 4] == b"\x0a\x0d\x0d\x0a":
        e = _BOM.get(buf[p + 8:p + 12])
        if e is None:
            return None
    btype, blen = Struct(e + "II").unpack_from(buf, p)
    if blen < 12 or blen % 4 or blen > MAX_BLOCK or p + blen > avail:
        return None
    if Struct(e + "I").unpack_from(buf, p + blen - 4)[0] != blen:
        return None
    return btype, blen, e


class PcapngCapture(Capture):
    format = "pcapng"

    def __init__(self, path):
        super().__init__(path)
        with open_checked(path) as f:
            head = f.read(1 << 20)
        if len(head) < 28:
            raise CaptureError(self.path,
                               f"truncated pcapng section header ({len(head)} of 28 bytes)")
        if head[8:12] not in _BOM:
            raise CaptureError(self.path, "not a pcapng file (bad byte-order magic"
                                          f" 0x{head[8:12].hex()})")
        # Look at the interfaces declared before the first packet: if none of them has a
        # link type we decode, no packet of this file ever will.
        p, e, first = 0, "<", []
        while True:
            got = _block_ok(head, p, len(head), e)
            if got is None:
                shb_len = Struct(_BOM[head[8:12]] + "I").unpack_from(head, 4)[0]
                if p == 0 and len(head) < shb_len <= MAX_BLOCK and len(head) < 1 << 20:
                    raise CaptureError(self.path, "truncated pcapng section header"
                                                  f" ({len(head)} of {shb_len} bytes)")
                break
            btype, blen, e = got
            if btype == IDB:
                first.append(_parse_idb(head, p, blen, e).linktype)
            elif btype in _PACKET_BLOCKS:
                break
            p += blen
        self.link_types = set(first)
        if first and not any(lt in linktypes.SUPPORTED for lt in first):
            names = ", ".join(linktypes.describe(lt) for lt in sorted(set(first)))
            raise CaptureError(self.path, f"unsupported link type {names}")

    def _resync(self, f, buf, pos, base, e, reason):
        """Scan forward from a bad block for the next plausible one (known type, sane
        length, matching trailer). Returns (buf, pos, base, e) positioned there, or None
        when the rest of the file holds no such block."""
        bad_at = base + pos
        start = pos + 4
        rx = _type_regex()
        eof = False
        while True:
            need_more = False
            for m in rx.finditer(buf, start):
                c = m.start()
                if (base + c) % 4:
                    continue
                got = _plausible(buf, c, len(buf), e)
                if got is not None:
                    self.warnings.append(
                        f"corrupt pcapng block at byte offset {bad_at} ({reason}):"
                        f" skipped {base + c - bad_at} bytes to the next valid block")
                    return buf, c, base, got[2]
                if not eof and _may_complete(buf, c, e):
                    start, need_more = c, True
                    break
            if eof:
                break
            if not need_more:
                start = max(start, len(buf) - 12)
            more = f.read(CHUNK)
            self.bytes_read = f.tell()
            eof = not more
            buf = buf[start:] + more
            base += start
            start = 0
        skipped = base + len(buf) - bad_at
        self.warnings.append(f"corrupt pcapng block at byte offset {bad_at} ({reason}):"
                             f" no valid block after it, {skipped} bytes skipped;"
                             f" {self.records_read} records read")
        return None

    def records(self):
        for frame, ts, lt, buf, start, caplen, origlen, direction in self.walk():
            yield frame, ts, lt, buf[start:start + caplen], origlen, direction

    def fast_packets(self):
        from .fastpcap import iter_pcapng
        return iter_pcapng(self)

    def walk(self):
        """Like records(), but the frame is (buffer, start, caplen) so a fused decoder
        can read it in place without a copy."""
        self.warnings.clear()
        self.records_read = 0
        frame = 0
        e = "<"
        u32, hdr, epb = _structs(e)
        ifaces: list[_Iface] = []
        last_ts = 0.0
        skipped = []               # [count, first offset, first reason] of unusable packets
        with open_checked(self.path) as f:
            buf = f.read(CHUNK)
            self.bytes_read = f.tell()
            pos, base = 0, 0
            try:
                while True:
                    if pos + 12 > len(buf):
                        buf = buf[pos:] + f.read(CHUNK)
                        self.bytes_read = f.tell()
                        base += pos
                        pos = 0
                        if len(buf) < 12:
                            if buf:
                                self._cut_short(len(buf), 12, frame, "block header")
                            return
                    reason = None
                    if buf[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
                        se = _BOM.get(buf[pos + 8:pos + 12])
                        if se is None:
                            reason = "bad byte-order magic"
                        else:
                            if se != e:
                                e = se
                                u32, hdr, epb = _structs(e)
                            ifaces = []
                    if reason is None:
                        btype, blen = hdr(buf, pos)
                        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                            reason = f"block length {blen}"
                        elif pos + blen > len(buf):
                            buf = buf[pos:] + f.read(max(CHUNK, blen))
                            self.bytes_read = f.tell()
                            base += pos
                            pos = 0
                            if blen > len(buf):
                                if _find_next(buf, base, e) is None:
                                    self._cut_short(len(buf), blen, frame, "block")
                                    return
                                reason = f"block length {blen} runs past the end"
                        if reason is None and u32(buf, pos + blen - 4)[0] != blen:
                            reason = "trailing block length does not match"
                    if reason is not None:
                        self.records_read = frame
                        got = self._resync(f, buf, pos, base, e, reason)
                        if got is None:
                            return
                        buf, pos, base, found_e = got
                        if found_e != e:
                            # a block in the other byte order: its section header was
                            # lost, so the interfaces we know are not its interfaces
                            e = found_e
                            u32, hdr, epb = _structs(e)
                            ifaces = []
                        continue
                    p = pos
                    pos += blen
                    if btype == EPB or btype == PB:
                        if blen < 32:
                            continue
                        if btype == EPB:
                            ifid, tsh, tsl, caplen, origlen = epb(buf, p + 8)
                        else:
                            ifid = Struct(e + "H").unpack_from(buf, p + 8)[0]
                            tsh, tsl, caplen, origlen = Struct(e + "IIII").unpack_from(buf, p + 12)
                        if caplen > blen - 32 or ifid >= len(ifaces):
                            if skipped:
                                skipped[0] += 1
                            else:
                                skipped = [1, base + p, "captured length exceeds the block"
                                           if caplen > blen - 32 else
                                           f"interface {ifid} not declared in its section"]
                            continue
                        iface = ifaces[ifid]
                        t = (tsh << 32) | tsl
                        last_ts = ts = t / iface.div + iface.offset
                        d0 = p + 28
                        direction = None
                        optstart = d0 + ((caplen + 3) & ~3)
                        if optstart < p + blen - 4:
                            for code, value in _options(buf, optstart, p + blen - 4, e):
                                if code == 2 and len(value) >= 4:
                                    direction = _DIRECTION[u32(value, 0)[0] & 3]
                        frame += 1
                        yield frame, ts, iface.linktype, buf, d0, caplen, origlen, direction
                    elif btype == SPB:
                        if blen < 16 or not ifaces:
                            continue
                        iface = ifaces[0]
                        origlen = u32(buf, p + 8)[0]
                        caplen = min(origlen, blen - 16)
                        if iface.snaplen:
                            caplen = min(caplen, iface.snaplen)
                        frame += 1
                        yield frame, last_ts, iface.linktype, buf, p + 12, caplen, origlen, None
                    elif btype in _COUNTED_RECORDS:
                        frame += 1
                    elif btype == IDB and blen >= 20:
                        iface = _parse_idb(buf, p, blen, e)
                        ifaces.append(iface)
                        self.link_types.add(iface.linktype)
            finally:
                self.records_read = frame
                if skipped:
                    n, off, why = skipped
                    self.warnings.append(f"{n} packet block{'s' if n > 1 else ''} skipped"
                                         f" (first at byte offset {off}: {why})")

    def _cut_short(self, have, need, frames, what):
        self.warnings.append(f"file cut short: last {what} incomplete, {have} of {need} bytes"
                             f" present; {frames} records read")


def _structs(e: str):
    return Struct(e + "I").unpack_from, Struct(e + "II").unpack_from, \
        Struct(e + "IIIII").unpack_from


_OTHER = {"<": ">", ">": "<"}


def _plausible(buf: bytes, c: int, avail: int, e: str):
    """A complete, self-consistent block of a known type at c, in either byte order
    (the section header that set the order may be the damaged block)."""
    for order in (e, _OTHER[e]):
        got = _block_ok(buf, c, avail, order)
        if got is not None and got[0] in _KNOWN:
            return got
    return None


def _type_regex():
    global _RX
    if _RX is None:
        words = {Struct(o + "I").pack(t) for o in "<>" for t in _KNOWN}
        # zero-width lookahead so overlapping candidates (an unaligned match hiding an
        # aligned one) are all seen
        _RX = re.compile(b"(?=" + b"|".join(re.escape(w) for w in sorted(words)) + b")")
    return _RX


_RX = None


def _may_complete(buf: bytes, c: int, e: str) -> bool:
    """A candidate whose header is cut by the end of the buffer, or whose length looks sane
    but runs past it: more data may make it a valid block."""
    if c + 12 > len(buf):
        return True
    for order in (e, _OTHER[e]):
        blen = Struct(order + "I").unpack_from(buf, c + 4)[0]
        if 12 <= blen <= MAX_BLOCK and blen % 4 == 0 and c + blen > len(buf):
            return True
    return False


def _find_next(buf: bytes, base: int, e: str):
    """Whether a complete plausible block starts after the first word of buf (a huge
    length in the middle of a file is corruption; at the end it is a cut-short file)."""
    for m in _type_regex().finditer(buf, 4):
        c = m.start()
        if (base + c) % 4 == 0 and _plausible(buf, c, len(buf), e) is not None:
            return c
    return None
