"""Runs one scenario end to end: build the namespaces, start the server, start tcpdump on both
end hosts, play the client, stop the captures, tear everything down, write ``expected.yaml``."""
from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from .expected import Expected, ExpectedRst, PeerBaseline, write_expected
from .netns import Lab, LabError, lab_unavailable_reason, stop_process, wait_for

HERE = Path(__file__).resolve().parent
SERVER_PORT = 8080
# Captured on the end hosts: TCP plus ICMP (PMTU and unreachables matter to the analysis).
CAPTURE_FILTER = "tcp or icmp or icmp6"


@dataclass
class Context:
    """What a scenario's ``build`` gets: the lab, the address family and a log of the middle
    device configuration (recorded in expected.yaml so a reader can see what was done)."""

    lab: Lab
    family: int
    client: str = "cli"
    server: str = "srv"
    middle_config: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ip(self, node: str, toward: Optional[str] = None) -> str:
        return self.lab.address(node, self.family, toward)

    def iptables(self, node: str, *args: str, family: Optional[int] = None) -> None:
        tool = "iptables" if (family or self.family) == 4 else "ip6tables"
        self.lab.exec(node, tool, *args)
        self.middle_config.append(f"{node}: {tool} {' '.join(args)}")

    def sysctl(self, node: str, values: dict[str, object]) -> None:
        self.lab.sysctl(self.lab.nodes[node], values)
        self.middle_config.extend(f"{node}: sysctl -w {k}={v}" for k, v in values.items())

    def rst(self, capture: str, claimed_sender: str, path: list[str], **extra) -> ExpectedRst:
        initial, ttl = self.lab.path_ttl(path)
        sender = self.lab.nodes[path[0]]
        return ExpectedRst(capture=capture, claimed_sender=claimed_sender, sent_by=sender.name,
                           sent_by_role=sender.role, path=path, ttl=ttl, initial_ttl=initial,
                           ttl_decrements=initial - ttl, tracert_hop=initial - ttl + 1, **extra)

    def baseline(self, capture: str, sender: str, path: list[str]) -> PeerBaseline:
        initial, ttl = self.lab.path_ttl(path)
        return PeerBaseline(capture=capture, sender=sender, ttl=ttl, initial_ttl=initial,
                            ttl_decrements=initial - ttl)

    def topology_text(self) -> str:
        return ", ".join(f"{l.a}—{l.b}" for l in self.lab.links)


@dataclass
class Plan:
    """What a scenario wants run once its topology and rules are in place."""

    steps: list[dict]
    server_args: list[str] = field(default_factory=list)
    before_client: Optional[Callable[[Context], None]] = None  # e.g. start HAProxy
    hooks: dict[str, Callable[[Context], None]] = field(default_factory=dict)  # mark tag -> action
    client_timeout: float = 15.0
    # Bytes kept per packet: a bulk transfer keeps headers and the first payload bytes only,
    # so its captures stay small enough to commit (readers take lengths from the IP header).
    snaplen: int = 262144
    # Fields of Expected, given the client's events once the run is over.
    expected: Optional[Callable[[Context, list[dict]], dict]] = None


@dataclass
class Scenario:
    """A scenario and the ground truth it reproduces (KB conclusion ids without their prefix
    for origin and pattern, the KB sub-type id as is)."""

    name: str
    title: str
    family: int
    build: Callable[[Context], Plan]
    origin: str
    pattern: str
    subtype: str


class Tcpdump:
    """tcpdump writing a pcap on one interface of one namespace, ready before traffic starts."""

    def __init__(self, lab: Lab, node: str, iface: str, path: Path, snaplen: int = 262144):
        self.path = path
        self.proc = lab.popen(node, ["tcpdump", "-i", iface, "-w", str(path), "-U", "--immediate-mode", "-n",
                                     "-s", str(snaplen), "-Z", "root", CAPTURE_FILTER],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        ready = threading.Event()

        def _read():
            for line in self.proc.stderr:
                self.stderr.append(line.strip())
                if "listening on" in line:
                    ready.set()
            ready.set()
        threading.Thread(target=_read, daemon=True).start()
        if not ready.wait(10) or self.proc.poll() is not None:
            raise LabError(f"tcpdump on {node}/{iface} did not start: {' '.join(self.stderr)}")

    def stop(self) -> None:
        # SIGINT: tcpdump flushes its buffer and closes the file properly.
        stop_process(self.proc, signal.SIGINT)


class LineReader:
    """Collects a child's JSON stdout lines on a thread so the runner can wait with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.events: list[dict] = []

        def _read():
            for raw in proc.stdout:
                try:
                    self.lines.put(json.loads(raw))
                except json.JSONDecodeError:
                    continue
            self.lines.put(None)
        threading.Thread(target=_read, daemon=True).start()

    def next(self, deadline: float) -> Optional[dict]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LabError("lab program did not finish in time")
        try:
            event = self.lines.get(timeout=remaining)
        except queue.Empty:
            raise LabError("lab program did not finish in time") from None
        if event is not None:
            self.events.append(event)
        return event


def python_program(name: str) -> list[str]:
    return [sys.executable, str(HERE / name)]


def start_server(ctx: Context, plan: Plan, bind: str) -> subprocess.Popen:
    args = python_program("peer_server.py") + ["--bind", bind, "--lifetime", "60"]
    args += plan.server_args or ["--port", str(SERVER_PORT)]
    proc = ctx.lab.popen(ctx.server, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    reader = LineReader(proc)
    event = reader.next(time.monotonic() + 10)
    if not event or event.get("event") != "listening":
        detail = proc.stderr.read().strip() if proc.poll() is not None else "no answer"
        raise LabError(f"lab server did not start: {detail.splitlines()[-1] if detail else ''}")
    return proc


def run_client(ctx: Context, plan: Plan) -> list[dict]:
    proc = ctx.lab.popen(ctx.client, python_program("peer_client.py") + [json.dumps(plan.steps)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    reader = LineReader(proc)
    deadline = time.monotonic() + plan.client_timeout
    while True:
        event = reader.next(deadline)
        if event is None or event.get("op") == "done":
            break
        if event.get("op") == "mark" and event.get("tag") in plan.hooks:
            plan.hooks[event["tag"]](ctx)
            proc.stdin.write("go\n")
            proc.stdin.flush()
    proc.wait(timeout=5)
    return reader.events


def run_scenario(scenario: Scenario, out_dir: Path, family: Optional[int] = None) -> Expected:
    """Run one scenario into ``out_dir`` (client.pcap, server.pcap, expected.yaml)."""
    reason = lab_unavailable_reason()
    if reason:
        raise LabError(reason)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"{out}: cannot create the output folder: {exc.strerror}") from None
    started = time.monotonic()
    with Lab() as lab:
        ctx = Context(lab, family or scenario.family)
        plan = scenario.build(ctx)
        server_proc = start_server(ctx, plan, ctx.ip(ctx.server))
        if plan.before_client:
            plan.before_client(ctx)
        captures = [
            Tcpdump(lab, ctx.client, next(iter(lab.nodes[ctx.client].ifaces.values())),
                    out / "client.pcap", plan.snaplen),
            Tcpdump(lab, ctx.server, next(iter(lab.nodes[ctx.server].ifaces.values())),
                    out / "server.pcap", plan.snaplen),
        ]
        try:
            events = run_client(ctx, plan)
            # Let the last segments (a RST answering the final packet) reach both captures.
            time.sleep(0.3)
        finally:
            # Captures stop before the server exits: its closing FINs are not part of the story.
            for cap in captures:
                cap.stop()
            stop_process(server_proc)
    fields = plan.expected(ctx, events)
    expected = Expected(scenario=scenario.name, title=scenario.title, origin=scenario.origin,
                        pattern=scenario.pattern, subtype=scenario.subtype,
                        topology=ctx.topology_text(),
                        node_ttls={n.name: n.ttl for n in lab.nodes.values()},
                        middle_config=ctx.middle_config, client_errors=client_errors(events),
                        connections_ok=connections_ok(events),
                        duration_s=round(time.monotonic() - started, 2),
                        notes=ctx.notes + fields.pop("notes", []), **fields)
    write_expected(expected, out)
    return expected


def client_errors(events: list[dict]) -> list[str]:
    return [e["error"] for e in events if e.get("ok") is False]


def connections_ok(events: list[dict]) -> int:
    """Connections whose every step succeeded."""
    failed = {e["conn"] for e in events if e.get("ok") is False}
    seen = {e["conn"] for e in events if e.get("op") == "connect"}
    return len(seen - failed)


def idle_before_error(events: list[dict]) -> Optional[float]:
    """Client clock: from the last data received to the failing step's end."""
    last_rx = None
    for event in events:
        if event.get("op") == "recv" and event.get("ok"):
            last_rx = event["t"]
        elif event.get("ok") is False and last_rx is not None:
            return round(event["t"] - last_rx, 3)
    return None


def wait_listening(ctx: Context, node: str, port: int, timeout: float = 5.0) -> None:
    def _up() -> bool:
        out = ctx.lab.exec(node, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
        return bool(out.strip())
    if not wait_for(_up, timeout):
        raise LabError(f"nothing listens on {node}:{port}")
