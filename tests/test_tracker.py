"""Connection tracker, fed TcpSegment objects built by hand (no reader involved)."""
from __future__ import annotations

import socket
import tracemalloc

from facts.packet import ACK, FIN, PSH, RST, SYN, IcmpTooBig, IpFragment, TcpSegment
from facts.rst import build_facts
from facts.tracker import Tracker, serial_diff

A = socket.inet_aton("10.0.0.2")
B = socket.inet_aton("10.0.0.1")
C = socket.inet_aton("10.0.0.3")


class Flow:
    """Hand-made segments between A:50000 (client) and B:80, with seq/ack bookkeeping."""

    def __init__(self, a=A, b=B, aport=50000, bport=80, t0=1000.0):
        self.ends = {0: [a, aport, 64, 100, 0x100], 1: [b, bport, 118, 9000, 0x900]}
        self.nxt = {0: 100, 1: 9000}
        self.t = t0
        self.frame = 0
        self.out: list = []

    def seg(self, side, flags, plen=0, *, dt=0.0, ttl=None, seq=None, ack=None, window=1000,
            ip_id=None, fragmented=False, payload=None, forged=False):
        me, peer = self.ends[side], self.ends[1 - side]
        self.t += dt
        self.frame += 1
        seq = self.nxt[side] if seq is None else seq
        ack = (self.nxt[1 - side] if flags & ACK else 0) if ack is None else ack
        if ip_id is None:
            ip_id = me[4]
        s = TcpSegment(self.frame, self.t, 4, me[0], peer[0], me[1], peer[1],
                       me[2] if ttl is None else ttl, ip_id, seq, ack, flags, 0, window,
                       plen, payload if payload is not None else b"x" * plen, fragmented)
        if not forged:
            me[4] = (me[4] + 1) & 0xFFFF
            self.nxt[side] = (seq + plen + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        self.out.append(s)
        return s

    def handshake(self):
        self.seg(0, SYN)
        self.seg(1, SYN | ACK, dt=0.01)
        self.seg(0, ACK, dt=0.01)


def run(packets):
    t = Tracker()
    t.feed(packets)
    return t, *build_facts(t, "test.pcap")


def test_handshake_data_fin_counts_and_roles():
    f = Flow()
    f.handshake()
    f.seg(0, PSH | ACK, 100, dt=0.1)
    f.seg(1, PSH | ACK, 1400, dt=5.0)
    f.seg(1, PSH | ACK, 300, dt=0.01, ttl=117)
    f.seg(0, FIN | ACK, dt=0.5)
    f.seg(1, FIN | ACK, dt=0.01)
    f.seg(0, ACK, dt=0.01)
    t, conns, rsts = run(f.out)
    assert len(conns) == 1 and rsts == []
    c = conns[0]
    assert (c.client.ip, c.client.port, c.server.ip, c.server.port) == \
        ("10.0.0.2", 50000, "10.0.0.1", 80)
    assert not c.roles_inferred and c.handshake == "complete"
    assert (c.packets_c2s, c.packets_s2c, c.bytes_c2s, c.bytes_s2c) == (5, 4, 100, 1700)
    assert c.close == "fin" and c.fin_by == ["client", "server"]
    assert abs(c.largest_idle_gap_s - 5.0) < 1e-9 and c.largest_segment == 1400
    assert c.client_ttls == {64: 5} and c.server_ttls == {118: 3, 117: 1}
    assert c.server_ttl_changes == 2 and c.client_ttl_changes == 0  # 118 118 117 118
    assert c.syn_time == 1000.0 and abs(c.synack_time - 1000.01) < 1e-9
    assert (c.client_isn, c.server_isn) == (100, 9000)
    assert t.tcp_packets == 9 and t.rst_packets == 0


def test_mid_flow_roles_from_ports_and_first_sender_on_tie():
    f = Flow(aport=443, bport=51000)  # first sender has the LOW port: it is the server
    f.seg(0, PSH | ACK, 10)
    f.seg(1, ACK, dt=0.1)
    tie = Flow(a=C, aport=7000, bport=7000)
    tie.seg(1, ACK, 5)  # first sender is B: client on a tie
    tie.seg(0, ACK)
    _, conns, _ = run(f.out + tie.out)
    first, second = conns
    assert first.roles_inferred and first.client.port == 51000 and first.server.port == 443
    assert first.packets_s2c == 1 and first.bytes_s2c == 10
    assert second.roles_inferred and second.client.ip == "10.0.0.1"
    assert first.handshake == "none"


def test_syn_after_close_starts_new_connection_but_retransmitted_syn_does_not():
    f = Flow()
    f.seg(0, SYN)
    f.seg(0, SYN, dt=1.0, seq=100)  # retransmission on an open tuple: same connection
    f.seg(1, RST | ACK, dt=0.01, ack=101)
    f.seg(0, SYN, dt=0.5, seq=100)  # tuple closed by the RST: a new connection
    f.seg(1, SYN | ACK, dt=0.01)
    f.seg(0, ACK, dt=0.01)
    f.seg(0, FIN | ACK, dt=0.01)
    f.seg(1, FIN | ACK, dt=0.01)
    f.seg(0, SYN, dt=3.0, seq=5000)  # closed by FIN both ways: a third one
    _, conns, rsts = run(f.out)
    assert [c.id for c in conns] == ["c1", "c2", "c3"]
    assert conns[0].packets_c2s == 2 and conns[0].close == "rst" and conns[0].rst_count == 1
    assert conns[1].handshake == "complete" and conns[1].close == "fin"
    assert conns[2].handshake == "syn"
    assert rsts[0].connection_id == "c1" and rsts[0].rst_answers_syn


def test_fragments_matched_by_address_pair_and_ip_id():
    f = Flow()
    f.handshake()
    first = f.seg(0, PSH | ACK, 3000, dt=0.1, ip_id=0x4242, fragmented=True)
    other = Flow(a=C)
    other.handshake()
    t = Tracker()
    t.feed(f.out + other.out + [
        IpFragment(99, first.ts, 4, A, B, 0x4242, 6, 1480),
        IpFragment(100, first.ts, 4, C, B, 0x4243, 6, 1480),  # no fragmented first part
    ])
    assert t.frag_owner[(A, B, 0x4242)].id == "c1"
    conns, _ = build_facts(t, "x")
    assert conns[0].fragments_seen and not conns[1].fragments_seen


def test_icmp_too_big_sets_path_mtu_to_the_smallest():
    f = Flow()
    f.handshake()
    f.seg(1, PSH | ACK, 1460, dt=0.1)
    icmps = [IcmpTooBig(50, f.t + 0.01, 4, C, B, B, A, 80, 50000, 1400),
             IcmpTooBig(51, f.t + 0.02, 4, C, B, B, A, 80, 50000, 1300),
             IcmpTooBig(52, f.t + 0.03, 4, C, B, B, C, 80, 50000, 1200)]  # other flow
    t = Tracker()
    t.feed(f.out + icmps)
    conns, _ = build_facts(t, "x")
    assert conns[0].icmp_too_big_seen and conns[0].path_mtu == 1300


def test_sequence_tracking_across_the_32_bit_wrap():
    assert serial_diff(5, 0xFFFFFFF0) == 21 and serial_diff(0xFFFFFFF0, 5) == -21
    f = Flow()
    f.ends[0][3] = 0
    f.nxt[0] = 0xFFFFFF00
    f.seg(0, PSH | ACK, 0x80)
    f.seg(0, PSH | ACK, 0x100, dt=0.1)  # wraps to 0x80
    f.seg(1, RST, dt=0.1, seq=9000)
    f.seg(0, RST, dt=0.1, seq=0x80)
    t = Tracker()
    t.feed(f.out)
    assert t.connections[0].half[0].nxt & 0xFFFFFFFF == 0x80
    _, rsts = build_facts(t, "x")
    assert rsts[1].seq_position == "exact" and rsts[1].seq_offset == 0


def test_memory_stays_flat_with_packet_count():
    def packets(n):
        # Made one at a time and not kept: what stays allocated is the tracker's own.
        f = Flow()
        f.handshake()
        yield from f.out
        for i in range(n):
            f.out.clear()
            yield f.seg(i % 2, PSH | ACK, 1400, dt=0.001)

    sizes = []
    for n in (2_000, 60_000):
        t = Tracker()
        tracemalloc.start()
        t.feed(packets(n))
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        sizes.append(current)
        assert len(t.connections) == 1
        # Kept segments hold only what a trigger excerpt shows.
        assert all(len(h.ldata.payload) == 64 for h in t.connections[0].half)
    assert sizes[1] < sizes[0] + 20_000, sizes


def test_seq_window_uses_the_scale_from_both_syns():
    def rst_after(wscales):
        f = Flow()
        f.handshake()
        f.seg(1, ACK, dt=0.1, window=100)  # receiver (server) advertises 100 << scale
        t = Tracker()
        t.feed(f.out)
        c = t.connections[0]
        c.half[0].wscale, c.half[1].wscale = wscales
        t.feed([f.seg(0, RST, dt=0.1, seq=f.nxt[0] + 5000, forged=True)])
        return build_facts(t, "x")[1][0]

    scaled = rst_after((7, 7))  # 100 << 7 = 12800 > 5000
    assert scaled.seq_position == "in_window" and scaled.seq_offset == 5000
    assert rst_after((7, -1)).seq_position == "outside"  # one side without: no scaling
    assert rst_after((None, None)).seq_position == "unknown"  # scale unknown, 5000 > 100
