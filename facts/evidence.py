"""Evidence beyond a single capture's RST: the other end's capture, patterns across
connections, and what the engineer told us (interview answers, pasted command output).

Field names are global: a KB condition on ``idle_before_s`` is satisfied by the value measured
in a capture or by the interview answer that sets the same field. Every field is optional;
``None`` means unknown, and an unknown field never satisfies a condition (except ``exists: false``).
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

YesNo = Optional[bool]


class _Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class DualEvidence(_Evidence):
    """What the capture at the other end says about one RST (scenario map step 1)."""

    observed_at: Optional[Literal["client", "server", "unknown"]] = Field(
        None, description="Where the capture holding this RST was taken (from TTLs of the "
        "handshake: the local host's own packets carry an undecremented initial TTL)")
    rst_from_capture_host: YesNo = Field(None, description="The RST left the host the capture "
                                         "was taken on (claimed sender is the local side and the "
                                         "TTL is undecremented)")
    dual_available: bool = Field(False, description="A capture from the other end was given "
                                 "and this connection was looked for in it")
    dual_peer_saw_connection: YesNo = Field(None, description="The other end's capture holds "
                                            "this connection")
    dual_peer_sent_rst: YesNo = Field(None, description="The claimed sender's own capture shows "
                                      "it sending this RST")
    dual_peer_received_rst: YesNo = Field(None, description="The claimed sender also received a "
                                          "RST 'from' this end that this end never sent")
    dual_clock_offset_s: Optional[float] = Field(None, description="Peer clock minus local clock")
    dual_nat_between: YesNo = Field(None, description="Addresses or ports differ between the two "
                                    "captures for the matched connection")
    dual_synack_missing_at_client: YesNo = Field(None, description="The server sent a SYN-ACK "
                                                 "that never reached the client")


class CrossEvidence(_Evidence):
    """Patterns across connections in the same capture(s)."""

    cross_reconnect_cycle: YesNo = Field(None, description="Connections between the same hosts "
                                         "are reset after a constant lifetime or idle time")
    cross_cycle_period_s: Optional[float] = None
    cross_resets_same_second: Optional[int] = Field(None, description="Connections (this one "
                                                    "included) reset within the same second")
    cross_port_syn_rejects: Optional[int] = Field(None, description="Connections to this server "
                                                  "port whose SYN drew a RST")
    cross_port_syn_accepts: Optional[int] = Field(None, description="Connections to this server "
                                                  "port whose SYN drew a SYN-ACK")
    cross_rejects_above_rate: YesNo = Field(None, description="SYNs are rejected only while the "
                                            "connection rate is high")
    cross_source_port_exhaustion: YesNo = Field(None, description="The client reuses or cycles "
                                                "through nearly all source ports")
    cross_ttl_shift: YesNo = Field(None, description="Normal packets from one host changed TTL "
                                   "mid-connection (path change)")
    cross_one_sided_flow: YesNo = Field(None, description="Only one direction of this connection "
                                        "appears in the capture")
    cross_idle_matches_default: YesNo = Field(None, description="The idle time before the RST "
                                              "matches a known device default timeout")
    cross_matched_devices: list[str] = Field(default_factory=list)


class ContextEvidence(_Evidence):
    """Facts from the engineer: interview answers and pasted command output."""

    symptom_error_reset_by_peer: YesNo = None
    symptom_drops_after_idle: YesNo = None
    symptom_periodic_drops: YesNo = None
    symptom_drop_interval_s: Optional[float] = None
    symptom_large_transfer_fails: YesNo = None
    symptom_fails_at_connect: YesNo = None
    symptom_specific_content_fails: YesNo = None
    symptom_cyclic_reconnect: YesNo = None
    symptom_lan_ok_wan_fails: YesNo = None
    symptom_one_direction_fails: YesNo = None
    symptom_many_reset_together: YesNo = None
    symptom_high_connection_rate: YesNo = None
    symptom_many_client_connections: YesNo = None
    symptom_random_drops: YesNo = None
    symptom_short_connections_ok: YesNo = None
    path_has_firewall: YesNo = None
    path_has_load_balancer: YesNo = None
    path_has_ids_ips: YesNo = None
    path_has_nat: YesNo = None
    path_crosses_isp: YesNo = None
    traffic_encrypted: YesNo = None
    tracert_paths_differ: YesNo = None
    keepalive_time_ms: Optional[int] = Field(None, description="Windows KeepAliveTime (registry "
                                             "or default 7200000)")
    app_keepalive_configured: YesNo = None
    path_mtu: Optional[int] = None
    mtu_fragmentation_needed: YesNo = None
    firewall_log_reason: Optional[str] = Field(None, description="Normalised teardown reason from "
                                               "a firewall log line: idle_timeout, policy_deny, "
                                               "threat, tcp_rst, other")
    ids_alert_seen: YesNo = None
    backend_marked_down: YesNo = None
    port_listening: YesNo = Field(None, description="netstat shows the server listening on the port")
    server_backlog_full: YesNo = None
    app_closed_socket: YesNo = None
    route_flap_seen: YesNo = Field(None, description="Routing logs or monitoring show route "
                                   "changes (flaps, failover) at the times of the resets")
