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


def _common_port(model: Netstat) -> Optional[int]:
    """The one port every TCP row shares: what a 'netstat -ano | findstr <port>' paste was
    filtered on."""
    common: Optional[set[int]] = None
    for e in model.entries:
        if e.proto != "TCP":
            continue
        ports = {e.local_port} | ({e.remote_port} if e.remote_port else set())
        common = ports if common is None else common & ports
    return next(iter(common)) if common is not None and len(common) == 1 else None


def _netstat(model: Netstat, port: Optional[int] = None, **_: Any) -> dict:
    port = port if port is not None else _common_port(model)
    if port is None:
        return {}
    if model.listening(port):
        return {"port_listening": True}
    # Absence proves something only where a listener would have shown: a full 'netstat -a'
    # listing (it shows other listeners), or a server-side view of this port (rows whose local
    # port is it, e.g. connections left over after the service stopped listening).
    shows_listeners = any(e.state == "LISTENING" for e in model.entries)
    server_side = any(e.proto == "TCP" and e.local_port == port for e in model.entries)
    return {"port_listening": False} if shows_listeners or server_side else {}


def _firewall_log(model: FirewallLog, port: Optional[int] = None, **_: Any) -> dict:
    out: dict = {"path_has_firewall": True}
    entries = model.entries
    if port is not None:  # the server port narrows a paste of many sessions to the relevant ones
        entries = [e for e in entries if port in (e.sport, e.dport, e.nat_sport, e.nat_dport)] \
            or entries
    reasons = {e.reason for e in entries}
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
