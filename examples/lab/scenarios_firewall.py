"""Scenarios whose middle device is netfilter: firewall, DPI, IDS rate limit, NAT, routing, plus
the endpoint controls and the keepalive fix. Each ``build`` wires the lab, configures the
device and returns the client's steps and the expected-facts function."""
from __future__ import annotations

from .runner import SERVER_PORT, Context, Plan, Scenario, idle_before_error
from .topology import chain, endpoints, server_to_client, stateful_reset

IDLE_TIMEOUT_S = 3
IDLE_SLEEP_S = 4.0
OTHER_PORT = 8443
CLOSED_PORT = 8090


def _exchange(host: str, port: int, message: str = "hello", **connect) -> list[dict]:
    return [{"op": "connect", "host": host, "port": port, **connect},
            {"op": "send", "data": message}, {"op": "recv"}]


def _idle_steps(host: str, keepalive=None) -> list[dict]:
    extra = {"keepalive": keepalive} if keepalive else {}
    return (_exchange(host, SERVER_PORT, "login", **extra)
            + [{"op": "sleep", "s": IDLE_SLEEP_S}, {"op": "send", "data": "query after idle"},
               {"op": "recv"}, {"op": "close"}])


# What the captures can and cannot tell (rstsleuth analyze, KB rules pattern.idle_out_of_rhythm,
# nat.first_packet_after_rhythm_break, nat.none_between_captures).
_TIE_NOTE = ("A 3 s timeout is far below any real device default: the idle pattern shows as a "
             "silence out of the connection's rhythm (4 s after gaps of a few ms). From the "
             "client's capture alone a firewall and a NAT expiry look the same (both reset the "
             "first packet after the idle) and stay tied; with both captures the addresses tell "
             "them apart (dual_nat_between).")


def _idle(events: list[dict]) -> dict:
    return dict(configured_timeout_s=IDLE_TIMEOUT_S, client_idle_s=IDLE_SLEEP_S,
                measured_idle_s=idle_before_error(events))


def firewall_idle_timeout(ctx: Context) -> Plan:
    chain(ctx, "fw")
    stateful_reset(ctx, "fw", IDLE_TIMEOUT_S)

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", ["fw", "r1", "cli"])],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    idle=_idle(events),
                    notes=["The firewall's conntrack entry expired during the idle period; the "
                           "client's next segment is INVALID there and REJECT answers it with a "
                           "RST forged from the server's address. The server never learns of it.",
                           _TIE_NOTE])
    return Plan(steps=_idle_steps(ctx.ip("srv")), expected=expected)


def keepalive_fix(ctx: Context) -> Plan:
    chain(ctx, "fw")
    stateful_reset(ctx, "fw", IDLE_TIMEOUT_S)

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(survives=True,
                    endpoints=endpoints(ctx, SERVER_PORT), no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    idle=dict(configured_timeout_s=IDLE_TIMEOUT_S, client_idle_s=IDLE_SLEEP_S),
                    notes=["Same firewall as firewall_idle_timeout; TCP keepalive every 1 s "
                           "(TCP_KEEPIDLE=1, TCP_KEEPINTVL=1) keeps the conntrack entry fresh, so "
                           "the query after the idle period is answered."])
    return Plan(steps=_idle_steps(ctx.ip("srv"), keepalive=[1, 1, 5]), expected=expected)


def firewall_policy_block(ctx: Context) -> Plan:
    chain(ctx, "fw")
    ctx.iptables("fw", "-A", "FORWARD", "-p", "tcp", "--syn", "--dport", str(SERVER_PORT),
                 "-j", "REJECT", "--reject-with", "tcp-reset")
    srv = ctx.ip("srv")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", ["fw", "r1", "cli"], answers_syn=True,
                                  connection=2)],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    notes=[f"Connection 1 (port {OTHER_PORT}) is allowed and gives the server's "
                           f"own TTL as a baseline; connection 2 (port {SERVER_PORT}) is "
                           "refused by the firewall, its SYN never reaches the server."])
    steps = (_exchange(srv, OTHER_PORT) + [{"op": "close"}]
             + [{"op": "connect", "host": srv, "port": SERVER_PORT}])
    return Plan(steps=steps, server_args=["--port", str(SERVER_PORT), "--port", str(OTHER_PORT)],
                expected=expected)


DPI_SIGNATURE = "/etc/passwd"


def dpi_payload_match(ctx: Context) -> Plan:
    chain(ctx, "fw")
    ctx.iptables("fw", "-A", "FORWARD", "-p", "tcp", "-m", "string", "--algo", "bm",
                 "--string", DPI_SIGNATURE, "-j", "REJECT", "--reject-with", "tcp-reset")
    srv = ctx.ip("srv")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", ["fw", "r1", "cli"])],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client("fw"))],
                    notes=[f"The firewall's DPI matches the payload '{DPI_SIGNATURE}' (iptables string "
                           "match) and answers that segment with a RST to the client only; the "
                           "segment is dropped, so the server never sees it."])
    steps = (_exchange(srv, SERVER_PORT, "GET /index.html")
             + [{"op": "send", "data": f"GET /files/../..{DPI_SIGNATURE}"}, {"op": "recv"}])
    return Plan(steps=steps, expected=expected)


IDS_BURST = 3
IDS_ATTEMPTS = 5


def ids_rate_limit(ctx: Context) -> Plan:
    chain(ctx, "ids")
    ctx.iptables("ids", "-A", "FORWARD", "-p", "tcp", "--syn", "--dport", str(SERVER_PORT),
                 "-m", "hashlimit", "--hashlimit-name", "rsl_ids", "--hashlimit-mode", "srcip",
                 "--hashlimit-above", "1/minute", "--hashlimit-burst", str(IDS_BURST),
                 "-j", "REJECT", "--reject-with", "tcp-reset")
    srv = ctx.ip("srv")

    def expected(ctx: Context, events: list[dict]) -> dict:
        rejected = IDS_ATTEMPTS - IDS_BURST
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", ["ids", "r1", "cli"], answers_syn=True,
                                  min_count=rejected)],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client("ids"))],
                    notes=[f"{IDS_ATTEMPTS} connections in a row; the IDS allows a burst of "
                           f"{IDS_BURST} new connections per source, then (above 1/minute) "
                           f"rejects the SYN of the other {rejected}."])
    steps: list[dict] = []
    for n in range(IDS_ATTEMPTS):
        steps += _exchange(srv, SERVER_PORT, f"request {n + 1}") + [{"op": "close"}]
    return Plan(steps=steps, expected=expected)


def nat_table_expiry(ctx: Context) -> Plan:
    chain(ctx, "nat")
    ctx.iptables("nat", "-t", "nat", "-A", "POSTROUTING", "-o", "to-r2", "-j", "MASQUERADE")
    # A translation that is gone cannot be rebuilt mid-flow: the NAT answers with a RST
    # (some gateways drop silently; this one resets, like Azure's "TCP reset on idle").
    ctx.iptables("nat", "-A", "FORWARD", "-p", "tcp", "-m", "conntrack", "--ctstate", "INVALID",
                 "-j", "REJECT", "--reject-with", "tcp-reset")
    ctx.sysctl("nat", {"net.netfilter.nf_conntrack_tcp_loose": 0,
                       "net.netfilter.nf_conntrack_tcp_timeout_established": IDLE_TIMEOUT_S})

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT, seen_client=ctx.ip("nat", "r2")),
                    rsts=[ctx.rst("client", "server", ["nat", "r1", "cli"])],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", server_to_client("nat"))],
                    idle=_idle(events),
                    notes=["The server sees the client as the NAT's outside address; after the "
                           "mapping expired the client's next segment has no translation and the "
                           "NAT answers it with a RST.", _TIE_NOTE])
    return Plan(steps=_idle_steps(ctx.ip("srv")), expected=expected)


def asymmetric_routing(ctx: Context) -> Plan:
    lab = ctx.lab
    for name, ttl, role in (("cli", 64, "host"), ("r1", 255, "router"), ("fwa", 255, "middle_device"),
                            ("fwb", 255, "middle_device"), ("r2", 255, "router"),
                            ("srv", 128, "host")):
        lab.add_node(name, ttl, role)
    client_link = lab.link("cli", "r1")
    for a, b in (("r1", "fwa"), ("fwa", "r2"), ("r1", "fwb"), ("fwb", "r2"), ("r2", "srv")):
        lab.link(a, b)
    lab.route_all()  # every path through fwa (first link wins the tie) ...
    lab.route("r2", client_link, "fwb")  # ... except the return path to the client
    ctx.middle_config.append(f"r2: ip route replace {client_link.subnet(ctx.family)} via fwb")
    for fw in ("fwa", "fwb"):
        stateful_reset(ctx, fw)

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("server", "client", ["fwb", "r2", "srv"], min_count=2)],
                    no_rst_from=["client", "server"],
                    client_sees="connect() times out: no SYN-ACK ever arrives, no RST either",
                    notes=["SYN goes out through fwa, the SYN-ACK comes back through fwb, which "
                           "holds no state for it and resets it toward the server with the "
                           "client's address. The RST shows only in the server's capture."])
    return Plan(steps=[{"op": "connect", "host": ctx.ip("srv"), "port": SERVER_PORT,
                        "timeout": 2.5}], expected=expected)


def path_change(ctx: Context) -> Plan:
    lab = ctx.lab
    for name, ttl, role in (("cli", 64, "host"), ("r1", 255, "router"), ("fwa", 255, "middle_device"),
                            ("r2", 255, "router"), ("srv", 128, "host"), ("rx", 255, "router"),
                            ("fwb", 255, "middle_device")):
        lab.add_node(name, ttl, role)
    # rx reaches r2 through fwa or fwb: first through fwa (state intact, one router more),
    # then through fwb. The first-added link wins route_all's ties: cli-r1-fwa-r2-srv.
    links = {pair: lab.link(*pair) for pair in (("cli", "r1"), ("r1", "fwa"), ("fwa", "r2"),
                                                ("r2", "srv"), ("r1", "rx"), ("rx", "fwa"),
                                                ("rx", "fwb"), ("fwb", "r2"))}
    lab.route_all()
    for fw in ("fwa", "fwb"):
        stateful_reset(ctx, fw)
    client_net, server_net = links[("cli", "r1")], links[("r2", "srv")]

    def reroute(node: str, link, via: str) -> None:
        lab.route(node, link, via)
        ctx.middle_config.append(f"{node}: ip route replace {link.subnet(ctx.family)} via {via}")

    def flap_via_rx(ctx: Context) -> None:
        # First flap: r1 and fwa swap their direct link for the detour through rx. fwa still
        # carries both directions (its state survives); the server's packets now cross one
        # router more (128-4 = 124 instead of 125): the TTL shift a capture can show.
        reroute("r1", server_net, "rx")
        reroute("rx", server_net, "fwa")
        reroute("fwa", client_net, "rx")
        ctx.notes.append("After the first exchange r1 and fwa detour through rx (still via fwa).")

    def flap_to_fwb(ctx: Context) -> None:
        # Second flap: rx and r2 fail over to fwb, which never saw the handshake.
        reroute("rx", server_net, "fwb")
        reroute("r2", client_net, "fwb")
        reroute("fwb", client_net, "rx")
        ctx.notes.append("After the second exchange rx and r2 fail over to fwb.")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", ["fwb", "rx", "r1", "cli"])],
                    no_rst_from=["client", "server"],
                    baselines=[ctx.baseline("client", "server", ["srv", "r2", "fwa", "r1", "cli"])],
                    notes=["Before the first flap the server's packets cross r2, fwa, r1 (128-3 = "
                           "125); during the detour r2, fwa, rx, r1 (128-4 = 124: the TTL shift "
                           "of normal packets); the RST comes from fwb (255-2 = 253, tracert "
                           "hop 3). Without the detour's TTL shift nothing in either capture "
                           "tells this reset from a DPI block: the RST answers the client's "
                           "query at once and the query never reaches the server."])
    steps = (_exchange(ctx.ip("srv"), SERVER_PORT)
             + [{"op": "mark", "tag": "flap_via_rx"}, {"op": "wait_go"},
                {"op": "send", "data": "during the detour"}, {"op": "recv"},
                # Long enough for the client's delayed ACK to cross the detour: the server
                # then has nothing to retransmit into fwb.
                {"op": "sleep", "s": 0.3},
                {"op": "mark", "tag": "flap_to_fwb"}, {"op": "wait_go"},
                {"op": "send", "data": "after the flap"}, {"op": "recv"}])
    return Plan(steps=steps, hooks={"flap_via_rx": flap_via_rx, "flap_to_fwb": flap_to_fwb},
                expected=expected)


ABORT_REPLY_BYTES = 4 * 1024 * 1024


def endpoint_abort(ctx: Context) -> Plan:
    chain(ctx, "fw")
    stateful_reset(ctx, "fw")  # present and stateful, but innocent: default timeouts

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", server_to_client()),
                          ctx.rst("server", "server", ["srv"])],
                    no_rst_from=["client"], rst_sent_by_capture_host=["server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    notes=[f"The client asks for a download; the server application writes "
                           f"{ABORT_REPLY_BYTES} bytes and closes abortively (SO_LINGER 0) while "
                           "most of them are still in flight: the server's kernel discards the "
                           "rest and sends the RST mid-transfer, with the server's own TTL."])
    steps = [{"op": "connect", "host": ctx.ip("srv"), "port": SERVER_PORT},
             {"op": "send", "data": "GET /download"}, {"op": "drain"}]
    return Plan(steps=steps, expected=expected, snaplen=128,
                server_args=["--port", str(SERVER_PORT),
                             "--abort-after-bytes", str(ABORT_REPLY_BYTES)])


def endpoint_after_close(ctx: Context) -> Plan:
    chain(ctx, "fw")
    stateful_reset(ctx, "fw")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, SERVER_PORT),
                    rsts=[ctx.rst("client", "server", server_to_client()),
                          ctx.rst("server", "server", ["srv"])],
                    no_rst_from=["client"], rst_sent_by_capture_host=["server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    notes=["The server answers, then closes in order (FIN); the client, which has "
                           "not read the FIN yet, sends more data 0.3 s later and the server's "
                           "kernel answers it with a RST (data for a closed socket)."])
    steps = (_exchange(ctx.ip("srv"), SERVER_PORT, "request")
             + [{"op": "sleep", "s": 0.3}, {"op": "send", "data": "one more thing"},
                {"op": "recv"}])
    return Plan(steps=steps, server_args=["--port", str(SERVER_PORT), "--close-after-reply"],
                expected=expected)


def endpoint_port_closed(ctx: Context) -> Plan:
    chain(ctx, "fw")
    stateful_reset(ctx, "fw")
    srv = ctx.ip("srv")

    def expected(ctx: Context, events: list[dict]) -> dict:
        return dict(endpoints=endpoints(ctx, CLOSED_PORT),
                    rsts=[ctx.rst("client", "server", server_to_client(), answers_syn=True,
                                  connection=2),
                          ctx.rst("server", "server", ["srv"], answers_syn=True, connection=2)],
                    no_rst_from=["client"], rst_sent_by_capture_host=["server"],
                    baselines=[ctx.baseline("client", "server", server_to_client())],
                    notes=[f"Connection 1 (port {SERVER_PORT}) works; connection 2 goes to port "
                           f"{CLOSED_PORT}, where nothing listens: the server's kernel refuses it."])
    steps = (_exchange(srv, SERVER_PORT) + [{"op": "close"}]
             + [{"op": "connect", "host": srv, "port": CLOSED_PORT}])
    return Plan(steps=steps, expected=expected)


SCENARIOS = [
    Scenario("firewall_idle_timeout", "Firewall state expires during idle; next segment reset",
             4, firewall_idle_timeout, "middle_device", "idle_timeout", "firewall.idle_timeout"),
    Scenario("firewall_policy_block", "Firewall policy rejects the SYN with a RST (IPv6)", 6,
             firewall_policy_block, "middle_device", "syn_rejected", "firewall.policy_block"),
    Scenario("dpi_payload_match", "Firewall DPI payload match resets the connection", 4,
             dpi_payload_match, "middle_device", "payload_triggered",
             "firewall.dpi_payload_match"),
    Scenario("ids_rate_limit", "IDS rejects SYNs above a connection rate", 4, ids_rate_limit,
             "middle_device", "syn_rejected", "ids_ips.rate_limit"),
    Scenario("nat_table_expiry", "NAT mapping expires during idle; next segment reset", 4,
             nat_table_expiry, "middle_device", "idle_timeout", "nat.table_expiry"),
    Scenario("asymmetric_routing", "Return path crosses a firewall with no state", 4,
             asymmetric_routing, "middle_device", "unpredictable", "routing.asymmetric"),
    Scenario("path_change", "Route flaps mid-connection to another stateful firewall", 4,
             path_change, "middle_device", "unpredictable", "routing.path_change"),
    Scenario("endpoint_abort", "Control: the server aborts mid-download (SO_LINGER 0)", 4,
             endpoint_abort,
             "endpoint", "during_transfer", "endpoint.application_abort"),
    Scenario("endpoint_after_close", "Control: data sent after the server closed", 4,
             endpoint_after_close, "endpoint", "after_close", "endpoint.application_abort"),
    Scenario("endpoint_port_closed", "Control: SYN to a closed port (IPv6)", 6,
             endpoint_port_closed, "endpoint", "syn_rejected", "endpoint.port_closed"),
    Scenario("keepalive_fix", "Idle timeout again, with TCP keepalive: the connection survives",
             4, keepalive_fix, "middle_device", "idle_timeout", "firewall.idle_timeout"),
]
