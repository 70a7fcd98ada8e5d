"""The shipped example captures: rebuilt identically, and their facts say what README claims."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from facts.extract import extract

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _maker():
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_examples_match_a_fresh_build():
    maker = _maker()
    for name, build in maker.EXAMPLES.items():
        assert (EXAMPLES / name).read_bytes() == build(), name


def test_firewall_idle_reset_facts():
    (rst,) = extract(EXAMPLES / "firewall_idle_reset.pcap").rsts
    assert rst.claimed_sender == "server" and rst.ttl == 253 and rst.tracert_hop == 3
    assert rst.baseline_ttl_conn == 118 and rst.baseline_decrements == 10
    assert rst.initial_ttl_differs and not rst.ttl_matches_baseline and rst.ip_id_zero
    assert 3600.3 < rst.idle_before_trigger_s < 3600.5 and rst.idle_before_s < 0.01
    assert rst.trigger_excerpt == "SELECT name FROM sys.databases;"


def test_endpoint_reset_facts():
    (rst,) = extract(EXAMPLES / "endpoint_reset.pcap").rsts
    assert rst.claimed_sender == "server" and rst.ttl == 118 and rst.ttl_matches_baseline
    assert rst.ip_id_in_sequence and rst.ip_id_gap == 1
    assert rst.seq_position == "exact" and rst.ack_position == "exact"
