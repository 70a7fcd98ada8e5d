"""The lab's TCP client: a real program run inside the client namespace with ``ip netns exec``.

Standalone (standard library only). It plays a list of steps given as JSON and prints one JSON
line per step with the wall-clock time and the outcome, so the lab records what the application
saw (ECONNRESET, ECONNREFUSED, a timeout) next to the captures. Steps:
``connect`` (host, port, timeout, keepalive [idle, intvl, cnt], keep_previous: hold the
previous connection open instead of closing it), ``send`` (data), ``recv`` (timeout),
``recv_held`` (timeout: one read on every held connection, one line each), ``drain``
(timeout: read until the peer closes or the connection fails, counting bytes), ``sleep`` (s),
``mark`` (tag: tells the lab runner a point was reached), ``wait_go`` (blocks until the runner
writes a line on stdin), ``close``. After an error the steps up to the
next ``connect`` are skipped: the application gave up on that connection.
"""
from __future__ import annotations

import errno
import json
import socket
import sys
import time


def emit(**data) -> None:
    data.setdefault("t", time.time())
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def error_name(exc: BaseException) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "TIMEOUT"
    code = getattr(exc, "errno", None)
    return errno.errorcode.get(code, type(exc).__name__) if code else type(exc).__name__


def connect(step: dict) -> socket.socket:
    host = step["host"]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    keepalive = step.get("keepalive")
    if keepalive:
        idle, intvl, cnt = keepalive
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)
    sock.settimeout(step.get("timeout", 3.0))
    sock.connect((host, step["port"]))
    return sock


def run(steps: list[dict]) -> None:
    sock = None
    conn = 0
    failed = False
    held: list[tuple[int, socket.socket]] = []  # earlier connections kept open
    for index, step in enumerate(steps):
        op = step["op"]
        if op == "connect":
            conn += 1
            failed = False
        elif failed and op not in ("sleep", "mark", "wait_go", "recv_held"):
            continue
        record = {"step": index, "op": op, "conn": conn}
        try:
            if op == "connect":
                if sock is not None:
                    if step.get("keep_previous"):
                        held.append((conn - 1, sock))
                    else:
                        sock.close()
                sock = None
                sock = connect(step)
                local = sock.getsockname()
                record.update(local_ip=local[0], local_port=local[1])
            elif op == "send":
                sock.sendall(step["data"].encode())
                record["bytes"] = len(step["data"])
            elif op == "recv":
                sock.settimeout(step.get("timeout", 3.0))
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError(errno.ENOTCONN, "EOF")
                record["data"] = data.decode(errors="replace").strip()
            elif op == "drain":
                record["bytes"] = 0
                sock.settimeout(step.get("timeout", 3.0))
                while True:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError(errno.ENOTCONN, "EOF")
                    record["bytes"] += len(data)
            elif op == "recv_held":
                for number, other in held:
                    emit(**read_held(number, other, step.get("timeout", 3.0), index))
            elif op == "sleep":
                time.sleep(step["s"])
            elif op == "mark":
                record["tag"] = step["tag"]
            elif op == "wait_go":
                sys.stdin.readline()
            elif op == "close":
                sock.close()
                sock = None
            record["ok"] = True
        except (OSError, ConnectionError) as exc:
            record.update(ok=False, error="EOF" if str(exc).endswith("EOF") else error_name(exc))
            failed = True
        emit(**record)
    if sock is not None:
        sock.close()
    for _, other in held:
        other.close()


def read_held(number: int, sock: socket.socket, timeout: float, index: int) -> dict:
    record = {"step": index, "op": "recv", "conn": number}
    try:
        sock.settimeout(timeout)
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(errno.ENOTCONN, "EOF")
        record.update(ok=True, data=data.decode(errors="replace").strip())
    except (OSError, ConnectionError) as exc:
        record.update(ok=False, error="EOF" if str(exc).endswith("EOF") else error_name(exc))
    return record


def main() -> int:
    steps = json.loads(sys.argv[1])
    run(steps)
    emit(op="done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
