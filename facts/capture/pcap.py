"""Classic libpcap files: micro- and nanosecond, either byte order.

Read in large chunks; records straddling a chunk boundary are stitched by carrying the tail
into the next chunk. A cut-short tail or an impossible record length stops the walk with
one warning; everything before it is still yielded.
"""
from __future__ import annotations

from struct import Struct

from facts import linktypes
from facts.errors import CaptureError

from .base import MAX_RECORD, Capture, open_checked

CHUNK = 4 << 20
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}


def sniff_pcap(head: bytes) -> bool:
    return head[:4] in _MAGICS


class PcapCapture(Capture):
    format = "pcap"

    def __init__(self, path):
        super().__init__(path)
        with open_checked(path) as f:
            hdr = f.read(24)
        if len(hdr) < 4 or hdr[:4] not in _MAGICS:
            raise CaptureError(self.path, "not a pcap file")
        endian, self.ts_unit = _MAGICS[hdr[:4]]
        if len(hdr) < 24:
            raise CaptureError(self.path,
                               f"truncated pcap file header ({len(hdr)} of 24 bytes)")
        self.endian = endian
        self.nanosecond = self.ts_unit == 1e-9
        major, minor, _zone, _sigfigs, self.snaplen, raw_link = Struct(
            endian + "HHiIII").unpack_from(hdr, 4)
        self.version = (major, minor)
        # The upper bits carry FCS length information (pcap-savefile(5)); only the low
        # 16 bits are the link type.
        self.linktype = (raw_link & 0x0FFFFFFF) & 0xFFFF
        if self.linktype not in linktypes.SUPPORTED:
            raise CaptureError(self.path, f"unsupported link type {self.linktype}"
                               f" (raw field 0x{raw_link:08x})")
        self.link_types = {self.linktype}
        self.max_record = max(MAX_RECORD, self.snaplen if self.snaplen <= 1 << 24 else 0)
        self.rec_struct = Struct(endian + "IIII")

    # -- shared by records() and the fused loop in fastpcap --------------------------------
    def cut_short(self, have: int, need: int, frames: int, header: bool) -> None:
        what = "record header" if header else "record"
        self.warnings.append(f"file cut short: last {what} incomplete, {have} of {need} bytes"
                             f" present; {frames} records read")

    def corrupt(self, file_off: int, incl: int, remaining: int, frames: int) -> None:
        self.warnings.append(
            f"corrupt record at byte offset {file_off}: captured length {incl} is impossible"
            f" (limit {self.max_record}); stopped there, {remaining} bytes skipped;"
            f" {frames} records read")

    def records(self):
        self.warnings.clear()
        self.records_read = 0
        unpack = self.rec_struct.unpack_from
        unit = self.ts_unit
        lt = self.linktype
        limit = self.max_record
        frame = 0
        with open_checked(self.path) as f:
            f.seek(24)
            base = 24                      # file offset of buf[0]
            buf = f.read(CHUNK)
            self.bytes_read = f.tell()
            pos = 0
            blen = len(buf)
            try:
                while True:
                    if pos + 16 > blen:
                        buf = buf[pos:] + f.read(CHUNK)
                        self.bytes_read = f.tell()
                        base += pos
                        pos = 0
                        blen = len(buf)
                        if blen < 16:
                            if blen:
                                self.cut_short(blen, 16, frame, True)
                            break
                    sec, frac, incl, orig = unpack(buf, pos)
                    if incl > limit:
                        remaining = blen - pos + _rest(f)
                        self.corrupt(base + pos, incl, remaining, frame)
                        break
                    end = pos + 16 + incl
                    if end > blen:
                        buf = buf[pos:] + f.read(max(CHUNK, end - pos))
                        self.bytes_read = f.tell()
                        base += pos
                        pos, end = 0, 16 + incl
                        blen = len(buf)
                        if end > blen:
                            self.cut_short(blen, 16 + incl, frame, False)
                            break
                    frame += 1
                    yield frame, sec + frac * unit, lt, buf[pos + 16:end], orig, None
                    pos = end
            finally:
                self.records_read = frame

    def fast_packets(self):
        from .fastpcap import LAYOUTS, iter_pcap
        return iter_pcap(self) if self.linktype in LAYOUTS else None


def _rest(f) -> int:
    here = f.tell()
    end = f.seek(0, 2)
    f.seek(here)
    return end - here
