"""Generate a large, realistic-enough pcap for the reader benchmark, streaming to disk.

    python benchmarks/make_capture.py [N] OUT [--connections 20000] [--seed 1]

N packets (default 1 000 000) over a fixed number of connections (default 20 000, so a
larger N means longer connections, not more of them: memory must stay flat). Connections
overlap in time (a scheduler interleaves them by timestamp) and end in a mix of ways:
FIN close, the server's own RST (same TTL as its packets), a forged RST with another TTL
right after a request, a firewall's RST (TTL 253) after more than an hour of idle, a
refused SYN, and flows already running when the capture started (no handshake).

Packets are packed with struct (Ethernet/IPv4/TCP, checksums left zero: neither tshark nor
rstsleuth verifies them), so generating 1M packets takes seconds, not minutes.
"""
from __future__ import annotations

import argparse
import heapq
import random
import struct
import sys
from pathlib import Path

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
RECORD = struct.Struct("<IIII")
ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
IP_TCP = struct.Struct("!BBHHHBBH4s4sHHIIBBHHH")
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
START = 1_700_000_000.0
DURATION = 7200.0  # long enough for hour-long idle timeouts
IDLE_GAP = 3600.4
PAYLOAD = bytes(range(256)) * 6
# (kind, share): how each connection ends.
KINDS = (("fin", 0.62), ("endpoint_rst", 0.10), ("forged_rst", 0.08), ("idle_rst", 0.05),
         ("refused", 0.05), ("midflow", 0.10))
SERVER_TTLS = (118, 52, 57, 113, 64, 243)
CLIENT_TTLS = (64, 128, 63, 127)
FORGED_TTLS = (253, 61, 250, 40, 128)


class Flow:
    """One connection's packets, produced lazily: ``next(now)`` returns the frame bytes and
    the delay until this flow's next packet (None when it has ended)."""

    __slots__ = ("rng", "kind", "ends", "ttl", "seq", "ipid", "left", "step")

    def __init__(self, rng: random.Random, i: int, budget: int, kind: str):
        self.rng = rng
        self.kind = kind
        client = bytes((10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF or 1))
        server = bytes((192, 0, 2, 1 + i % 50))
        self.ends = ((client, 1024 + (i * 7919) % 60000), (server, (443, 80, 1433, 22)[i % 4]))
        self.ttl = (CLIENT_TTLS[i % len(CLIENT_TTLS)], SERVER_TTLS[i % len(SERVER_TTLS)])
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ipid = [rng.getrandbits(16), rng.getrandbits(16)]
        self.left = max(budget, 4)
        self.step = 0 if kind != "midflow" else 3

    def frame(self, side: int, flags: int, plen: int, *, ttl=None, ipid=None, seq=None,
              window=64240) -> bytes:
        (src, sport), (dst, dport) = self.ends[side], self.ends[1 - side]
        if seq is None:
            seq = self.seq[side]
        ack = self.seq[1 - side] if flags & ACK else 0
        if ipid is None:
            ipid = self.ipid[side]
            self.ipid[side] = (ipid + 1) & 0xFFFF
        hdr = IP_TCP.pack(0x45, 0, 40 + plen, ipid, 0x4000, ttl or self.ttl[side], 6, 0,
                          src, dst, sport, dport, seq, ack, 0x50, flags, window, 0, 0)
        return ETH + hdr + PAYLOAD[:plen]

    def advance(self, side: int, n: int) -> None:
        self.seq[side] = (self.seq[side] + n) & 0xFFFFFFFF

    def next(self):
        """(frame, delay to next packet or None)."""
        rng, step = self.rng, self.step
        self.step += 1
        self.left -= 1
        kind = self.kind
        if step == 0:
            f = self.frame(0, SYN, 0)
            self.advance(0, 1)
            return f, 0.001 + rng.random() * 0.05
        if step == 1:
            if kind == "refused":
                return self.frame(1, RST | ACK, 0, seq=0), None
            f = self.frame(1, SYN | ACK, 0, window=65535)
            self.advance(1, 1)
            return f, 0.0005 + rng.random() * 0.05
        if step == 2:
            return self.frame(0, ACK, 0), 0.001
        if self.left > 2:
            side = step & 1
            r = rng.random()
            plen = 0 if r < 0.5 else (1460 if r > 0.85 else 40 + int(r * 300))
            flags = PSH | ACK if plen else ACK
            f = self.frame(side, flags, plen)
            self.advance(side, plen)
            delay = 0.0002 + rng.random() * 0.2
            if kind == "idle_rst" and self.left == 3:
                delay = IDLE_GAP  # silence, then the request the firewall answers
            return f, delay
        if self.left == 2:
            if kind in ("fin", "midflow"):
                f = self.frame(0, FIN | ACK, 0)
                self.advance(0, 1)
                return f, 0.001
            f = self.frame(0, PSH | ACK, 120)  # the request that draws the RST
            self.advance(0, 120)
            return f, 0.0008 + rng.random() * 0.01
        if self.left == 1:
            if kind in ("fin", "midflow"):
                f = self.frame(1, FIN | ACK, 0)
                self.advance(1, 1)
                return f, 0.001
            if kind == "endpoint_rst":
                return self.frame(1, RST | ACK, 0), None
            forged_ttl = 253 if kind == "idle_rst" else FORGED_TTLS[self.ttl[1] % 5]
            if forged_ttl == self.ttl[1]:
                forged_ttl = 253
            return self.frame(1, RST | ACK, 0, ttl=forged_ttl, ipid=0, window=0), None
        return self.frame(0, ACK, 0), None


def choose_kind(rng: random.Random) -> str:
    r, acc = rng.random(), 0.0
    for kind, share in KINDS:
        acc += share
        if r < acc:
            return kind
    return KINDS[-1][0]


def generate(n_packets: int, out: Path, *, connections: int = 20_000, seed: int = 1) -> int:
    rng = random.Random(seed)
    per_flow = max(4, round(n_packets * 1.1 / connections))
    heap: list = []
    for i in range(connections):
        kind = choose_kind(rng)
        # Idle flows start early enough to end before the packet budget cuts the capture.
        start = rng.random() * (DURATION - IDLE_GAP - 1800 if kind == "idle_rst" else DURATION)
        budget = max(4, int(per_flow * (0.5 + rng.random())))
        heap.append((start, i, Flow(rng, i, budget, kind)))
    heapq.heapify(heap)
    written = 0
    pack_record = RECORD.pack
    with open(out, "wb", buffering=1 << 22) as fh:
        fh.write(PCAP_HEADER)
        while heap and written < n_packets:
            t, i, flow = heap[0]
            frame, delay = flow.next()
            ts = START + t
            sec = int(ts)
            fh.write(pack_record(sec, int((ts - sec) * 1e6), len(frame), len(frame)) + frame)
            written += 1
            if delay is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (t + delay, i, flow))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packets", nargs="?", type=int, default=1_000_000)
    ap.add_argument("out", type=Path)
    ap.add_argument("--connections", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    n = generate(args.packets, args.out, connections=args.connections, seed=args.seed)
    print(f"{args.out}: {n} packets, {args.connections} connections", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
