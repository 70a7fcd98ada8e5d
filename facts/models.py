"""Typed facts that the readers produce and the rules engine reasons over.

These models are the contract between ``facts/`` and ``knowledge/``: every field a KB
condition names must be a field of :class:`RstEvent` (flattened, see ``facts.fields``),
:class:`DualEvidence`, :class:`CrossEvidence` or :class:`ContextEvidence`. Derived booleans
(``ttl_matches_baseline`` …) are computed here, in code, so that rules compare a field with a
constant and never two facts with each other (durable-rules' cross-fact tests are unsafe).
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["client", "server"]
Handshake = Literal["none", "syn", "syn_synack", "complete"]
CloseKind = Literal["open", "fin", "rst", "fin_rst"]
SeqPosition = Literal["exact", "in_window", "outside", "unknown"]
AckPosition = Literal["exact", "behind", "ahead", "none", "unknown"]

INITIAL_TTLS = (32, 64, 128, 255)


def initial_ttl(observed: int) -> int:
    """Smallest common initial TTL not below the observed value (32/64/128/255)."""
    for candidate in INITIAL_TTLS:
        if observed <= candidate:
            return candidate
    return 255


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, defer_build=True)


class Endpoint(_Fact):
    ip: str
    port: int


class CaptureInfo(_Fact):
    """One input file, as read."""

    path: str
    format: Literal["pcap", "pcapng", "etl"]
    link_types: list[int] = Field(default_factory=list, description="Distinct link types seen")
    records: int = 0
    tcp_packets: int = 0
    rst_packets: int = 0
    first_time: Optional[float] = None
    last_time: Optional[float] = None
    warnings: list[str] = Field(default_factory=list)


class Connection(_Fact):
    """One TCP connection (4-tuple, split into a new one when a SYN reopens a closed tuple)."""

    kind: Literal["connection"] = "connection"
    id: str = Field(description="Unique within the capture, e.g. 'c12'")
    capture: str
    ip_version: Literal[4, 6]
    client: Endpoint
    server: Endpoint
    roles_inferred: bool = Field(
        description="True when no SYN was seen (capture starts mid-flow): client/server guessed "
        "from the port numbers")
    start: float
    end: float
    packets_c2s: int = 0
    packets_s2c: int = 0
    bytes_c2s: int = Field(0, description="TCP payload bytes client to server")
    bytes_s2c: int = 0
    handshake: Handshake = "none"
    syn_time: Optional[float] = None
    synack_time: Optional[float] = None
    client_isn: Optional[int] = Field(None, description="Client's initial sequence number (SYN)")
    server_isn: Optional[int] = Field(None, description="Server's initial sequence number (SYN-ACK)")
    close: CloseKind = "open"
    fin_by: list[Side] = Field(default_factory=list)
    rst_count: int = 0
    largest_idle_gap_s: float = 0.0
    largest_idle_gap_at: Optional[float] = Field(None, description="Time the gap ended")
    client_ttls: dict[int, int] = Field(default_factory=dict, description="TTL -> packets (non-RST)")
    server_ttls: dict[int, int] = Field(default_factory=dict)
    client_ttl_changes: int = Field(0, description="Times consecutive non-RST client packets "
                                    "changed TTL (1 = a shift, many = alternating paths)")
    server_ttl_changes: int = 0
    largest_segment: int = 0
    fragments_seen: bool = False
    icmp_too_big_seen: bool = False
    path_mtu: Optional[int] = None


class RstEvent(_Fact):
    """One RST packet and everything the capture says about who could have sent it."""

    kind: Literal["rst"] = "rst"
    id: str = Field(description="Unique within the capture, e.g. 'r3'")
    capture: str
    frame: int = Field(description="1-based record number in the file (Wireshark frame.number)")
    connection_id: str
    connection: Connection
    claimed_sender: Side
    time: float = Field(description="Seconds since the epoch, UTC")
    flags: Literal["RST", "RST+ACK"]
    seq: Optional[int] = Field(None, description="Raw TCP sequence number of the RST")
    ack: Optional[int] = Field(None, description="Raw TCP acknowledgement number (0 without ACK)")
    ip_version: Literal[4, 6]
    reserved_bits_set: bool = False
    rst_payload_len: int = 0

    # TTL / hop limit of the RST itself
    ttl: int
    initial_ttl: int
    ttl_decrements: int
    tracert_hop: int = Field(description="decrements + 1: the tracert hop that sent it "
                             "(the scenario map's 'N hops' is off by one)")

    # claimed sender's own packets (non-RST) as baseline
    baseline_ttl_conn: Optional[int] = Field(None, description="Most common TTL of the claimed "
                                             "sender's non-RST packets in this connection")
    baseline_ttl_conn_values: list[int] = Field(default_factory=list)
    baseline_ttl_host: Optional[int] = Field(None, description="Most common TTL of the claimed "
                                             "sender's address across the whole capture")
    baseline_initial_ttl: Optional[int] = None
    baseline_decrements: Optional[int] = None
    baseline_source: Literal["connection", "host", "none"] = "none"
    ttl_delta: Optional[int] = Field(None, description="RST TTL minus baseline TTL")
    ttl_matches_baseline: Optional[bool] = None
    initial_ttl_differs: Optional[bool] = None
    baseline_ttl_varies: bool = Field(False, description="The sender's own TTLs in this "
                                      "connection take more than one value")

    # IPv4 identification
    ip_id: Optional[int] = None
    ip_id_gap: Optional[int] = Field(None, description="RST IP ID minus the claimed sender's "
                                     "last IP ID, modulo 65536")
    ip_id_in_sequence: Optional[bool] = Field(None, description="Gap within 1..1024")
    ip_id_equals_other_last: Optional[bool] = Field(None, description="Reflection: equals the "
                                                    "other host's last IP ID")
    ip_id_zero: Optional[bool] = None
    ip_id_equals_syn: Optional[bool] = Field(None, description="A RST claimed by the server "
                                             "carries the IP ID of the client's SYN (an injector "
                                             "copying the packet it answers)")

    # window
    window: int
    window_equals_other_last: Optional[bool] = None

    # sequence numbers
    seq_position: SeqPosition = "unknown"
    seq_offset: Optional[int] = Field(None, description="RST seq minus the claimed sender's "
                                      "next expected seq")
    ack_position: AckPosition = "unknown"
    ack_offset: Optional[int] = None

    # several RSTs in this connection
    rsts_in_connection: int = 1
    rst_index_in_connection: int = Field(1, description="1 for the first RST of the connection")
    rst_seq_differ: bool = False
    rst_ack_differ: bool = False
    rst_seq_change: bool = Field(False, description="Weaver et al. RST_SEQ_CHANGE")
    data_after_rst: bool = Field(False, description="Claimed sender sent data after this RST "
                                 "(RST_SEQ_DATA race)")
    data_after_rst_s: Optional[float] = None
    rst_behind_data: bool = Field(False, description="DATA_SEQ_RST: RST seq behind data the "
                                  "sender already sent")
    rst_both_directions: bool = Field(False, description="RSTs claimed by both client and server "
                                      "in this connection")

    # timing
    since_syn_s: Optional[float] = None
    since_start_s: float = 0.0
    handshake_completed: bool = False
    syn_seen: bool = False
    synack_seen: bool = False
    rst_answers_syn: bool = Field(False, description="RST from the server side is the first "
                                  "answer to a SYN (no SYN-ACK before it)")
    rst_answers_synack: bool = Field(False, description="RST claimed by the client answers "
                                     "the server's SYN-ACK: no ACK from the client between them "
                                     "(a stateless device on the return path, or a client that "
                                     "gave up)")
    synack_after_rst: bool = Field(False, description="A SYN-ACK from the claimed sender "
                                   "arrived after this RST (the RST raced the real answer)")
    idle_before_s: Optional[float] = Field(None, description="Since the previous packet either way")
    idle_sender_s: Optional[float] = Field(None, description="Since the claimed sender's last packet")
    idle_before_trigger_s: Optional[float] = Field(
        None, description="Silence before the packet that the RST answered (the gap between the "
        "packet just before the RST and the one before that): a device that resets on the first "
        "packet after its idle timer expired shows the timeout here, not in idle_before_s")
    idle_silence_s: Optional[float] = Field(
        None, description="The longer of idle_before_s and idle_before_trigger_s: the silence "
        "a device's idle timer measured, whether it reset at expiry or on the next packet")
    earlier_gap_max_s: Optional[float] = Field(
        None, description="Largest gap between the connection's packets before that silence "
        "(None with fewer than two earlier gaps)")
    idle_silence_ratio: Optional[float] = Field(
        None, description="idle_silence_s / earlier_gap_max_s (the earlier gap floored at "
        "1 ms): how far the silence stands out of the connection's own rhythm, whatever the "
        "timeout's absolute size (a lab's 3 s or a firewall's 3600 s)")
    packets_before: int = 0
    bytes_c2s_before: int = 0
    bytes_s2c_before: int = 0
    payload_bytes_before: int = 0

    # the other side's last payload segment before the RST: trigger candidate
    trigger_delta_s: Optional[float] = None
    trigger_len: Optional[int] = None
    trigger_excerpt: Optional[str] = Field(None, description="First 64 bytes, printable ASCII "
                                           "with other bytes as \\xNN")
    trigger_frame: Optional[int] = None
    largest_segment_before: int = 0
    fragments_seen: bool = False
    icmp_too_big_seen: bool = False
    path_mtu: Optional[int] = None
    challenge_ack_seen: bool = Field(False, description="RFC 5961 challenge ACK after an inexact RST")
