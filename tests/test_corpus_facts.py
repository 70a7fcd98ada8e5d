"""Facts from real captures made by other people (../shared/corpus; skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

from facts.extract import extract

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
pytestmark = pytest.mark.corpus


def corpus_file(prefix: str) -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"corpus folder {CORPUS} is absent")
    found = sorted(CORPUS.glob(f"{prefix}_*"))
    if not found:
        pytest.skip(f"corpus file {prefix}_* is absent from {CORPUS}")
    return found[0]


def test_03_forged_rst_after_syn_copies_syn_ip_id_and_races_the_synack():
    ex = extract(corpus_file("03"))
    forged, *genuine = ex.rsts
    assert forged.frame == 2 and forged.claimed_sender == "server"
    assert forged.ttl == 46 and forged.baseline_ttl_conn == 49 and forged.ttl_delta == -3
    assert forged.baseline_source == "connection" and forged.ttl_matches_baseline is False
    assert forged.ip_id == 0x1555 and forged.ip_id_equals_syn and forged.ip_id_equals_other_last
    assert forged.synack_after_rst and forged.reserved_bits_set
    assert forged.syn_seen and not forged.synack_seen and not forged.rst_answers_syn
    assert forged.ack_position == "behind"
    assert [r.ttl for r in genuine] == [49, 49]
    assert all(r.ttl_matches_baseline and not r.synack_after_rst for r in genuine)
    assert len(ex.connections) == 1 and ex.connections[0].handshake == "complete"


def test_05_idle_reset_from_the_middle_device():
    (rst,) = extract(corpus_file("05")).rsts
    assert rst.ttl == 251 and rst.initial_ttl == 255 and rst.tracert_hop == 5
    assert rst.idle_before_s == pytest.approx(181.46, abs=0.01)
    assert rst.connection.largest_idle_gap_s == pytest.approx(181.46, abs=0.01)
    assert rst.baseline_ttl_varies and rst.baseline_ttl_conn_values == [52, 251]


@pytest.mark.parametrize("prefix, count", [("10", 1), ("11", 1), ("12", 2), ("16", 3)])
def test_endpoint_resets_match_the_sender_baseline(prefix, count):
    rsts = extract(corpus_file(prefix)).rsts
    assert len(rsts) == count
    for rst in rsts:
        assert rst.baseline_source == "connection"
        assert rst.ttl_matches_baseline is True and rst.ttl_delta == 0
        assert not rst.initial_ttl_differs and not rst.rst_behind_data


def test_07_three_refusals_answer_syns():
    ex = extract(corpus_file("07"))
    assert len(ex.rsts) == 3 and len(ex.connections) == 3
    for rst in ex.rsts:
        assert rst.rst_answers_syn and rst.claimed_sender == "server"
        assert rst.ttl == 64 and rst.baseline_source == "none"


def test_22_linux_resets_after_fin_are_not_flagged_as_races():
    rsts = extract(corpus_file("22")).rsts
    assert len(rsts) == 3
    assert not any(r.rst_behind_data or r.data_after_rst or r.rst_seq_change for r in rsts)
    assert {r.claimed_sender for r in rsts} == {"client", "server"}
    assert all(r.rst_both_directions for r in rsts)


def test_26_cut_short_file_still_gives_its_facts():
    ex = extract(corpus_file("26"))
    assert ex.capture.tcp_packets == 2696 and len(ex.rsts) == 1
    assert len(ex.capture.warnings) == 1 and "cut short" in ex.capture.warnings[0]
