"""Topologies and middle-device configurations the scenarios share.

Initial TTLs as in the issue: client 64 (Linux), server 128 (Windows), middle devices and
routers 255 (network gear). Routers only forward; they exist so every hop is visible as a TTL
decrement: a RST forged by the middle device of ``cli — r1 — fw — r2 — srv`` reaches the client
with 255 − 1 = 254 (tracert hop 2), the server's own packets with 128 − 3 = 125.
"""
from __future__ import annotations

from .runner import Context

CLIENT_TTL = 64
SERVER_TTL = 128
DEVICE_TTL = 255


def chain(ctx: Context, middle: str = "fw", role: str = "middle_device") -> None:
    """cli — r1 — <middle> — r2 — srv, routed along the chain."""
    lab = ctx.lab
    lab.add_node("cli", CLIENT_TTL, "host")
    lab.add_node("r1", DEVICE_TTL, "router")
    lab.add_node(middle, DEVICE_TTL, role)
    lab.add_node("r2", DEVICE_TTL, "router")
    lab.add_node("srv", SERVER_TTL, "host")
    for a, b in (("cli", "r1"), ("r1", middle), (middle, "r2"), ("r2", "srv")):
        lab.link(a, b)
    lab.route_all()


def stateful_reset(ctx: Context, node: str, timeout_s: int | None = None) -> None:
    """A stateful firewall that answers any non-SYN packet it holds no state for with a RST
    (what Cisco ASA ``timeout ... reset`` or PAN-OS do at session expiry).

    ``nf_conntrack_tcp_loose=0`` matters: with the default (1) conntrack adopts a mid-flow ACK
    as a fresh ESTABLISHED entry and the expired connection would silently live on."""
    ctx.iptables(node, "-A", "FORWARD", "-p", "tcp", "!", "--syn", "-m", "conntrack",
                 "--ctstate", "INVALID,NEW", "-j", "REJECT", "--reject-with", "tcp-reset")
    # The conntrack sysctls exist in a namespace only once conntrack is in use there, so the
    # rule above comes first. They are per namespace: the host's own table is untouched.
    values: dict[str, object] = {"net.netfilter.nf_conntrack_tcp_loose": 0}
    if timeout_s is not None:
        values["net.netfilter.nf_conntrack_tcp_timeout_established"] = timeout_s
    ctx.sysctl(node, values)


def server_to_client(middle: str = "fw") -> list[str]:
    return ["srv", "r2", middle, "r1", "cli"]


def endpoints(ctx: Context, port: int, server_ip: str | None = None,
              seen_client: str | None = None, seen_server: str | None = None) -> dict:
    server_ip = server_ip or ctx.ip("srv")
    return dict(family=ctx.family, client_ip=ctx.ip("cli"), server_ip=server_ip,
                server_port=port, server_sees_client_ip=seen_client or ctx.ip("cli"),
                server_sees_server_ip=seen_server or server_ip)
