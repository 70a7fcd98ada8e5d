"""The analysis report: the JSON machine contract ``rstsleuth.report/1``.

The JSON Schema is generated from these models (``report_json_schema``) and checked by a test
with a real validator. Additive changes keep ``/1``; anything that removes or changes the
meaning of a field needs ``/2``.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_ID = "rstsleuth.report/1"
Origin = Literal["middle_device", "endpoint", "undetermined"]
Pattern = Literal["syn_rejected", "idle_timeout", "payload_triggered", "during_transfer",
                  "unpredictable", "after_close"]


class _R(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointRef(_R):
    ip: str
    port: int


class CaptureSummary(_R):
    path: str
    format: str
    role: Literal["client", "server", "unknown"] = "unknown"
    link_types: list[int] = Field(default_factory=list)
    records: int = 0
    tcp_packets: int = 0
    rst_packets: int = 0
    connections: int = 0
    first_time: Optional[float] = None
    last_time: Optional[float] = None
    warnings: list[str] = Field(default_factory=list)


class ConnectionRef(_R):
    id: str
    client: EndpointRef
    server: EndpointRef
    ip_version: int
    handshake: str
    start: float
    end: float
    application: str = Field(description="Guessed from the server port: SSH, RDP, SQL Server, SMB…")
    peer_connection_id: Optional[str] = Field(None, description="Same connection in the other capture")


class RstSource(_R):
    ttl: int
    initial_ttl: int
    decrements: int
    tracert_hop: int = Field(description="decrements + 1")
    tracert_address: Optional[str] = None
    tracert_name: Optional[str] = None


class Baseline(_R):
    ttl: Optional[int] = None
    initial_ttl: Optional[int] = None
    decrements: Optional[int] = None
    source: Literal["connection", "host", "none"] = "none"
    values: list[int] = Field(default_factory=list)


class Diagnosis(_R):
    id: str
    confidence: float = Field(ge=0, le=1)
    title: str
    family: Optional[str] = None


class FixOut(_R):
    id: str
    title: str
    text: str


class EvidenceItem(_R):
    field: str
    value: Any
    text: str


class Trigger(_R):
    frame: Optional[int] = None
    length: Optional[int] = None
    delta_s: Optional[float] = None
    excerpt: Optional[str] = None


class DualOut(_R):
    peer_saw_connection: Optional[bool] = None
    peer_sent_rst: Optional[bool] = None
    peer_received_rst: Optional[bool] = None
    clock_offset_s: Optional[float] = None
    nat_between: Optional[bool] = None
    verdict: Literal["endpoint_sent", "middle_injected", "blocked_before_peer", "both_ends_reset",
                     "sent_by_capture_host", "no_peer_capture", "inconclusive"]


class FiredRule(_R):
    rule: str
    rev: int
    conclusion: str
    cf: float


class Reasoning(_R):
    finding: str = Field(description="The finding whose HOW tree explains this reset")
    fired: list[FiredRule] = Field(default_factory=list)


class ResetOut(_R):
    id: str
    capture: str
    frame: int
    connection: ConnectionRef
    observed_at: Literal["client", "server", "unknown"]
    claimed_sender: Literal["client", "server"]
    time: float
    time_iso: str
    flags: str
    origin: Origin
    origin_confidence: float = Field(ge=0, le=1)
    pattern: Optional[Pattern] = None
    rst_source: RstSource
    baseline: Baseline
    idle_before_s: Optional[float] = None
    measured_idle_s: Optional[float] = Field(None, description="The idle time the scenario map "
                                             "asks to measure: the device's timeout")
    idle_matches: list[str] = Field(default_factory=list, description="Devices whose default "
                                    "idle timeout equals the measured idle")
    trigger: Optional[Trigger] = None
    dual: Optional[DualOut] = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    fixes: list[FixOut] = Field(default_factory=list)
    evidence: list[EvidenceItem] = Field(default_factory=list)
    wireshark_filter: str
    reasoning: Reasoning


class HowTree(_R):
    conclusion: str
    title: str
    cf: float
    supports: list[dict[str, Any]] = Field(default_factory=list)


class Finding(_R):
    """Resets that tell the same story, reported once with a count."""

    id: str
    count: int
    origin: Origin
    origin_confidence: float
    pattern: Optional[Pattern] = None
    claimed_sender: Literal["client", "server"]
    server_port: int
    application: str
    top_diagnosis: Optional[Diagnosis] = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    summary: str
    reset_ids: list[str]
    first_time: float
    last_time: float
    fixes: list[FixOut] = Field(default_factory=list)
    how: list[HowTree] = Field(default_factory=list, description="Justification trees for the "
                               "origin, pattern and top diagnosis of a representative reset")
    example_reset: str


class CrossPattern(_R):
    kind: Literal["reconnect_cycle", "reset_burst", "port_rejects_syn", "rate_limited",
                  "source_port_exhaustion", "ttl_shift", "one_sided_flow", "synack_missing"]
    description: str
    connections: list[str] = Field(default_factory=list)
    value: Optional[float] = None


class KbInfo(_R):
    path: str
    rules: int


class Report(_R):
    schema_: Literal["rstsleuth.report/1"] = Field(SCHEMA_ID, alias="schema")
    tool: str = "rstsleuth"
    version: str
    lang: Literal["en", "zh"] = "en"
    kb: KbInfo
    captures: list[CaptureSummary]
    dual: Optional[dict[str, Any]] = Field(None, description="Dual-capture summary: roles, "
                                           "clock offset, matched connections")
    resets: list[ResetOut]
    findings: list[Finding]
    patterns: list[CrossPattern] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")

    def to_json(self, indent: Optional[int] = None) -> str:
        """The report as JSON text, UTF-8 unescaped; non-finite numbers become null. Written
        by pydantic-core in one go: four times faster than ``json.dumps(to_json_dict())``
        on a report with 5 000 resets."""
        return self.to_json_bytes(indent).decode("utf-8")

    def to_json_bytes(self, indent: Optional[int] = None) -> bytes:
        """``to_json`` as the UTF-8 bytes pydantic-core writes, for writing out without a
        decode and encode of the whole text (26 MB on 5 000 resets). Without pydantic's
        serialization warnings: the objects are built from typed facts without validation,
        and the tests check the JSON against the schema instead; the warnings' type checks
        were a sixth of the time."""
        return type(self).__pydantic_serializer__.to_json(self, indent=indent, by_alias=True,
                                                          warnings=False)


# Above this many resets the JSON is written compact: the indentation is a third of the
# size; the content is the same.
INDENT_MAX_RESETS = 1000


def json_indent(resets: int) -> Optional[int]:
    """The indentation of the JSON report with this many resets (None: compact)."""
    return 2 if resets <= INDENT_MAX_RESETS else None


def report_json_schema() -> dict[str, Any]:
    schema = Report.model_json_schema(by_alias=True)
    schema["$id"] = "https://rstsleuth.invalid/schema/report-1.json"
    schema["title"] = SCHEMA_ID
    return schema
