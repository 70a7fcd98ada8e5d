"""Multi-processor-stream .etl files through the compiled path (facts.capture.etl_fastc):
per buffer the same events as walk_buffer (so the time merge sees the same lists), and the
same records, packets, frame numbers, drops, warnings and counters as general_records() --
with a packet's copies spread over processors (not adjacent after the merge), with drops,
Wi-Fi copies, packets without PktGroupId, NDIS fragments, and on damaged files."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_factory import (PKTMON_DIRTAGS, PKTMON_GUID, PKTMON_TYPES, _PKTMON,  # noqa: E402
                         _Writer, _bounds, to_80211, write_ndis_etl, write_pktmon_etl)
from facts.capture import etl_buffers, etl_fastc, open_capture  # noqa: E402
from facts.capture.etl_events import NDIS_GUID, StreamState, walk_buffer  # noqa: E402
from test_etl import _mixed_links, _packets  # noqa: E402
from test_etl_fused import _fused, _general  # noqa: E402

needs_cext = pytest.mark.skipif(not etl_fastc.available(),
                                reason="facts.capture._etlwalk not built (or disabled)")


def write_spread_pktmon(path, packets, *, processors=3, components=3, snaplen=128,
                        buffer_size=2048, drops=(), wifi=(), no_group=(), compressed=False):
    """pktmon copies of each packet logged by different processors (copy k of packet i on
    processor (i + k) % processors), as real multi-processor traces have them: after the
    time merge the copies of one packet are not back to back in any buffer. Indexes in
    ``drops`` get a drop event, in ``wifi`` an 802.11 first copy, in ``no_group``
    PktGroupId 0."""
    start, end = _bounds(packets)
    w = _Writer(start, buffer_size, compressed, processors)
    for i, p in enumerate(packets):
        group = 0 if i in no_group else (5 << 48) | (i + 1)
        forms = [(p.linktype, p.data)] * components
        if i in wifi and p.linktype == 1:
            forms = [(105, to_80211(p.data))] + forms[1:]
        for k, (lt, data) in enumerate(forms):
            logged = data[:snaplen]
            user = _PKTMON.pack(group, 1 + i % 7, k + 1, PKTMON_DIRTAGS.get(p.direction, 0),
                                PKTMON_TYPES[lt], 10 + k, 1, 0, 0, 0, len(data),
                                len(logged)) + logged
            w.event(i + k, p.ticks + k * 3, PKTMON_GUID, 160, 0x10, user)
        if i in drops:
            logged = p.data[:snaplen]
            user = _PKTMON.pack(group, 1 + i % 7, components + 1,
                                PKTMON_DIRTAGS.get(p.direction, 0), PKTMON_TYPES[p.linktype],
                                42, 1, 0, 9, 0xE0004, len(p.data), len(logged)) + logged
            w.event(i + 1, p.ticks + components * 3, PKTMON_GUID, 170, 0x20, user)
    return w.write(path, end)


def _pktmon_mixed():
    return [p for p in _mixed_links() if p.linktype != 105] + _packets(30)


VARIANTS = {
    "pktmon-1copy-4": lambda p: write_pktmon_etl(p, _packets(60), components=1, snaplen=65535,
                                                 processors=4, buffer_size=2048),
    "pktmon-3copies-4": lambda p: write_pktmon_etl(p, _packets(60), processors=4,
                                                   buffer_size=2048),
    "pktmon-compressed-3": lambda p: write_pktmon_etl(p, _packets(50), processors=3,
                                                      compressed=True, buffer_size=2048),
    "pktmon-drops-wifi-4": lambda p: write_pktmon_etl(
        p, _packets(60), processors=4, buffer_size=2048, wifi_first=True,
        drops={2: (7, 3), 33: (8, 4), 59: (9, 5)}),
    "pktmon-raw-ip-2": lambda p: write_pktmon_etl(p, _pktmon_mixed(), processors=2,
                                                  buffer_size=1024),
    "spread-3": lambda p: write_spread_pktmon(p, _packets(60)),
    "spread-4-1copy": lambda p: write_spread_pktmon(p, _packets(40), processors=4,
                                                    components=1),
    "spread-unusual": lambda p: write_spread_pktmon(
        p, _packets(60), processors=4, drops={4, 20, 41}, wifi={1, 5, 6, 30},
        no_group={10, 11, 50}),
    "spread-compressed": lambda p: write_spread_pktmon(p, _packets(50), compressed=True,
                                                       drops={7}, wifi={8}),
    "ndis-whole-4": lambda p: write_ndis_etl(p, _mixed_links() + _packets(40), processors=4,
                                             buffer_size=2048),
    "ndis-fragments-3": lambda p: write_ndis_etl(p, _mixed_links() + _packets(30),
                                                 fragment_size=250, processors=3,
                                                 buffer_size=2048),
    "ndis-extended-2": lambda p: write_ndis_etl(p, _packets(20), extended=True, processors=2),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_multistream_equals_general(tmp_path, name):
    path = VARIANTS[name](tmp_path / "m.etl")
    assert len(open_capture(path).etl.streams()) > 1
    general = _general(path)
    assert general[1], "the variant must decode packets"
    assert _fused(path) == general


@needs_cext
@pytest.mark.parametrize("name", ["pktmon-3copies-4", "spread-unusual", "ndis-fragments-3"])
def test_multistream_files_take_the_compiled_path(tmp_path, name, monkeypatch):
    path = VARIANTS[name](tmp_path / "m.etl")
    calls = []
    real = etl_fastc.fused_c
    monkeypatch.setattr(etl_fastc, "fused_c", lambda *a: calls.append(1) or real(*a))
    cap = open_capture(path)
    assert list(cap.records()) == list(cap.general_records())
    assert calls == [1]


def _compact_lists(path):
    """Per stream, walk_buffer's per-buffer lists cut into merge pieces as EtlFile.events
    cuts them (through the compact item form and back:
    general NDIS items hold a copy of their bytes, compact ones an offset into the body)."""
    etl = open_capture(path).etl
    out = []
    for proc, entries in etl.streams().items():
        state = StreamState()
        out.append([list(etl_fastc._general(map(etl_fastc._compact, lst)))
                    for lst in etl_buffers._pieces(
                        etl._stream(entries, walk_buffer, proc, state, None))])
        out[-1].append((state.pktmon_events, state.ndis_events))
    return out


def _c_lists(path):
    etl = open_capture(path).etl
    out = []
    for proc, entries in etl.streams().items():
        state = StreamState()
        out.append([list(etl_fastc._general(lst))
                    for lst in etl_fastc._stream(etl, entries, proc, state, None)])
        out[-1].append((state.pktmon_events, state.ndis_events))
    return out


@needs_cext
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_per_buffer_lists_equal_walk_buffer(tmp_path, name):
    """The merge input itself is walk_buffer's: same events, same order, same counts, also
    where the C walk stops mid-buffer and walk_buffer takes over."""
    path = VARIANTS[name](tmp_path / "m.etl")
    assert _c_lists(path) == _compact_lists(path)


def test_copies_on_other_processors_fold_into_one_packet(tmp_path):
    pkts = _packets(30)
    path = write_spread_pktmon(tmp_path / "s.etl", pkts, processors=3, components=3)
    records = list(open_capture(path).records())
    assert [r[0] for r in records] == list(range(1, 31))
    assert [r[3] for r in records] == [p.data[:128] for p in pkts]
    assert [r[5] for r in records] == [p.direction for p in pkts]


def _damaged(path, rng, kind):
    data = bytearray(Path(path).read_bytes())
    if kind == "cut":
        data = data[:rng.randrange(2048 + 100, len(data))]
    elif kind == "flip":
        for _ in range(12):
            data[rng.randrange(2048 + 72, len(data))] = rng.randrange(256)
    else:                                       # a run of garbage inside a buffer body
        at = rng.randrange(2048 + 72, len(data) - 200)
        data[at:at + 150] = rng.randbytes(150)
    Path(path).write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["cut", "flip", "garbage"])
@pytest.mark.parametrize("name", ["pktmon-3copies-4", "spread-unusual", "ndis-fragments-3",
                                  "pktmon-drops-wifi-4"])
def test_damaged_multistream_equals_general(tmp_path, name, kind):
    rng = random.Random(f"{name}-{kind}")
    for attempt in range(6):
        path = VARIANTS[name](tmp_path / f"d{attempt}.etl")
        _damaged(path, rng, kind)
        assert _fused(path) == _general(path)
        if etl_fastc.available():
            assert _c_lists(path) == _compact_lists(path)


def test_compressed_buffer_damage_reported_like_general(tmp_path):
    path = Path(VARIANTS["spread-compressed"](tmp_path / "c.etl"))
    data = bytearray(path.read_bytes())
    data[2048 + 72 + 40:2048 + 72 + 60] = b"\xff" * 20
    path.write_bytes(bytes(data))
    general = _general(path)
    assert _fused(path) == general


def test_fast_path_helpers_round_trip():
    """_general undoes _compact for the events the merged loop reads itself."""
    body = bytes(range(200))
    pm = (123, 1, 160, (9 << 16) | 4, 2, 4, 3, 900, 10, 60, body)
    whole = (124, 3, 105, b"abc", "in")
    other = (125, 2, 0xC0000000, 7, 7, 10, 20, body, 0)
    compact = [etl_fastc._compact(ev) for ev in (pm, whole, other)]
    assert compact[0][1] > 3 and compact[1][1] is None and compact[2] is other
    assert list(etl_fastc._general(compact)) == [pm, whole, other]


@pytest.mark.parametrize("piece", [1, 2, 5])
@pytest.mark.parametrize("name", ["pktmon-3copies-4", "spread-unusual", "pktmon-drops-wifi-4",
                                  "ndis-fragments-3", "ndis-whole-4"])
def test_buffers_merged_in_pieces(tmp_path, name, piece, monkeypatch):
    """Buffers cut into merge pieces (etl_buffers.MERGE_PIECE, 128 by default: small here so
    that the factory's buffers are cut, also where the C walk stops mid-buffer)."""
    monkeypatch.setattr(etl_buffers, "MERGE_PIECE", piece)
    path = VARIANTS[name](tmp_path / "m.etl")
    if etl_fastc.available():
        c_lists, general_lists = _c_lists(path), _compact_lists(path)
        assert [len(lst) for lst in c_lists] == [len(lst) for lst in general_lists]
        assert c_lists == general_lists
    assert _fused(path) == _general(path)


def test_equal_timestamps_on_other_processors(tmp_path, monkeypatch):
    """Packets logged at the same instant by several processors: both merges order them
    alike (frame numbers included), whole buffers or pieces."""
    pkts = _packets(40)
    for k, p in enumerate(pkts):
        p.ticks = pkts[0].ticks + (k // 4) * 1000
    for piece in (512, 3):
        monkeypatch.setattr(etl_buffers, "MERGE_PIECE", piece)
        path = write_spread_pktmon(tmp_path / f"e{piece}.etl", pkts, processors=4,
                                   components=1)
        records = list(open_capture(path).records())
        assert records == list(open_capture(path).general_records())
        assert len(records) == 40


def _walk_in_pieces(body, piece):
    """The C walk from offset 0 called again and again with ``max_items`` = piece, as
    etl_fastc._stream calls it."""
    walk = etl_fastc._walk
    state = (None, 0, 0)
    items, p, pm, nd = [], 0, 0, 0
    while True:
        got, p, *rest, a, b = walk(body, p, *state, PKTMON_GUID, NDIS_GUID,
                                   etl_fastc.SIZE_AT_4_TABLE, True, piece)
        state = tuple(rest)
        assert len(got) <= piece and all(it[8] is body for it in got)
        items += got
        pm, nd = pm + a, nd + b
        if not (p >= 0 and len(got) == piece):
            return items, p, state, pm, nd


@needs_cext
@pytest.mark.parametrize("piece", [1, 2, 7, 512])
def test_walk_in_pieces_equals_one_walk(tmp_path, piece):
    """max_items only cuts the walk: the same items (with their body), stop offset, state
    and counts as one call, on factory buffers and on random or damaged bytes."""
    walk = etl_fastc._walk
    bodies = []
    for name in ("pktmon-drops-wifi-4", "spread-unusual", "ndis-fragments-3"):
        etl = open_capture(VARIANTS[name](tmp_path / f"{name}.etl")).etl
        bodies += [body for _off, _hdr, body in etl.bodies(etl.buffers[1:])]
    rng = random.Random(piece)
    for body in list(bodies):
        damaged = bytearray(body)
        for _ in range(5):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        bodies += [bytes(damaged), rng.randbytes(len(body))]
    for body in bodies:
        items, p, *state, pm, nd = walk(body, 0, None, 0, 0, PKTMON_GUID, NDIS_GUID,
                                        etl_fastc.SIZE_AT_4_TABLE, True)
        whole = (items, p, tuple(state), pm, nd)
        assert _walk_in_pieces(body, piece) == whole
