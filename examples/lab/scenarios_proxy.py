"""Load-balancer scenarios: a real HAProxy in the middle namespace.

HAProxy is a full proxy: it terminates the client's TCP connection and opens its own to the
server. Its RSTs are therefore a real endpoint's RSTs as far as either side's TCP is
concerned, sent with HAProxy's own TTL, the same TTL as its SYN-ACK and data. The scenario map
files these under "Load Balancer" (a middle device); what the client's capture shows is an
endpoint reset whose TTL matches its peer. expected.yaml records both.

HAProxy closes a timed-out or killed session with FIN unless ``option nolinger`` is set; the
lab sets it to behave like F5's reset-on-timeout or Azure's "TCP reset on idle".
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from tempfile import mkdtemp

from .netns import LabError
from .runner import SERVER_PORT, Context, Plan, Scenario, idle_before_error, wait_listening
from .topology import chain, endpoints

LB_TIMEOUT_S = 2
# The client keeps its socket open a moment after the proxy's close, as an application that
# has not yet noticed would: its own FIN would otherwise race HAProxy's RST.
_LINGER = {"op": "sleep", "s": 0.5}
HEALTH_PORT = 8081
# Sessions held open through the proxy when its backend goes down: a health-check failure
# takes every session on the backend with it, and the burst is what tells it apart.
BACKEND_SESSIONS = 5


def _haproxy_config(ctx: Context, server_line_extra: str, timeouts: str) -> str:
    vip = ctx.ip("lb", "r1")
    bind = f"[{vip}]" if ctx.family == 6 else vip
    srv = ctx.ip("srv")
    srv_addr = f"[{srv}]" if ctx.family == 6 else srv
    return "\n".join([
        "global",
        "    maxconn 100",
        "defaults",
        "    mode tcp",
        "    option nolinger",
        "    timeout connect 1s",
        timeouts,
        "frontend fe",
        f"    bind {bind}:{SERVER_PORT}",
        "    default_backend be",
        "backend be",
        f"    server s1 {srv_addr}:{SERVER_PORT} {server_line_extra}".rstrip(),
        "",
    ])


def _start_haproxy(ctx: Context, config: str) -> None:
    if shutil.which("haproxy") is None:
        raise LabError("this scenario needs HAProxy ('haproxy' not on PATH)")
    folder = Path(mkdtemp(prefix="rsl-haproxy-"))
    ctx.lab.temp_dirs.append(str(folder))
    cfg = folder / "haproxy.cfg"
    cfg.write_text(config)
    ctx.middle_config.extend(f"lb: haproxy.cfg: {line.strip()}" for line in config.splitlines()
                             if line.strip())
    ctx.lab.popen("lb", ["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                  stderr=subprocess.DEVNULL)
    wait_listening(ctx, "lb", SERVER_PORT)


def _proxy_rsts(ctx: Context) -> list:
    return [ctx.rst("client", "server", ["lb", "r1", "cli"]),
            ctx.rst("server", "client", ["lb", "r2", "srv"])]


def _proxy_expected(ctx: Context, **fields) -> dict:
    vip = ctx.ip("lb", "r1")
    return dict(endpoints=endpoints(ctx, SERVER_PORT, server_ip=vip,
                                    seen_client=ctx.ip("lb", "r2"), seen_server=ctx.ip("srv")),
                rsts=_proxy_rsts(ctx), no_rst_from=["client", "server"],
                baselines=[ctx.baseline("client", "server", ["lb", "r1", "cli"])],
                client_sees="endpoint: the RST comes from the proxy the client is connected to, "
                            "with the same TTL (255-1) as the proxy's SYN-ACK and data",
                **fields)


# How the verdict above is reached, and what one capture alone can say.
PROXY_VERDICT_NOTE = (
    "Both captures together: the server never sent the client's RST (middle_device), yet that "
    "RST carries the TTL of the proxy's own SYN-ACK and data, so the device that reset the "
    "connection is the one that accepted it (finding.full_proxy_peer): a load balancer, not a "
    "firewall, NAT or injector. One capture alone honestly reads 'endpoint': to either side's "
    "TCP the proxy is the peer.")


def lb_idle_timeout(ctx: Context) -> Plan:
    chain(ctx, "lb", role="proxy")
    config = _haproxy_config(ctx, "", f"    timeout client {LB_TIMEOUT_S}s\n"
                                      f"    timeout server {LB_TIMEOUT_S}s")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return _proxy_expected(
            ctx, scenario_map_says="middle_device: Load Balancer / Session Timeout",
            idle=dict(configured_timeout_s=LB_TIMEOUT_S,
                      measured_idle_s=idle_before_error(events)),
            notes=[f"HAProxy 'timeout client/server {LB_TIMEOUT_S}s' with 'option nolinger': "
                   "after the idle period it resets both of its connections, the client's and "
                   "its own to the server. The client is waiting to read: it gets HAProxy's FIN "
                   "(the application reads EOF) and, a fraction of a millisecond later, the RST; "
                   "the server gets the RST alone.", PROXY_VERDICT_NOTE])
    steps = [{"op": "connect", "host": ctx.ip("lb", "r1"), "port": SERVER_PORT},
             {"op": "send", "data": "login"}, {"op": "recv"},
             {"op": "recv", "timeout": LB_TIMEOUT_S + 4}, _LINGER]
    return Plan(steps=steps, before_client=lambda c: _start_haproxy(c, config),
                expected=expected)


def lb_backend_down(ctx: Context) -> Plan:
    chain(ctx, "lb", role="proxy")
    check = (f"check port {HEALTH_PORT} inter 300ms fall 1 rise 1 "
             "on-marked-down shutdown-sessions")
    config = _haproxy_config(ctx, check, "    timeout client 30s\n    timeout server 30s\n"
                                         "    timeout check 300ms")

    def backend_fails(ctx: Context) -> None:
        # The backend's health port stops answering (silently: no RST from the server).
        ctx.lab.exec("srv", "iptables" if ctx.family == 4 else "ip6tables", "-A", "INPUT", "-p",
                     "tcp", "--dport", str(HEALTH_PORT), "-j", "DROP")
        ctx.notes.append(f"After the first exchange the server's health port {HEALTH_PORT} "
                         "starts dropping the checks.")

    def expected(ctx: Context, events: list[dict]) -> dict:
        fields = _proxy_expected(
            ctx, scenario_map_says="middle_device: Load Balancer / Health Check Failure",
            notes=[f"{BACKEND_SESSIONS} client sessions are open through HAProxy. It marks the "
                   "backend down when a health check times out and, with 'on-marked-down "
                   "shutdown-sessions', kills every session on it within the same millisecond: "
                   "FIN then RST to the client (which reads EOF), RST alone to the server. The "
                   "burst of resets, not any one connection's timing, is the signature. The "
                   f"server capture also holds the health checks to port {HEALTH_PORT}, which "
                   "HAProxy itself closes with RSTs.", PROXY_VERDICT_NOTE])
        for rst in fields["rsts"]:
            rst.min_count = BACKEND_SESSIONS
        return fields
    lb = ctx.ip("lb", "r1")
    steps: list[dict] = []
    for n in range(BACKEND_SESSIONS):
        steps += [{"op": "connect", "host": lb, "port": SERVER_PORT, "keep_previous": True},
                  {"op": "send", "data": f"login {n + 1}"}, {"op": "recv"}]
    steps += [{"op": "mark", "tag": "backend_fails"}, {"op": "wait_go"},
              {"op": "recv", "timeout": 5}, {"op": "recv_held", "timeout": 5}, _LINGER]
    return Plan(steps=steps, server_args=["--port", str(SERVER_PORT), "--health-port",
                                          str(HEALTH_PORT)],
                before_client=lambda c: _start_haproxy(c, config),
                hooks={"backend_fails": backend_fails}, expected=expected)


SCENARIOS = [
    Scenario("lb_idle_timeout", "HAProxy idle timeout resets both sides (full proxy)", 4,
             lb_idle_timeout, "middle_device", "idle_timeout", "load_balancer.session_timeout"),
    Scenario("lb_backend_down", "HAProxy health check fails: sessions shut down", 4,
             lb_backend_down, "middle_device", "unpredictable",
             "load_balancer.health_check_failure"),
]
