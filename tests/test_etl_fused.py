"""The fused ETL reader (facts.capture.etl_fast, what iter_packets uses for .etl) against the
general path (records() + facts.decode.decode): the same packets, frame numbers, drops,
warnings and counters on every kind of file the factory writes, on damaged files, and on
the real pktmon capture (corpus 29)."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from etl_factory import write_ndis_etl, write_pktmon_etl  # noqa: E402
from facts.capture import open_capture  # noqa: E402
from facts.capture.etl import EtlCapture  # noqa: E402
from facts.decode import decode, iter_packets  # noqa: E402
from facts.errors import CaptureError  # noqa: E402
from test_etl import _mixed_links, _packets  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def _fields(pkt):
    names = [n for c in type(pkt).__mro__ for n in getattr(c, "__slots__", ())]
    return (type(pkt).__name__,) + tuple(getattr(pkt, n, None) for n in names)


def _summary(cap):
    return (list(cap.warnings), [d.model_dump() for d in cap.drops], cap.events_read,
            sorted(cap.link_types), cap.records_read, sorted(cap.providers_seen),
            cap.bytes_read)


def _general(path):
    """Records through the general walk and fold, decoded one by one."""
    cap = open_capture(path)
    out = []
    records = list(cap.general_records())
    for frame, ts, lt, data, origlen, direction in records:
        pkt = decode(lt, data, frame, ts, origlen, direction)
        if pkt is not None:
            out.append(_fields(pkt))
    return records, out, _summary(cap)


def _fused(path):
    """The fused loop, once yielding records, once decoding (iter_packets)."""
    cap = open_capture(path)
    assert isinstance(cap, EtlCapture)
    records = list(cap.records())
    summary = _summary(cap)
    out = [_fields(p) for p in iter_packets(cap)]
    assert _summary(cap) == summary
    return records, out, summary


def _handed_over(path) -> int:
    """How often the fused loop left events to the general fold (both passes)."""
    cap = open_capture(path)
    calls = []
    fold = cap.fold_records
    cap.fold_records = lambda *args: calls.append(args) or fold(*args)
    list(iter_packets(cap))
    list(cap.records())
    return len(calls)


def _mixed_pktmon():
    """Ethernet and raw-IP packets (pktmon PacketType 1 and 3)."""
    return [p for p in _mixed_links() if p.linktype != 105]


VARIANTS = {
    "pktmon-1copy": lambda p: write_pktmon_etl(p, _packets(50), components=1, snaplen=65535),
    "pktmon-3copies-128": lambda p: write_pktmon_etl(p, _packets(50), components=3),
    "pktmon-compressed": lambda p: write_pktmon_etl(p, _packets(50), compressed=True,
                                                    buffer_size=2048),
    "pktmon-small-buffers": lambda p: write_pktmon_etl(p, _packets(50), buffer_size=1024,
                                                       components=4),
    "pktmon-raw-ip": lambda p: write_pktmon_etl(p, _mixed_pktmon(), components=2),
    "pktmon-drop-midway": lambda p: write_pktmon_etl(p, _packets(40), drops={20: (42, 9)}),
    "pktmon-wifi-first": lambda p: write_pktmon_etl(p, _packets(30), wifi_first=True),
    "pktmon-2-processors": lambda p: write_pktmon_etl(p, _packets(40), processors=2,
                                                      buffer_size=2048),
    "pktmon-wifi-drops-2-processors": lambda p: write_pktmon_etl(
        p, _packets(40), processors=2, buffer_size=2048, wifi_first=True,
        drops={5: (7, 3), 30: (8, 4)}),
    "pktmon-wifi-only-waits": lambda p: write_pktmon_etl(
        p, _packets(12), components=1, wifi_first=True, drops={3: (77, 5)}),
    "ndis-whole": lambda p: write_ndis_etl(p, _packets(50)),
    "ndis-mixed-links": lambda p: write_ndis_etl(p, _mixed_links()),
    "ndis-fragments": lambda p: write_ndis_etl(p, _mixed_links(), fragment_size=100),
    "ndis-extended": lambda p: write_ndis_etl(p, _packets(10), extended=True),
    "ndis-3-processors": lambda p: write_ndis_etl(p, _packets(50), processors=3,
                                                  buffer_size=2048),
    "ndis-fragments-3-processors": lambda p: write_ndis_etl(
        p, _mixed_links() + _packets(20), fragment_size=300, processors=3, buffer_size=2048),
    "empty": lambda p: write_ndis_etl(p, []),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fused_equals_general(tmp_path, name):
    path = VARIANTS[name](tmp_path / "v.etl")
    general = _general(path)
    assert _fused(path) == general
    if name.startswith(("pktmon", "ndis")):
        assert general[1], "the variant must decode packets"


@pytest.mark.parametrize("name", ["pktmon-1copy", "pktmon-3copies-128", "pktmon-raw-ip",
                                  "pktmon-compressed", "ndis-whole", "ndis-mixed-links",
                                  "pktmon-2-processors", "ndis-3-processors"])
def test_common_files_stay_in_the_fused_loop(tmp_path, name):
    assert not _handed_over(VARIANTS[name](tmp_path / "v.etl"))


@pytest.mark.parametrize("name", ["pktmon-drop-midway", "ndis-fragments",
                                  "pktmon-wifi-drops-2-processors",
                                  "ndis-fragments-3-processors"])
def test_unusual_events_hand_over_to_the_general_fold(tmp_path, name):
    assert _handed_over(VARIANTS[name](tmp_path / "v.etl"))


@pytest.mark.parametrize("name", ["pktmon-wifi-first", "pktmon-wifi-drops-2-processors"])
def test_fold_hands_back_once_nothing_waits(tmp_path, name):
    """Each Wi-Fi-first packet goes to the general fold, which returns the stream once its
    Ethernet copy arrived: several hand-overs per pass, not one for the rest of the file."""
    assert _handed_over(VARIANTS[name](tmp_path / "v.etl")) >= 2 * 5


def test_truncated_mid_buffer_same_as_general(tmp_path):
    path = Path(write_pktmon_etl(tmp_path / "t.etl", _packets(60), buffer_size=4096))
    data = path.read_bytes()
    for cut in (len(data) - 3000, len(data) - 1500, len(data) - 100):
        path.write_bytes(data[:cut])
        assert _fused(path) == _general(path)


def test_damaged_files_same_as_general(tmp_path):
    sources = [
        Path(write_pktmon_etl(tmp_path / "a.etl", _packets(30), buffer_size=2048,
                              components=3)).read_bytes(),
        Path(write_ndis_etl(tmp_path / "b.etl", _packets(30), buffer_size=2048)).read_bytes(),
    ]
    target = tmp_path / "fz.etl"
    for seed in range(60):
        rnd = random.Random(seed)
        data = bytearray(rnd.choice(sources))
        for _ in range(rnd.randrange(1, 10)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        target.write_bytes(bytes(data))
        try:
            general = _general(target)
        except CaptureError:
            continue
        assert _fused(target) == general, seed


def test_early_stop_keeps_counters_sane(tmp_path):
    path = write_pktmon_etl(tmp_path / "s.etl", _packets(40))
    cap = open_capture(path)
    it = iter_packets(cap)
    first = [next(it) for _ in range(5)]
    assert [p.frame for p in first] == [1, 2, 3, 4, 5]
    it.close()
    assert cap.records_read >= 5 and cap.events_read >= 5


def test_corpus_pktmon_fused_equals_general():
    path = CORPUS / "29_pktmon_nathaniel.etl"
    if not path.exists():
        pytest.skip(f"corpus file 29 not found under {CORPUS}")
    fused = _fused(path)
    assert fused == _general(path)
    assert len(fused[0]) == 260 and len(fused[1]) == 159


def test_single_stream_records_progress_and_counters(tmp_path):
    path = write_pktmon_etl(tmp_path / "g.etl", _packets(60), buffer_size=2048)
    cap = open_capture(path)
    it = cap.records()
    next(it)
    assert 0 < cap.bytes_read < Path(path).stat().st_size
    assert cap.records_read == 1
    rest = list(it)
    assert [r[0] for r in rest] == list(range(2, 61)) and cap.records_read == 60
    assert cap.bytes_read == Path(path).stat().st_size
