"""The registry of fact fields a KB condition may name, built from the typed models.

One flat namespace: RstEvent's own fields, ``conn_*`` for a few connection properties,
and every field of DualEvidence, CrossEvidence and ContextEvidence. ``evidence_from_rst``
turns an :class:`RstEvent` into that flat dict (the engine's input).
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .evidence import ContextEvidence, CrossEvidence, DualEvidence
from .models import Connection, RstEvent

# RstEvent fields that identify rather than describe; never conditions.
_RST_IDENTITY = {"kind", "id", "capture", "frame", "connection_id", "connection", "time",
                 "seq", "ack", "baseline_ttl_conn_values"}
# The RstEvent fields that identify it rather than describe it: not evidence.
IDENTITY_FIELDS = frozenset(_RST_IDENTITY)
# Connection properties exposed to rules as conn_<name>.
_CONN_FIELDS = ("ip_version", "roles_inferred", "handshake", "close", "rst_count",
                "largest_idle_gap_s", "largest_segment", "packets_c2s", "packets_s2c",
                "bytes_c2s", "bytes_s2c")
_SERVER_PORT = "conn_server_port"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # bool | int | float | str | list
    choices: tuple[Any, ...] | None
    description: str
    source: str  # rst | connection | dual | cross | context


def _kind_of(annotation: Any) -> tuple[str, tuple[Any, ...] | None]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return _kind_of(inner[0]) if len(inner) == 1 else ("str", None)
    if origin is Literal:
        values = get_args(annotation)
        kind = "int" if all(isinstance(v, int) for v in values) else "str"
        return kind, values
    if origin in (list, tuple, set, dict):
        return "list", None
    if annotation is bool:
        return "bool", None
    if annotation is int:
        return "int", None
    if annotation is float:
        return "float", None
    return "str", None


def _specs(model: type[BaseModel], source: str, skip=(), prefix: str = "",
           only: typing.Iterable[str] | None = None) -> dict[str, FieldSpec]:
    out = {}
    for name, info in model.model_fields.items():
        if name in skip or (only is not None and name not in only):
            continue
        kind, choices = _kind_of(info.annotation)
        out[prefix + name] = FieldSpec(prefix + name, kind, choices, info.description or "", source)
    return out


def build_registry() -> dict[str, FieldSpec]:
    reg: dict[str, FieldSpec] = {}
    reg.update(_specs(RstEvent, "rst", skip=_RST_IDENTITY))
    reg.update(_specs(Connection, "connection", prefix="conn_", only=_CONN_FIELDS))
    reg[_SERVER_PORT] = FieldSpec(_SERVER_PORT, "int", None, "Server's TCP port", "connection")
    for model, source in ((DualEvidence, "dual"), (CrossEvidence, "cross"),
                          (ContextEvidence, "context")):
        for name, spec in _specs(model, source).items():
            if name in reg and reg[name].kind != spec.kind:
                raise TypeError(f"field {name} declared twice with different types")
            reg.setdefault(name, spec)
    return reg


FIELDS: dict[str, FieldSpec] = build_registry()


def evidence_from_rst(rst: RstEvent) -> dict[str, Any]:
    """Flat evidence dict for one RST (None values dropped: unknown is absent)."""
    # RstEvent's describing fields are flat (scalars, one list): read them in place rather
    # than through the serializer (a tenth of analyze's evidence building); the list is
    # shared with the fact, and evidence is never mutated in place.
    skip = _RST_IDENTITY
    data = {k: v for k, v in rst.__dict__.items() if v is not None and k not in skip}
    data.update(connection_evidence(rst.connection))
    return data


_CONN_KEYS = tuple((name, "conn_" + name) for name in _CONN_FIELDS)


def connection_evidence(conn: Connection) -> dict[str, Any]:
    """The connection's part of a reset's evidence: ``conn_<name>`` (None left out) and
    the server port. Read from the model's ``__dict__`` with the prefixed names made once
    (once per reset, 5 000 times on a big capture)."""
    values = conn.__dict__
    try:
        data = {key: value for name, key in _CONN_KEYS
                if (value := values[name]) is not None}
    except KeyError:  # a field left unset (model_construct): getattr's error, as before
        data = {key: value for name, key in _CONN_KEYS
                if (value := getattr(conn, name)) is not None}
    data[_SERVER_PORT] = conn.server.port
    return data
