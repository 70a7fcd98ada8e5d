"""The compiled tracker over raw frames (``_ctrack.track_frames`` via ``ctrack.read_frames``):
pcapng and ETL records decoded inline in C (link types 1/113/276) or by facts.decode, against
the Python pass (RSTSLEUTH_NO_CEXT=1): CaptureInfo, Connections, RstEvents (dumps and JSON),
progress calls, the reader's counters, warnings and drops, and every slot of the tracker state.
"""
from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from etl_factory import Packet, filetime, write_ndis_etl, write_pktmon_etl
from facts import ctrack
from facts.capture import open_capture
from facts.capture.pcapng_writer import PcapngWriter, write_capture
from facts.decode import decode
from facts.extract import FactStream
from facts.packet import TcpSegment
from builders import bench_capture
from test_ctrack import (_python_tracker, _state, corpus_files, extract_with_progress, needs_c,
                         same_results, scenario, sll, sll2, write_pcap)
from test_etl_fused import VARIANTS as FUSED_VARIANTS
from test_etl_multistream import VARIANTS as MULTI_VARIANTS

pytestmark = needs_c


@pytest.fixture(scope="module")
def records():
    return scenario()


def _progress(path, monkeypatch, compiled):
    return extract_with_progress(path, monkeypatch, compiled)[1]


def agree(path, monkeypatch):
    """The raw-frame pass and the Python pass agree on everything; returns the extraction."""
    used = []
    real = ctrack.read_frames
    monkeypatch.setattr(ctrack, "read_frames", lambda *a: used.append(1) or real(*a))
    out = same_results(path, monkeypatch, state=False)
    assert used, "extract did not read through track_frames"
    assert _progress(path, monkeypatch, True) == _progress(path, monkeypatch, False)
    cap = open_capture(path)
    c_tr = real(cap).tracker()
    py_tr, py_cap = _python_tracker(path)
    assert (cap.records_read, cap.warnings, cap.link_types, cap.bytes_read) == (
        py_cap.records_read, py_cap.warnings, py_cap.link_types, py_cap.bytes_read)
    if hasattr(cap, "drops"):
        assert cap.drops == py_cap.drops
        assert cap.events_read == py_cap.events_read
    assert _state(c_tr) == _state(py_tr)
    return out


# -- pcapng -------------------------------------------------------------------------------------
def _pcapng(path, items, tsresol=9):
    """items: (ts, linktype, frame, direction)."""
    buf = io.BytesIO()
    writer = PcapngWriter(buf, tsresol)
    for ts, lt, frame, direction in items:
        writer.write(ts, lt, frame, None, direction)
    Path(path).write_bytes(buf.getvalue())
    return path


_DIRS = (None, "in", "out")


@pytest.mark.parametrize("tsresol", [6, 7, 9])
def test_pcapng_ethernet_directions(records, tmp_path, monkeypatch, tsresol):
    items = [(ts, 1, fr, _DIRS[i % 3]) for i, (ts, fr) in enumerate(records)]
    out = agree(_pcapng(tmp_path / "e.pcapng", items, tsresol), monkeypatch)
    assert len(out["rsts"]) >= 40
    assert any(c["fragments_seen"] for c in out["connections"])
    assert any(c["ip_version"] == 6 for c in out["connections"])


@pytest.mark.parametrize("lt", [113, 276])
def test_pcapng_sll_direction_against_epb_flags(records, tmp_path, monkeypatch, lt):
    """The SLL packet type gives the direction only when the record has none of its own: the
    packet types and the epb_flags directions cycle out of step, so every pair is met."""
    wrap = sll if lt == 113 else sll2
    items = [(ts, lt, wrap(fr, (0, 4, 1, 0)[i % 4]), _DIRS[i % 3])
             for i, (ts, fr) in enumerate(records)]
    out = agree(_pcapng(tmp_path / "s.pcapng", items), monkeypatch)
    assert len(out["rsts"]) >= 40


def test_pcapng_interfaces_of_different_link_types(records, tmp_path, monkeypatch):
    """One interface per link type: Ethernet, SLL, SLL2 (inline) and raw IP (decode)."""
    forms = [(1, lambda f: f), (113, lambda f: sll(f, 4)), (276, lambda f: sll2(f, 0)),
             (101, lambda f: f[14:])]
    items = []
    for i, (ts, fr) in enumerate(records):
        lt, wrap = forms[i % 4]
        items.append((ts, lt, wrap(fr), _DIRS[i % 3]))
    path = _pcapng(tmp_path / "m.pcapng", items)
    out = agree(path, monkeypatch)
    assert out["capture"]["link_types"] == [1, 101, 113, 276]


@pytest.mark.parametrize("damage", ["cut", "block-length", "caplen", "trailer"])
def test_damaged_pcapng(records, tmp_path, monkeypatch, damage):
    items = [(ts, 1, fr, _DIRS[i % 3]) for i, (ts, fr) in enumerate(records)]
    data = bytearray(_pcapng(tmp_path / "ok.pcapng", items).read_bytes())
    # the 30th block after the section header and the interface
    off = 0
    for _ in range(32):
        off += struct.unpack_from("<I", data, off + 4)[0]
    if damage == "cut":
        data = data[:-30]
    elif damage == "block-length":
        data[off + 4:off + 8] = struct.pack("<I", 13)
    elif damage == "caplen":
        data[off + 20:off + 24] = struct.pack("<I", 60000)
    else:
        blen = struct.unpack_from("<I", data, off + 4)[0]
        data[off + blen - 4:off + blen] = struct.pack("<I", blen + 4)
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(bytes(data))
    out = agree(path, monkeypatch)
    assert len(out["capture"]["warnings"]) == 1


def test_pcap_without_inline_layout(records, tmp_path, monkeypatch):
    """Classic pcap of BSD loopback: not read by track_pcap, its records go through
    track_frames (and facts.decode)."""
    path = write_pcap(tmp_path / "null.pcap",
                      [(ts, struct.pack("<I", 2 if fr[12:14] == b"\x08\x00" else 30) + fr[14:])
                       for ts, fr in records], linktype=0)
    assert not ctrack.usable(open_capture(path))
    assert len(agree(path, monkeypatch)["rsts"]) >= 40


@pytest.mark.parametrize("lt", [101, 12, 228, 229])
def test_raw_ip_decoded_inline(records, tmp_path, monkeypatch, lt):
    """Raw IP (any version, or only the one the link type names) is decoded inline: a classic
    pcap is read by track_pcap, a pcapng by track_pcapng, and both agree with the Python pass
    (frames of the other version are nothing for raw IPv4 / IPv6)."""
    recs = [(ts, fr[14:]) for ts, fr in records]
    path = write_pcap(tmp_path / "raw.pcap", recs, linktype=lt)
    assert ctrack.usable(open_capture(path))
    out = same_results(path, monkeypatch)
    assert any(c["ip_version"] == (6 if lt == 229 else 4) for c in out["connections"])
    assert all(c["ip_version"] == 4 for c in out["connections"]) or lt != 228
    assert all(c["ip_version"] == 6 for c in out["connections"]) or lt != 229
    ng = _pcapng(tmp_path / "raw.pcapng", [(ts, lt, fr, _DIRS[i % 3])
                                           for i, (ts, fr) in enumerate(recs)])
    assert len(agree(ng, monkeypatch)["rsts"]) == len(out["rsts"])


def test_pcapng_benchmark_slice_progress(tmp_path, monkeypatch):
    """More than one progress chunk of 65 536 packets."""
    src = tmp_path / "bench.pcap"
    bench_capture(src, 70_000, connections=1500, seed=7)
    ng = tmp_path / "bench.pcapng"
    write_capture(open_capture(src), str(ng))
    out = agree(ng, monkeypatch)
    assert out["capture"]["records"] == 70_000
    assert len(_progress(ng, monkeypatch, True)) == 3


# -- ETL ------------------------------------------------------------------------------------
def _etl_packets(records):
    return [Packet(filetime(ts), fr, 1, _DIRS[1 + i % 2]) for i, (ts, fr) in enumerate(records)]


ETL_SCENARIO = {
    "ndis": lambda p, pk: write_ndis_etl(p, pk),
    "ndis-fragments-3-processors": lambda p, pk: write_ndis_etl(
        p, pk, fragment_size=200, processors=3, buffer_size=4096),
    "pktmon-1copy": lambda p, pk: write_pktmon_etl(p, pk, components=1, snaplen=65535),
    "pktmon-3copies": lambda p, pk: write_pktmon_etl(p, pk, components=3, snaplen=65535),
    "pktmon-128-drops-wifi-4-processors": lambda p, pk: write_pktmon_etl(
        p, pk, processors=4, buffer_size=4096, wifi_first=True,
        drops={3: (7, 3), 40: (8, 4), 77: (9, 5)}),
}


@pytest.mark.parametrize("name", sorted(ETL_SCENARIO))
def test_etl_scenario(records, tmp_path, monkeypatch, name):
    path = Path(ETL_SCENARIO[name](tmp_path / "s.etl", _etl_packets(records)))
    out = agree(path, monkeypatch)
    assert len(out["rsts"]) >= 40
    if "drops" in name:
        cap = open_capture(path)
        ctrack.read_frames(cap)
        assert len(cap.drops) == 3


@pytest.mark.parametrize("name", sorted(FUSED_VARIANTS))
def test_etl_reader_variants(tmp_path, monkeypatch, name):
    agree(Path(FUSED_VARIANTS[name](tmp_path / "v.etl")), monkeypatch)


@pytest.mark.parametrize("name", sorted(MULTI_VARIANTS))
def test_etl_multistream_variants(tmp_path, monkeypatch, name):
    agree(Path(MULTI_VARIANTS[name](tmp_path / "v.etl")), monkeypatch)


def test_etl_truncated(records, tmp_path, monkeypatch):
    path = Path(write_pktmon_etl(tmp_path / "t.etl", _etl_packets(records), buffer_size=4096))
    data = path.read_bytes()
    for cut in (len(data) - 3000, len(data) - 100):
        path.write_bytes(data[:cut])
        agree(path, monkeypatch)


@pytest.mark.parametrize("pattern", ["*.pcapng", "*.etl"])
def test_corpus(pattern, monkeypatch):
    for path in corpus_files(pattern):
        agree(path, monkeypatch)


def test_fact_stream_reads_frames(records, tmp_path, monkeypatch):
    items = [(ts, 1, fr, _DIRS[i % 3]) for i, (ts, fr) in enumerate(records)]
    path = _pcapng(tmp_path / "st.pcapng", items)
    streams = {}
    for env in (None, "1"):
        if env:
            monkeypatch.setenv("RSTSLEUTH_NO_CEXT", env)
        for with_conns in (True, False):
            stream = FactStream(path, connections=with_conns)
            streams[env, with_conns] = ([(f.model_dump(), f.model_dump_json()) for f in stream],
                                        stream.capture.model_dump())
    assert streams[None, True] == streams["1", True]
    assert streams[None, False] == streams["1", False]
    assert 40 <= len(streams[None, False][0]) < len(streams[None, True][0])


# -- the entry point itself -----------------------------------------------------------------
def _walked(path):
    return list(open_capture(path).walk())


def test_walk_form_equals_records_form(records, tmp_path):
    items = [(ts, 113, sll(fr, 4), _DIRS[i % 3]) for i, (ts, fr) in enumerate(records)]
    path = _pcapng(tmp_path / "w.pcapng", items)
    a = ctrack._ctrack.track_frames(_walked(path), decode).tracker()
    b = ctrack._ctrack.track_frames(list(open_capture(path).records()), decode).tracker()
    assert _state(a) == _state(b)


def test_bad_records_raise(records):
    frame = records[0][1]
    track = ctrack._ctrack.track_frames
    with pytest.raises(TypeError):
        track([(1, 0.0, 1, frame, len(frame))], decode)
    with pytest.raises(ValueError, match="direction"):
        track([(1, 0.0, 1, frame, len(frame), "sideways")], decode)
    with pytest.raises(ValueError, match="outside"):
        track([(1, 0.0, 1, frame, 10, len(frame), len(frame), None)], decode)
    with pytest.raises(TypeError):
        track([(1, 0.0, 1, 12345, len(frame), None)], decode)


def test_tick_counts_packets_and_errors_propagate(records):
    frame = records[0][1]
    recs = [(i + 1, float(i), 1, frame, len(frame), None) for i in range(70_000)]
    recs.insert(5, (0, 0.0, 1, b"\x00" * 20, 20, None))   # no packet: not counted
    ticks = []
    ctrack._ctrack.track_frames(recs, decode, lambda: ticks.append(1))
    assert len(ticks) == 2

    def boom():
        raise KeyError("stop")
    with pytest.raises(KeyError):
        ctrack._ctrack.track_frames(recs, decode, boom)


def test_common_frames_decode_inline(records, tmp_path):
    """Ethernet, SLL and SLL2 frames of plain IPv4/IPv6 TCP never reach the Python decoder."""
    wraps = {1: lambda f: f, 113: lambda f: sll(f, 0), 276: lambda f: sll2(f, 4)}
    plain = [(ts, fr) for ts, fr in records
             if isinstance(decode(1, fr, 1, ts, len(fr)), TcpSegment) and len(fr) >= 60
             and (fr[12:14] == b"\x86\xdd" and fr[20] == 6
                  or fr[14] == 0x45 and fr[23] == 6 and not fr[20] & 0x3F and not fr[21])]
    assert len(plain) > 20
    assert any(fr[12:14] == b"\x86\xdd" for _, fr in plain)
    for lt, wrap in wraps.items():
        calls = []

        def spy(*args):
            calls.append(args)
            return decode(*args)
        recs = [(i + 1, ts, lt, wrap(fr), len(fr), None) for i, (ts, fr) in enumerate(plain)]
        state = ctrack._ctrack.track_frames(recs, spy)
        assert calls == [], lt
        assert state.counts()[0] == len(plain)


# -- random frames --------------------------------------------------------------------------
def _fuzz_pcapng(path, seed):
    """test_ctrack_fuzz's random, partly malformed frames, each in a random link layer
    (Ethernet, SLL, SLL2 with random packet types, raw IP) with a random epb_flags direction."""
    from test_ctrack_fuzz import _write
    import random
    src = path.with_suffix(".pcap")
    _write(src, seed, 400)
    rng = random.Random(seed)
    items = []
    for _frame, ts, _lt, data, _orig, _dir in open_capture(src).records():
        etype = data[12:14] if len(data) >= 14 else b"\0\0"
        ptype = rng.choice([0, 4, 1, 3])
        lt, wrapped = rng.choice([
            (1, data),
            (113, struct.pack("!HHH8s", ptype, 1, 6, b"\x02" * 8) + etype + data[14:]),
            (276, etype + struct.pack("!HIHBBB8s", 0, 2, 1, ptype, 6, 0, b"\x02" * 8)[:18]
             + data[14:]),
            (101, data[14:]),
            (228, data[14:]),
            (229, data[14:]),
        ])
        items.append((ts, lt, wrapped, rng.choice(_DIRS)))
    return _pcapng(path, items, rng.choice([6, 9]))


@pytest.mark.parametrize("seed", range(8))
def test_random_frames_agree(seed, tmp_path, monkeypatch):
    out = agree(_fuzz_pcapng(tmp_path / f"fz{seed}.pcapng", seed), monkeypatch)
    assert out["capture"]["tcp_packets"] > 50
