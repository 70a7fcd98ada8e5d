"""Parsed pasted output -> ContextEvidence fields (the flat names KB conditions use).

Only what the paste proves is set; anything it cannot decide stays absent (unknown), because an
unknown field never satisfies a KB condition while a wrong False would block a rule.
"""
from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel

from facts.errors import UserError

from .firewall_log import FirewallLog
from .netstat import Netstat
from .ping import PathMtuFacts
from .registry import RegQuery


def _reg_query(model: RegQuery, **_: Any) -> dict:
    # The default applies only when the paste is about the Tcpip key; an RDP-policy-only paste
    # says nothing about the TCP stack's keepalive.
    return {"keepalive_time_ms": model.keepalive_time_ms.value} if model.tcpip_pasted else {}


def _ping(model: PathMtuFacts, **_: Any) -> dict:
    out: dict = {}
    if model.path_mtu is not None:
        out["path_mtu"] = model.path_mtu
    # A DF ping that silently vanishes above a size that passes is the PMTUD black hole: the
    # packets need fragmenting just as much as when the router says so.
    if model.fragmentation_needed or model.blackhole_suspected:
        out["mtu_fragmentation_needed"] = True
    elif model.path_mtu_at_least is not None and model.path_mtu_at_least >= 1500:
        out["mtu_fragmentation_needed"] = False
    return out


def _netstat(model: Netstat, port: Optional[int] = None, **_: Any) -> dict:
    if port is None:
        return {}
    if model.listening(port):
        return {"port_listening": True}
    # Only a listing that shows listeners at all (netstat -a, not a findstr fragment of one
    # connection) proves that nothing listens on this port.
    if any(e.state == "LISTENING" for e in model.entries):
        return {"port_listening": False}
    return {}


def _firewall_log(model: FirewallLog, **_: Any) -> dict:
    out: dict = {"path_has_firewall": True}
    reasons = {e.reason for e in model.entries}
    if len(reasons) == 1:  # several different reasons: correlate with the RSTs instead
        out["firewall_log_reason"] = reasons.pop()
    if any((e.nat_src and e.nat_src != e.src) or (e.nat_dst and e.nat_dst != e.dst)
           for e in model.entries):
        out["path_has_nat"] = True
    return out


def _nothing(model: BaseModel, **_: Any) -> dict:
    return {}


_MAPPERS = {
    "reg_query": _reg_query,
    "ping_mtu": _ping,
    "netstat": _netstat,
    "firewall_log": _firewall_log,
    "tracert": _nothing,           # a trace names devices; it proves nothing on its own
    "netsh_tcp_global": _nothing,  # no KB field reads these stack switches yet
}


def context_facts(name: str, model: BaseModel, **options: Any) -> dict:
    """ContextEvidence fields proven by one parsed paste.

    Options: ``port`` (netstat: the server port whose listener matters).
    """
    try:
        mapper = _MAPPERS[name]
    except KeyError:
        raise UserError(f"unknown pasted-output kind {name!r}; expected one of "
                        f"{', '.join(_MAPPERS)}") from None
    return mapper(model, **options)
