"""The numbers a fix prescribes, computed from the evidence, and the safe rendering of a
fix's ``{placeholder}`` text (``str.format`` field names only: never evaluated, no attribute
or index access; an unknown name stays ``{name}`` so a missing number is visible)."""
from __future__ import annotations

import functools
import math
import string
from typing import Any

from facts.errors import UserError

from .kb_model import Fix

PROBE_COUNT = 3
DEFAULT_KEEPALIVE_S = 300
MIN_DEVICE_TIMEOUT_S = 3600
DEFAULT_MTU = 1500
APP_NAMES = {22: "SSH", 3389: "RDP", 1433: "SQL Server", 445: "SMB"}
DEVICE_MATCH_TOLERANCE = 0.05  # idle within 5 % of a device's default timeout


class FixTemplateError(UserError):
    """A fix text asks for something other than a plain ``{name}`` placeholder."""


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 1)


def keepalive_for(idle_s: float | None) -> int:
    """Half the idle that killed the connection, floored to 10 s, kept within 10..300 s."""
    if idle_s is None:
        return DEFAULT_KEEPALIVE_S
    return max(10, min(DEFAULT_KEEPALIVE_S, int(math.floor(idle_s / 2 / 10)) * 10))


def _matched_devices(evidence: dict[str, Any], kb, idle_s: float | None) -> str | None:
    named = evidence.get("cross_matched_devices")
    if named:
        return ", ".join(str(d) for d in named)
    if idle_s is None or kb is None:
        return None
    hits = [t.device for t in kb.reference.idle_timeouts
            if t.seconds and abs(idle_s - t.seconds) <= DEVICE_MATCH_TOLERANCE * t.seconds]
    return ", ".join(hits) or None


# The parameters that depend on the measured idle; matched_devices also scans the KB's
# device table.
_IDLE_NAMES = frozenset({"idle_s", "idle_min", "keepalive_s", "keepalive_ms", "keepalive_min",
                         "device_timeout_s", "matched_devices"})


# What each parameter is computed from: evidence fields, and IDLE for idle_s (the longer of
# idle_before_s and idle_before_trigger_s, rounded). A fix renders the same text for equal
# values of these, so a report renders it once per distinct value (engine._resetout keys
# its cache so; the tests check compute against this table).
IDLE = "idle_s"
_PORT = ("conn_server_port", "server_port")
PARAM_INPUTS: dict[str, tuple[str, ...]] = {
    **{name: (IDLE,) for name in _IDLE_NAMES - {"matched_devices"}},
    "matched_devices": (IDLE, "cross_matched_devices"),
    "probe_count": (),
    "server_ip": ("server_ip",), "client_ip": ("client_ip",),
    "server_port": _PORT, "app_name": _PORT,
    "path_mtu": ("path_mtu",), "ping_size": ("path_mtu",), "mss": ("path_mtu",),
    "tracert_hop": ("tracert_hop",),
}


def inputs_of(names) -> tuple[bool, tuple[str, ...]]:
    """(whether idle_s is needed, the other evidence fields, in a fixed order) that the
    parameters ``names`` are computed from; a name compute never makes depends on nothing
    (its placeholder stays visible)."""
    wanted = {field for name in names for field in PARAM_INPUTS.get(name, ())}
    return IDLE in wanted, tuple(sorted(wanted - {IDLE}))


def compute(evidence: dict[str, Any], kb=None, names: frozenset[str] | None = None
            ) -> dict[str, str | int | float]:
    """Every fix parameter the evidence allows; names that cannot be known are left out
    (their placeholders then stay visible as ``{name}``). ``names``: the parameters wanted
    (a report renders thousands of fixes that need one or two); those are computed as
    without it, the others may be left out."""
    params: dict[str, str | int | float] = {}
    idle_wanted = names is None or not _IDLE_NAMES.isdisjoint(names)
    # the idle that killed the connection: a device resets when its timer expires (silence
    # right before the RST: idle_before_s) or on the first packet after expiry (silence
    # before the packet the RST answered: idle_before_trigger_s); the longer one is it
    measured = [v for v in (evidence.get("idle_before_s"), evidence.get("idle_before_trigger_s"))
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and v >= 0] if idle_wanted else []
    idle_s = None
    if measured:
        idle_s = int(round(max(measured)))
        params["idle_s"] = idle_s
        params["idle_min"] = _whole(round(idle_s / 60, 1))
    keepalive_s = keepalive_for(idle_s)
    params["keepalive_s"] = keepalive_s
    params["keepalive_ms"] = keepalive_s * 1000
    params["keepalive_min"] = max(1, keepalive_s // 60)
    params["probe_count"] = PROBE_COUNT
    params["device_timeout_s"] = max(MIN_DEVICE_TIMEOUT_S, 2 * (idle_s or 0))
    for name in ("server_ip", "client_ip"):
        if evidence.get(name):
            params[name] = str(evidence[name])
    port = evidence.get("conn_server_port", evidence.get("server_port"))
    if isinstance(port, int) and not isinstance(port, bool):
        params["server_port"] = port
    params["app_name"] = APP_NAMES.get(port, "the application") if isinstance(port, int) \
        else "the application"
    mtu = evidence.get("path_mtu")
    if isinstance(mtu, int) and not isinstance(mtu, bool) and 68 <= mtu <= 65535:
        params["path_mtu"] = mtu
    effective = params.get("path_mtu", DEFAULT_MTU)
    params["ping_size"] = int(effective) - 28
    params["mss"] = int(effective) - 40
    devices = _matched_devices(evidence, kb, idle_s) \
        if names is None or "matched_devices" in names else None
    if devices:
        params["matched_devices"] = devices
    hop = evidence.get("tracert_hop")
    if isinstance(hop, int) and not isinstance(hop, bool):
        params["tracert_hop"] = hop
    return params


def placeholders(template: str) -> list[str]:
    """The placeholder names in a template; raises FixTemplateError for anything that is
    not a plain name (``{a.b}``, ``{a[0]}``, ``{}``, ``{0}``, conversions, bad braces)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise FixTemplateError(f"fix text has unbalanced braces: {exc}") from None
    names = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or conversion or (spec and "{" in spec):
            raise FixTemplateError(f"fix placeholder {{{name}}} is not a plain name "
                                   f"(no attribute, index, conversion or nesting allowed)")
        names.append(name)
    return names


def render(fix: Fix, params: dict[str, Any], lang: str = "en") -> str:
    """The fix's steps in ``lang`` ('en' or 'zh') with known placeholders filled in."""
    return render_text(fix.steps.zh if lang == "zh" else fix.steps.en, params, fix.id)


def render_title(fix: Fix, params: dict[str, Any], lang: str = "en") -> str:
    """The fix's title, which may hold placeholders too."""
    return render_text(fix.title.zh if lang == "zh" else fix.title.en, params, fix.id)


def placeholders_of(fix: Fix, lang: str = "en") -> tuple[str, ...]:
    """The parameter names the fix's title and steps in ``lang`` use: a rendering depends on
    nothing else, so equal values of these give equal text."""
    title = fix.title.zh if lang == "zh" else fix.title.en
    steps = fix.steps.zh if lang == "zh" else fix.steps.en
    try:
        return _names(title, steps)
    except FixTemplateError as exc:
        raise FixTemplateError(f"fix {fix.id}: {exc}") from None


@functools.lru_cache(maxsize=4096)
def _names(*templates: str) -> tuple[str, ...]:
    names: list[str] = []
    for template in templates:
        for _literal, name, _spec, _conversion in _parsed(template):
            if name is not None and name not in names:
                names.append(name)
    return tuple(names)


@functools.lru_cache(maxsize=4096)
def _name_set(template: str) -> frozenset[str]:
    return frozenset(_names(template))


@functools.lru_cache(maxsize=4096)
def _parsed(template: str) -> tuple:
    """The checked template's parts, parsed once (a report renders the same fixes for
    thousands of resets)."""
    placeholders(template)
    return tuple(string.Formatter().parse(template))


def render_text(template: str, params: dict[str, Any], fix_id: str = "fix") -> str:
    """Fill plain ``{name}`` placeholders; unknown names stay visible as ``{name}``."""
    try:
        parts = _parsed(template)
    except FixTemplateError as exc:
        raise FixTemplateError(f"fix {fix_id}: {exc}") from None
    if _name_set(template) <= params.keys():
        # every placeholder known: what the loop below makes, unless a value refuses its
        # format spec (checked templates have no conversions, nesting or indexing)
        try:
            return template.format_map(params)
        except (ValueError, TypeError):
            pass
    return render_parts(parts, params)


def render_parts(parts: tuple, params: dict[str, Any]) -> str:
    """The parsed template's text, placeholder by placeholder: a value that refuses its
    spec is shown with str, an unknown name stays visible."""
    out = []
    for literal, name, spec, _conversion in parts:
        out.append(literal)
        if name is None:
            continue
        if name in params:
            try:
                out.append(format(params[name], spec or ""))
            except (ValueError, TypeError):
                out.append(str(params[name]))
        else:
            out.append("{" + name + (":" + spec if spec else "") + "}")
    return "".join(out)
