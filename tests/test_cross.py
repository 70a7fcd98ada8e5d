"""facts.cross: the cross-connection patterns do not depend on the order the connections
come in (the one pass over them counts source ports in order of start)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from facts import cross
from facts.extract import extract
from tests.builders import bench_capture

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_slice(tmp_path_factory):
    path = tmp_path_factory.mktemp("cross") / "slice.pcap"
    bench_capture(path, 60_000, connections=1200, seed=9)
    return extract(str(path))


def _dump(out: dict) -> list:
    return sorted((k, v.model_dump_json()) for k, v in out.items())


def test_same_patterns_in_any_connection_order(bench_slice):
    defaults = [("Cisco ASA", 3600.0), ("Linux conntrack", 432000.0)]
    want = cross.analyse(bench_slice.connections, bench_slice.rsts, defaults)
    assert any(v.cross_port_syn_rejects for v in want.values())
    assert any(v.cross_idle_matches_default for v in want.values())
    shuffled = list(bench_slice.connections)
    random.Random(3).shuffle(shuffled)
    assert _dump(cross.analyse(shuffled, bench_slice.rsts, defaults)) == _dump(want)
    assert _dump(cross.analyse(list(reversed(bench_slice.connections)), bench_slice.rsts,
                               defaults)) == _dump(want)


def test_source_port_reuse_is_counted_in_order_of_start(bench_slice):
    conns = bench_slice.connections
    assert all(a.start <= b.start for a, b in zip(conns, conns[1:]))  # as extract gives them
    _c, _p, ports, reuse = cross._per_connection(conns)
    _c2, _p2, ports2, reuse2 = cross._per_connection(list(reversed(conns)))
    assert ports == ports2 and reuse == reuse2
    assert sum(len(v) for v in ports.values()) > 0


def test_reuse_counts_follow_start_order_whatever_the_input_order():
    """Twelve connections from one client port, each 40 s after the last ended: no reuse
    within PORT_REUSE_WINDOW_S in time order; read backwards without sorting, every one would
    look like a reuse."""
    from types import SimpleNamespace as NS
    conns = [NS(id=f"c{i}", client=NS(ip="10.0.0.1", port=40000), server=NS(ip="192.0.2.1", port=443),
                syn_time=100.0 * i, start=100.0 * i, end=100.0 * i + 60) for i in range(12)]
    for order in (conns, list(reversed(conns)), conns[5:] + conns[:5]):
        _c, per_port, ports, reuse = cross._per_connection(order)
        assert dict(ports) == {"10.0.0.1": {40000}}
        assert reuse.get("10.0.0.1", 0) == 0, order[0].id
        assert [c.id for c in per_port[("192.0.2.1", 443)]] == [c.id for c in order]
    close = [NS(**{**vars(c), "start": 70.0 * i, "syn_time": 70.0 * i, "end": 70.0 * i + 60})
             for i, c in enumerate(conns)]
    for order in (close, list(reversed(close))):
        assert cross._per_connection(order)[3]["10.0.0.1"] == 11


def test_measured_idle_is_the_longer_silence():
    from types import SimpleNamespace
    idle = lambda before, trigger: cross.measured_idle(  # noqa: E731
        SimpleNamespace(idle_before_s=before, idle_before_trigger_s=trigger))
    assert idle(None, None) is None
    assert (idle(5.0, None), idle(None, 7.0), idle(5.0, 7.0), idle(9.0, 7.0)) == (5.0, 7.0, 7.0, 9.0)
    assert idle(0.0, None) == 0.0


def test_idle_matches_within_3_percent_or_2_s():
    table = [("a", 3600.0), ("b", 60.0), ("none", 0)]
    assert cross.idle_matches(3650.0, table) == ["a"]
    assert cross.idle_matches(61.9, table) == ["b"] and cross.idle_matches(62.1, table) == []
    assert cross.idle_matches(0.0, table) == [] and cross.idle_matches(None, table) == []
