"""Write records as pcapng: one section, one interface (IDB) per link type, Enhanced Packet
Blocks carrying the original length and the direction (epb_flags), so Wireshark/tshark see
what the source capture said -- including which packets this machine sent."""
from __future__ import annotations

from struct import Struct

from facts.errors import UserError

_SHB = Struct("<IIIHHq")            # type, length, byte-order magic, major, minor, section len
_IDB = Struct("<IIHHI")             # type, length, linktype, reserved, snaplen
_EPB = Struct("<IIIIIII")           # type, length, interface, ts high, ts low, caplen, origlen
_OPT = Struct("<HH")
_U32 = Struct("<I")
_U8 = Struct("<B")

SHB_TYPE, IDB_TYPE, EPB_TYPE = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_TSRESOL = 9
EPB_FLAGS = 2
_DIRECTION_BITS = {"in": 0x1, "out": 0x2}


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    return _OPT.pack(code, len(value)) + value + b"\0" * _pad4(len(value))


class PcapngWriter:
    """``write(ts, linktype, data, origlen, direction)`` appends one packet. ``tsresol`` is
    the power of ten of the timestamp unit (6 = microseconds, 7 = 100 ns as in ETL, 9 = ns)."""

    def __init__(self, fileobj, tsresol: int = 9, application: str = "rstsleuth"):
        if not 0 <= tsresol <= 9:
            raise ValueError("tsresol must be 0..9")
        self.f = fileobj
        self.tsresol = tsresol
        self.scale = 10 ** tsresol
        self.interfaces: dict[int, int] = {}
        self.packets = 0
        opts = _option(SHB_USERAPPL, application.encode()) + _OPT.pack(OPT_END, 0)
        length = _SHB.size + len(opts) + 4
        self.f.write(_SHB.pack(SHB_TYPE, length, 0x1A2B3C4D, 1, 0, -1) + opts + _U32.pack(length))

    def _interface(self, linktype: int) -> int:
        idx = self.interfaces.get(linktype)
        if idx is None:
            opts = _option(IF_TSRESOL, _U8.pack(self.tsresol)) + _OPT.pack(OPT_END, 0)
            length = _IDB.size + len(opts) + 4
            self.f.write(_IDB.pack(IDB_TYPE, length, linktype, 0, 0) + opts + _U32.pack(length))
            idx = self.interfaces[linktype] = len(self.interfaces)
        return idx

    def write(self, ts: float, linktype: int, data: bytes, origlen: int | None = None,
              direction: str | None = None) -> None:
        iface = self._interface(linktype)
        stamp = round(ts * self.scale)
        if stamp < 0:
            stamp = 0
        caplen = len(data)
        if origlen is None or origlen < caplen:
            origlen = caplen
        bits = _DIRECTION_BITS.get(direction)
        opts = b""
        if bits is not None:
            opts = _option(EPB_FLAGS, _U32.pack(bits)) + _OPT.pack(OPT_END, 0)
        pad = _pad4(caplen)
        length = _EPB.size + caplen + pad + len(opts) + 4
        self.f.write(b"".join((
            _EPB.pack(EPB_TYPE, length, iface, stamp >> 32, stamp & 0xFFFFFFFF, caplen, origlen),
            data, b"\0" * pad, opts, _U32.pack(length))))
        self.packets += 1


def write_capture(capture, out_path: str, tsresol: int = 9) -> int:
    """Copy every record of ``capture`` into a new pcapng file; returns the packet count."""
    try:
        f = open(out_path, "wb")
    except OSError as exc:
        raise UserError(f"{out_path}: cannot write: {exc.strerror or exc}") from None
    with f:
        writer = PcapngWriter(f, tsresol)
        for _frame, ts, linktype, data, origlen, direction in capture.records():
            writer.write(ts, linktype, data, origlen, direction)
    return writer.packets
