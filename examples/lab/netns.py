"""Network namespaces joined by veth links: the lab's wiring.

Every namespace is named ``rsl-<pid>-<run>-<node>`` so parallel runs never collide, and every
veth pair is created directly inside its two namespaces (``ip link add ... netns A type veth
peer ... netns B``) so nothing ever appears in, or routes through, the host's own namespace.
Addresses come from 10.231.<link>.0/24 and fd00:231:<link>::/64 and exist only inside the lab.
"""
from __future__ import annotations

import atexit
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from facts.errors import UserError

_RUN_COUNTER = itertools.count(1)
# Labs still alive in this process: atexit and the signal handlers tear them down.
_LIVE_LABS: list["Lab"] = []


class LabError(UserError):
    """The lab cannot run here (not root, tools missing, namespaces refused) or a step failed."""


def _run(cmd: list[str], check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"lab command failed: {' '.join(cmd)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def lab_unavailable_reason() -> Optional[str]:
    """Why the lab cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, netfilter, tcpdump)"
    for tool in ("ip", "iptables", "ip6tables", "tcpdump"):
        if shutil.which(tool) is None:
            return f"the lab needs '{tool}' on PATH"
    probe = f"rsl-{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip() or 'ip netns add failed'}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@dataclass
class Node:
    """One namespace: an end host, a router or a middle device."""

    name: str
    netns: str
    ttl: int
    role: str
    ifaces: dict[str, str] = field(default_factory=dict)  # neighbour -> interface name

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]


@dataclass
class Link:
    index: int
    a: str
    b: str

    def v4(self, node: str) -> str:
        return f"10.231.{self.index}.{1 if node == self.a else 2}"

    def v6(self, node: str) -> str:
        return f"fd00:231:{self.index}::{1 if node == self.a else 2}"

    def subnet(self, family: int) -> str:
        return f"10.231.{self.index}.0/24" if family == 4 else f"fd00:231:{self.index}::/64"


class Lab:
    """A set of namespaces that is always torn down: use as a context manager."""

    def __init__(self):
        self.prefix = f"rsl-{os.getpid()}-{next(_RUN_COUNTER)}"
        self.nodes: dict[str, Node] = {}
        self.links: list[Link] = []
        self.procs: list[subprocess.Popen] = []
        self.temp_dirs: list[str] = []  # removed at close (e.g. HAProxy's configuration)
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        _LIVE_LABS.append(self)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process started in the lab, then delete its namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for proc in self.procs:
            stop_process(proc)
        for node in self.nodes.values():
            # Anything still inside one of our uniquely named namespaces was started by us.
            pids = subprocess.run(["ip", "netns", "pids", node.netns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", node.netns], capture_output=True)
        for folder in self.temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)
        if self in _LIVE_LABS:
            _LIVE_LABS.remove(self)

    # -- building ------------------------------------------------------------------------
    def add_node(self, name: str, ttl: int, role: str) -> Node:
        netns = f"{self.prefix}-{name}"
        _run(["ip", "netns", "add", netns])
        node = Node(name, netns, ttl, role)
        self.nodes[name] = node
        # Defaults first, so interfaces moved in later inherit the hop limit and skip DAD.
        self.sysctl(node, {
            "net.ipv4.ip_default_ttl": ttl,
            "net.ipv6.conf.default.hop_limit": ttl,
            "net.ipv6.conf.all.hop_limit": ttl,
            "net.ipv6.conf.default.accept_dad": 0,
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_ra": 0,
            "net.ipv6.conf.default.router_solicitations": 0,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
        })
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])
        if role != "host":
            self.sysctl(node, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
        return node

    def sysctl(self, node: Node, values: dict[str, object]) -> None:
        args = [f"{key}={value}" for key, value in values.items()]
        _run(node.cmd("sysctl", "-q", "-w", *args))

    def link(self, a: str, b: str) -> Link:
        link = Link(len(self.links) + 1, a, b)
        na, nb = self.nodes[a], self.nodes[b]
        ia, ib = f"to-{b}", f"to-{a}"
        _run(["ip", "link", "add", ia, "netns", na.netns, "type", "veth",
              "peer", "name", ib, "netns", nb.netns])
        for node, iface in ((na, ia), (nb, ib)):
            node.ifaces[b if node is na else a] = iface
            self.sysctl(node, {f"net.ipv6.conf.{iface}.hop_limit": node.ttl,
                               f"net.ipv6.conf.{iface}.accept_dad": 0})
            _run(["ip", "-n", node.netns, "addr", "add", f"{link.v4(node.name)}/24", "dev", iface])
            _run(["ip", "-n", node.netns, "addr", "add", f"{link.v6(node.name)}/64", "dev", iface,
                  "nodad"])
            _run(["ip", "-n", node.netns, "link", "set", iface, "up"])
        self.links.append(link)
        return link

    def link_between(self, a: str, b: str) -> Link:
        for link in self.links:
            if {link.a, link.b} == {a, b}:
                return link
        raise LabError(f"lab topology: no link between {a} and {b}")

    def address(self, node: str, family: int, toward: Optional[str] = None) -> str:
        """The node's address on its link toward ``toward`` (its only link when omitted)."""
        links = [l for l in self.links if node in (l.a, l.b)
                 and (toward is None or toward in (l.a, l.b))]
        link = links[0]
        return link.v4(node) if family == 4 else link.v6(node)

    def _neighbours(self, name: str) -> list[str]:
        return [l.b if l.a == name else l.a for l in self.links if name in (l.a, l.b)]

    def route_all(self) -> None:
        """Static routes along shortest paths (first-added link wins ties), both families."""
        for node in self.nodes:
            first_hop: dict[str, str] = {}
            dist = {node: 0}
            queue = deque([(node, None)])
            while queue:
                cur, hop = queue.popleft()
                for nxt in self._neighbours(cur):
                    if nxt not in dist:
                        dist[nxt] = dist[cur] + 1
                        first_hop[nxt] = hop or nxt
                        queue.append((nxt, hop or nxt))
            for link in self.links:
                if node in (link.a, link.b):
                    continue
                # Reach the link through whichever end is closer.
                target = link.a if dist[link.a] <= dist[link.b] else link.b
                self.route(node, link, first_hop[target])

    def route(self, node: str, link: Link, via: str) -> None:
        """Send traffic for ``link``'s subnets from ``node`` through neighbour ``via``."""
        hop = self.link_between(node, via)
        for family in (4, 6):
            gateway = hop.v4(via) if family == 4 else hop.v6(via)
            _run(["ip", f"-{family}", "-n", self.nodes[node].netns, "route", "replace",
                  link.subnet(family), "via", gateway])

    def path_ttl(self, path: list[str]) -> tuple[int, int]:
        """(initial TTL, TTL on arrival) for a packet sent by path[0] and received by path[-1]."""
        initial = self.nodes[path[0]].ttl
        return initial, initial - max(len(path) - 2, 0)

    # -- processes -----------------------------------------------------------------------
    def popen(self, node: str, args: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.nodes[node].cmd(*args), **kwargs)
        self.procs.append(proc)
        return proc

    def exec(self, node: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run(self.nodes[node].cmd(*args), check=check)


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 3.0) -> None:
    """Stop one process we started, by its id: ``sig`` first, SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=wait)
    except ProcessLookupError:
        pass


def _cleanup_all() -> None:
    for lab in list(_LIVE_LABS):
        lab.close()


atexit.register(_cleanup_all)


def install_signal_cleanup() -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so ``finally`` blocks and atexit tear the lab down.
    Only for the command line: pytest keeps its own handlers."""
    def _raise(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
