"""``expected.yaml``: what a lab scenario really did, written next to its two captures.

The RST facts here come from the topology the lab built (who sent it, how many routers it
crossed), never from reading the captures back: tests compare them with what the fact
extractor finds in the captures. Measured values (idle time, the errors the client program
saw) come from the client program's own clock.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field

Origin = Literal["middle_device", "endpoint"]
Pattern = Literal["syn_rejected", "idle_timeout", "payload_triggered", "during_transfer",
                  "unpredictable", "after_close"]
CaptureSide = Literal["client", "server"]

SCHEMA = "rstsleuth.lab-expected/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectedRst(_Model):
    """RSTs that must appear in one capture, all alike."""

    capture: CaptureSide = Field(description="Which capture holds them")
    claimed_sender: CaptureSide = Field(description="The end whose address the RST carries")
    sent_by: str = Field(description="Lab node that really sent it (e.g. fw, srv, lb)")
    sent_by_role: str = Field(description="host | middle_device | proxy")
    path: list[str] = Field(description="Nodes from the sender to the capture's host")
    ttl: int = Field(description="TTL / hop limit on arrival at the capture point")
    initial_ttl: int
    ttl_decrements: int
    tracert_hop: int = Field(description="decrements + 1, seen from the capture's host")
    answers_syn: bool = Field(False, description="The RST is the answer to a SYN")
    min_count: int = 1
    connection: Optional[int] = Field(None, description="1-based connection number of the client "
                                      "program (several connections per scenario)")


class PeerBaseline(_Model):
    """TTL of the claimed sender's own (non-RST) packets at the capture point."""

    capture: CaptureSide
    sender: CaptureSide
    ttl: int
    initial_ttl: int
    ttl_decrements: int


class Idle(_Model):
    configured_timeout_s: float = Field(description="The middle device's idle timeout")
    client_idle_s: Optional[float] = Field(None, description="How long the client stayed silent")
    measured_idle_s: Optional[float] = Field(None, description="Client program: last data "
                                             "received to the reset (or to the next send)")


class Endpoints(_Model):
    family: Literal[4, 6]
    client_ip: str
    server_ip: str = Field(description="Address the client connects to")
    server_port: int
    server_sees_client_ip: str = Field(description="Client address in the server capture "
                                       "(differs behind NAT or a proxy)")
    server_sees_server_ip: str


class Expected(_Model):
    schema_id: str = Field(SCHEMA, alias="schema")
    scenario: str
    title: str
    origin: Origin = Field(description="Who really sent the RST the client (or server) saw")
    pattern: Pattern
    subtype: str
    survives: bool = Field(False, description="True when the connection must survive (no RST)")
    scenario_map_says: Optional[str] = Field(None, description="Where the scenario map files it, "
                                             "when that differs from what the wire shows")
    client_sees: Optional[str] = None
    topology: str
    node_ttls: dict[str, int]
    endpoints: Endpoints
    rsts: list[ExpectedRst] = Field(default_factory=list)
    no_rst_from: list[CaptureSide] = Field(default_factory=list, description="Captures whose "
                                           "host never sent a RST on the scenario's connections")
    rst_sent_by_capture_host: list[CaptureSide] = Field(default_factory=list, description="Captures "
                                                        "whose own host sent a RST (endpoint cases)")
    baselines: list[PeerBaseline] = Field(default_factory=list)
    idle: Optional[Idle] = None
    client_errors: list[str] = Field(default_factory=list, description="Errors the client "
                                     "program got, in order (ECONNRESET, ECONNREFUSED, TIMEOUT...)")
    connections_ok: int = Field(0, description="Client connections that completed their exchange")
    middle_config: list[str] = Field(default_factory=list, description="Commands that configured "
                                     "the middle device(s)")
    notes: list[str] = Field(default_factory=list)
    duration_s: Optional[float] = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def write_expected(expected: Expected, out_dir: Path) -> Path:
    path = Path(out_dir) / "expected.yaml"
    data = expected.model_dump(mode="json", by_alias=True, exclude_none=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
    return path


def read_expected(path: Path) -> Expected:
    return Expected.model_validate(yaml.safe_load(Path(path).read_text()))
