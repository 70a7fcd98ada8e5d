"""The batch hand-over from the compiled ETL walk to the compiled tracker
(``EtlCapture.record_batches`` -> ``_ctrack.track_frame_batches``): the batches stand for
exactly the records of ``records()`` (frame numbers, clock, link types, directions, drops,
counters, warnings), whatever the merge piece size, on damaged and multi-processor files and
with pktmon component copies; the tracker fed batches (whole, cut anywhere, mixed with single
records) ends in the state it reaches over ``records()``, with the same ticks; and the whole
extraction agrees with the Python pass (RSTSLEUTH_NO_CEXT=1), progress calls included."""
from __future__ import annotations

from pathlib import Path

import pytest

from etl_factory import Packet, filetime, write_ndis_etl, write_pktmon_etl
from facts import ctrack
from facts.capture import etl_buffers, etl_fastc, open_capture
from facts.decode import decode
from test_ctrack import _state, needs_c
from test_ctrack_frames import agree
from test_etl_fused import VARIANTS as FUSED_VARIANTS
from test_etl_fused import _summary
from test_etl_multistream import VARIANTS as MULTI_VARIANTS

pytestmark = [needs_c, pytest.mark.skipif(
    not etl_fastc.available() or not hasattr(ctrack._ctrack, "track_frame_batches"),
    reason="the compiled ETL walk or track_frame_batches is not built")]

VARIANTS = {**{"fused-" + k: v for k, v in FUSED_VARIANTS.items()},
            **{"multi-" + k: v for k, v in MULTI_VARIANTS.items()}}


def expand(source):
    """The records a batch stands for (what feed_batch reads), single records unchanged."""
    for x in source:
        if len(x) != 3:
            yield x
            continue
        kept, frame, ctx = x
        linear, whole_s, tick_off, seconds, ndis_lts, ndis_dirs, pm_dirs, link_types = ctx
        for i, (ts, key, _app, code, dcode, orig, start, end, body, _extra) in enumerate(kept):
            lt = ndis_lts[code] if key is None else code
            link_types.add(lt)
            data = body[start:end]
            yield (frame + i + 1, whole_s + (ts + tick_off) / 1e7 if linear else seconds(ts),
                   lt, data, max(orig, len(data)),
                   ndis_dirs[dcode] if key is None else pm_dirs[dcode])


def _same_records(path, nonlinear=False):
    ref = open_capture(path)
    cap = open_capture(path)
    if nonlinear:
        ref.clock.linear = cap.clock.linear = False
    want = list(ref.records())
    got = list(expand(cap.record_batches()))
    assert got == want
    assert _summary(cap) == _summary(ref)
    return want


def _tracked(cap, source, batches):
    ticks = []
    track = ctrack._ctrack.track_frame_batches if batches else ctrack._ctrack.track_frames
    state = track(source, decode, lambda: ticks.append(cap.bytes_read))
    return _state(state.tracker()), ticks, _summary(cap)


def _same_state(path, source=lambda cap: cap.record_batches(), nonlinear=False):
    ref, cap = open_capture(path), open_capture(path)
    if nonlinear:
        ref.clock.linear = cap.clock.linear = False
    assert _tracked(cap, source(cap), True) == _tracked(ref, ref.records(), False)


def _damaged(tmp_path, cut_from_end):
    path = Path(write_pktmon_etl(tmp_path / "d.etl", _packets(300), components=3, processors=2,
                                 buffer_size=4096))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - cut_from_end])
    return path


def _packets(n, t0=1_700_000_000.0):
    eth = bytes.fromhex("3c846a01ea8b00155d0102030800")
    out = []
    for i in range(n):
        ip = bytes.fromhex("4500002800004000" "4006" "0000" "0a000005" "c6336407")
        tcp = ((50000 + i % 500).to_bytes(2, "big") + bytes.fromhex("01bb")
               + (i * 7 & 0xFFFFFFFF).to_bytes(4, "big") + bytes(4)
               + bytes([0x50, 0x14 if i % 97 == 0 else 0x10]) + bytes.fromhex("020000000000"))
        out.append(Packet(filetime(t0 + i * 1e-4), eth + ip + tcp, 1, ("in", "out")[i % 2]))
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_batches_are_the_records(tmp_path, name):
    path = VARIANTS[name](tmp_path / "v.etl")
    _same_records(path)
    _same_state(path)


@pytest.mark.parametrize("piece", [1, 2, 7, 128, 1000])
@pytest.mark.parametrize("kind", ["ndis-3", "pktmon-3copies-4", "pktmon-drops-2"])
def test_piece_sizes(tmp_path, monkeypatch, piece, kind):
    monkeypatch.setattr(etl_buffers, "MERGE_PIECE", piece)
    pk = _packets(400)
    path = {"ndis-3": lambda p: write_ndis_etl(p, pk, processors=3, buffer_size=4096),
            "pktmon-3copies-4": lambda p: write_pktmon_etl(p, pk, components=3, processors=4,
                                                           buffer_size=4096),
            "pktmon-drops-2": lambda p: write_pktmon_etl(
                p, pk, processors=2, buffer_size=2048, wifi_first=True,
                drops={5: (7, 3), 200: (8, 4)})}[kind](tmp_path / "p.etl")
    cap = open_capture(path)
    sizes = [len(x[0]) for x in cap.record_batches() if len(x) == 3]
    assert sizes    # (the merge of several streams joins pieces: no bound by piece)
    _same_records(path)
    _same_state(path)


@pytest.mark.parametrize("cut", [100, 1500, 3000, 5000])
def test_damaged_files(tmp_path, cut):
    path = _damaged(tmp_path, cut)
    cap = open_capture(path)
    list(cap.record_batches())
    _same_records(path)
    _same_state(path)


def test_drops_mix_batches_and_single_records(tmp_path):
    path = Path(write_pktmon_etl(tmp_path / "m.etl", _packets(300), components=3,
                                 drops={20: (42, 9), 150: (43, 1)}, wifi_first=True))
    kinds = {len(x) for x in open_capture(path).record_batches()}
    assert kinds == {3, 6}
    recs = _same_records(path)
    assert [r[0] for r in recs] == list(range(1, len(recs) + 1))
    _same_state(path)
    cap = open_capture(path)
    ctrack.read_frames(cap)
    assert len(cap.drops) == 2


def test_nonlinear_clock(tmp_path):
    path = write_pktmon_etl(tmp_path / "c.etl", _packets(200), components=3, processors=2,
                            buffer_size=4096)
    _same_records(path, nonlinear=True)
    _same_state(path, nonlinear=True)


@pytest.mark.parametrize("cut", [1, 3, 64])
def test_batches_cut_anywhere(tmp_path, cut):
    """Batch boundaries do not matter to the tracker: sub-batches of ``cut`` items, every
    third one handed over as single records."""
    path = write_ndis_etl(tmp_path / "n.etl", _packets(500), processors=2, buffer_size=4096)

    def recut(cap):
        for x in cap.record_batches():
            if len(x) != 3:
                yield x
                continue
            kept, frame, ctx = x
            for n, i in enumerate(range(0, len(kept), cut)):
                part = (kept[i:i + cut], frame + i, ctx)
                yield from (expand([part]) if n % 3 == 2 else [part])
    _same_state(path, recut)


def test_ticks_inside_batches(tmp_path, monkeypatch):
    """More than one tick of 65 536 packets: the ticks fall inside batches, at the same
    bytes_read as over records(); extract's progress calls equal the Python pass's."""
    pk = _packets(70_000)
    path = write_ndis_etl(tmp_path / "big.etl", pk, processors=2, buffer_size=1 << 16)
    ref, cap = open_capture(path), open_capture(path)
    got = _tracked(cap, cap.record_batches(), True)
    assert got == _tracked(ref, ref.records(), False)
    assert len(got[1]) == 2
    agree(Path(path), monkeypatch)


def test_errors_propagate(tmp_path):
    path = write_ndis_etl(tmp_path / "e.etl", _packets(300), buffer_size=4096)
    cap = open_capture(path)
    batches = [x for x in cap.record_batches() if len(x) == 3]
    kept, frame, ctx = batches[0]
    track = ctrack._ctrack.track_frame_batches

    def boom():
        raise RuntimeError("tick")
    with pytest.raises(RuntimeError, match="tick"):
        track([(kept * 600, frame, ctx)], decode, boom)
    with pytest.raises(TypeError):
        track([(tuple(kept), frame, ctx)], decode)
    with pytest.raises(TypeError):
        track([(kept, frame, ctx[:7])], decode)
    bad = (kept[0][:3] + (77,) + kept[0][4:],)
    with pytest.raises(KeyError):
        track([(list(bad), frame, ctx)], decode)
    outside = kept[0][:7] + (len(kept[0][8]) + 1,) + kept[0][8:]
    with pytest.raises(ValueError):
        track([([outside], frame, ctx)], decode)
    # track_frames itself keeps refusing batches
    with pytest.raises(TypeError):
        ctrack._ctrack.track_frames([(kept, frame, ctx)], decode)


@pytest.mark.parametrize("name", ["ndis-2", "pktmon-3copies-3"])
def test_extract_agrees(tmp_path, monkeypatch, name):
    pk = _packets(1000)
    path = {"ndis-2": lambda p: write_ndis_etl(p, pk, processors=2, buffer_size=4096),
            "pktmon-3copies-3": lambda p: write_pktmon_etl(p, pk, components=3, processors=3,
                                                           buffer_size=4096)}[name](
        tmp_path / "x.etl")
    used = []
    real = ctrack._ctrack.track_frame_batches
    monkeypatch.setattr(ctrack._ctrack, "track_frame_batches",
                        lambda *a: used.append(1) or real(*a), raising=True)
    agree(Path(path), monkeypatch)
    assert used


def test_without_compiled_walk(tmp_path, monkeypatch):
    """Without _etlwalk, record_batches is records() one at a time (etl_fast's Python loops),
    which track_frame_batches reads as track_frames does."""
    path = write_pktmon_etl(tmp_path / "w.etl", _packets(300), components=3, processors=2,
                            buffer_size=4096, drops={40: (42, 9)})
    monkeypatch.setattr(etl_fastc, "available", lambda: False)
    assert {len(x) for x in open_capture(path).record_batches()} == {6}
    _same_records(path)
    _same_state(path)
    agree(Path(path), monkeypatch)


def test_corpus_etl():
    corpus = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
    paths = sorted(corpus.glob("*.etl")) if corpus.is_dir() else []
    if not paths:
        pytest.skip(f"no .etl in the shared corpus at {corpus}")
    for path in paths:
        _same_records(path)
        _same_state(path)
