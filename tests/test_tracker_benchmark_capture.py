"""The benchmark's generated capture is what benchmarks/README.md says it is."""
from __future__ import annotations

from collections import Counter

from facts.extract import extract
from tests.builders import bench_capture



def test_generated_capture_has_the_promised_mix(tmp_path):
    out = tmp_path / "bench.pcap"
    written = bench_capture(out, 30_000, connections=600, seed=3)
    ex = extract(out)
    assert written == 30_000 == ex.capture.records == ex.capture.tcp_packets
    assert 500 <= len(ex.connections) <= 600
    assert any(c.roles_inferred for c in ex.connections)  # flows already running
    assert sum(c.close == "fin" for c in ex.connections) > len(ex.connections) // 2
    kinds = Counter()
    for r in ex.rsts:
        if r.rst_answers_syn:
            kinds["refused"] += 1
        elif r.ttl_matches_baseline:
            kinds["endpoint"] += 1
        elif r.ttl == 253 and r.idle_before_trigger_s and r.idle_before_trigger_s > 3600:
            kinds["idle firewall"] += 1
        elif r.ttl_matches_baseline is False:
            kinds["forged"] += 1
    assert all(kinds[k] > 0 for k in ("refused", "endpoint", "idle firewall", "forged")), kinds
    times = [c.start for c in ex.connections]
    assert times == sorted(times)  # records are written in time order
