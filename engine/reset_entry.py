"""One reset's entry in the report (``ResetOut``), from its facts, evidence and inference.

A report on a big capture builds thousands of these: whatever repeats (the connection, the
RST source, the baseline, the dual outcome, each reasoning class's diagnoses, evidence
template and fired rules, the fixes rendered with the same values) is made once and shared
through one cache dict per report. Report objects are read-only once built.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
from typing import Optional

from facts import cross as cross_mod
from facts.evidence import DualEvidence
from facts.fastmodel import construct, model_is_plain
from facts.models import RstEvent

from . import fixparams
from .report_build import (diagnoses_for, evidence_from_template, evidence_template,
                           fired_rules, fix_plan, fixes_for, rendered_fix,
                           template_rows)
from .report_model import (Baseline, ConnectionRef, DualOut, EndpointRef,
                           EvidenceItem, Reasoning, ResetOut, RstSource, Trigger)

# The applications fixes are written for (fixparams.APP_NAMES), plus names for display only.
APPLICATIONS = {**fixparams.APP_NAMES, 80: "HTTP", 443: "HTTPS", 21: "FTP", 990: "FTPS",
                389: "LDAP", 3306: "MySQL", 5432: "PostgreSQL", 6379: "Redis", 25: "SMTP",
                23: "Telnet"}


def application(port: int) -> str:
    return APPLICATIONS.get(port, f"TCP/{port}")


def _dual_verdict(ev: Optional[DualEvidence]) -> str:
    if ev is None or not ev.dual_available:
        return "no_peer_capture"
    if ev.rst_from_capture_host:
        return "sent_by_capture_host"
    if ev.dual_peer_saw_connection is False:
        return "blocked_before_peer"
    if ev.dual_peer_sent_rst is True:
        return "endpoint_sent"
    if ev.dual_peer_sent_rst is False:
        return "both_ends_reset" if ev.dual_peer_received_rst else "middle_injected"
    return "inconclusive"


def _wireshark_filter(rst: RstEvent, prefix: Optional[str] = None) -> str:
    """``prefix``: ``_filter_prefix`` of the reset's connection, when already made."""
    frames = sorted({f for f in (rst.frame, rst.trigger_frame) if f})
    return (f"{prefix or _filter_prefix(rst.connection)}frame.number in "
            f"{{{' '.join(map(str, frames))}}})")


def _filter_prefix(c) -> str:
    addr = "ip.addr" if c.ip_version == 4 else "ipv6.addr"
    return (f"{addr}=={c.client.ip} && {addr}=={c.server.ip} && tcp.port=={c.client.port} && "
            f"tcp.port=={c.server.port} && (tcp.flags.reset==1 || tcp.flags.syn==1 || ")


def _iso_second(whole: float, seconds: dict) -> str:
    text = seconds[whole] = _dt.datetime.fromtimestamp(
        whole, _dt.timezone.utc).isoformat(timespec="seconds")
    return text


def iso_time(t: float, seconds: Optional[dict] = None) -> str:
    """``datetime.fromtimestamp(t, utc).isoformat(timespec="microseconds")``; ``seconds``
    (a dict kept for one report) holds each whole second's text, so that only the
    microseconds are formatted per reset. They are rounded as datetime rounds them: half to
    even, on the fraction that modf leaves (the tests compare both on edge cases)."""
    if seconds is None:
        return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds")
    frac, whole = math.modf(t)
    us = round(frac * 1e6)
    if us >= 1_000_000:
        us -= 1_000_000
        whole += 1.0
    elif us < 0:
        us += 1_000_000
        whole -= 1.0
    text = seconds.get(whole)  # float keys: apart from the report cache's tuple keys
    if text is None:
        text = _iso_second(whole, seconds)
    return f"{text[:-6]}.{us:06d}{text[-6:]}"


def _origin_confidence(inf, origin: str) -> float:
    origin_cf = max(0.0, inf.cf(f"origin.{origin}")) if origin != "undetermined" else 0.0
    return round(min(1.0, origin_cf), 3)


def verdict_class(kb, inf, lang: str, classes: dict) -> tuple:
    """Diagnoses, evidence template and fired rules: equal for every inference of one run
    class (Reasoner.run_key), so built once per class, not once per reset."""
    # the class object stays alive with the inference, so its id is not reused meanwhile
    key = id(inf.run_class if inf.run_class is not None else inf)
    found = classes.get(key)
    if found is None:
        diagnoses = diagnoses_for(kb, inf, inf.origin, lang)
        found = classes[key] = (diagnoses, evidence_template(inf, inf.origin, diagnoses),
                                fired_rules(inf), inf)
    return found[:3]


def _shared(cache: dict, cls, **values):
    """One object per distinct value set: resets repeat the same RST source and dual
    outcome thousands of times. Report objects are read-only once built (findings only
    write their own ``reasoning``, which is never shared)."""
    key = (cls, *values.values())
    try:
        found = cache.get(key)
    except TypeError:  # an unhashable value (a list): not shared
        return construct(cls, **values)
    if found is None:
        found = cache[key] = construct(cls, **values)
    return found


def _baseline(cache: dict, rst: RstEvent) -> Baseline:
    """``_shared`` for the baseline, whose TTL values are a list."""
    ttl = rst.baseline_ttl_conn if rst.baseline_ttl_conn is not None else rst.baseline_ttl_host
    values = rst.baseline_ttl_conn_values
    key = (Baseline, ttl, rst.baseline_initial_ttl, rst.baseline_decrements, rst.baseline_source,
           None if values is None else tuple(values))
    found = cache.get(key)
    if found is None:
        found = cache[key] = construct(Baseline, ttl=ttl, initial_ttl=rst.baseline_initial_ttl,
                                       decrements=rst.baseline_decrements,
                                       source=rst.baseline_source, values=values)
    return found


def _connection_ref(cache: dict, side, c, peer_ids: dict) -> tuple[ConnectionRef, str]:
    """The connection's report object and its Wireshark filter prefix, made once per
    connection."""
    key = (side.index, c.id)
    found = cache.get(key)
    if found is None:
        found = cache[key] = (construct(
            ConnectionRef, id=c.id, client=construct(EndpointRef, ip=c.client.ip, port=c.client.port),
            server=construct(EndpointRef, ip=c.server.ip, port=c.server.port),
            ip_version=c.ip_version, handshake=c.handshake, start=c.start, end=c.end,
            application=application(c.server.port), peer_connection_id=peer_ids.get(c.id)),
            _filter_prefix(c))
    return found


def reset_out(kb, side, rst: RstEvent, ev: dict, dual: DualEvidence, inf, trace,
              peer_ids: dict, lang: str, classes: dict, cache: dict) -> ResetOut:
    """``side``: the analysis.Side the reset was seen on; ``classes`` and ``cache``: dicts
    kept for one report (per reasoning class, and for whatever else repeats)."""
    c = rst.connection
    hop_addr = hop_name = None
    if trace is not None:
        hop = trace.hop(rst.tracert_hop)
        if hop is not None:
            hop_addr, hop_name = hop.address, hop.name
    origin = inf.origin
    diagnoses, template, fired = verdict_class(kb, inf, lang, classes)
    measured = cross_mod.measured_idle(rst)
    connection, filter_prefix = _connection_ref(cache, side, c, peer_ids)
    # Everything below is built from typed facts and KB objects: constructed without
    # re-validation (most of analyze's time on 5 000 resets); the JSON report is checked
    # against the generated schema by the tests.
    trigger = None
    if rst.trigger_len:
        trigger = construct(Trigger, frame=rst.trigger_frame, length=rst.trigger_len,
                            delta_s=rst.trigger_delta_s, excerpt=rst.trigger_excerpt)
    return construct(
        ResetOut,
        id=f"{side.index}:{rst.id}",
        capture=rst.capture, frame=rst.frame,
        connection=connection,
        observed_at=side.role if side.role in ("client", "server") else "unknown",
        claimed_sender=rst.claimed_sender, time=rst.time, time_iso=iso_time(rst.time, cache),
        flags=rst.flags,
        origin=origin, origin_confidence=_origin_confidence(inf, origin), pattern=inf.pattern,
        rst_source=_shared(cache, RstSource, ttl=rst.ttl, initial_ttl=rst.initial_ttl,
                           decrements=rst.ttl_decrements, tracert_hop=rst.tracert_hop,
                           tracert_address=hop_addr, tracert_name=hop_name),
        baseline=_baseline(cache, rst),
        idle_before_s=rst.idle_before_s, measured_idle_s=measured,
        idle_matches=list(ev.get("cross_matched_devices") or []),
        trigger=trigger,
        dual=_shared(cache, DualOut, peer_saw_connection=dual.dual_peer_saw_connection,
                     peer_sent_rst=dual.dual_peer_sent_rst,
                     peer_received_rst=dual.dual_peer_received_rst,
                     clock_offset_s=dual.dual_clock_offset_s, nat_between=dual.dual_nat_between,
                     verdict=_dual_verdict(dual)),
        diagnoses=diagnoses,
        fixes=fixes_for(kb, inf, origin, diagnoses, c.server.port,
                        lambda names: fixparams.compute(ev, kb, names), lang, cache),
        evidence=evidence_from_template(template, inf.evidence, cache),
        wireshark_filter=_wireshark_filter(rst, filter_prefix),
        reasoning=construct(Reasoning, finding="", fired=fired),
    )


# --- many resets at once: engine._resetout, with reset_out for what it declines ---------

_MODELS = (ResetOut, ConnectionRef, EndpointRef, RstSource, Baseline, Trigger, DualOut,
           Reasoning, EvidenceItem)
_INFOS, _PLANS = object(), object()  # the report cache's keys of the compiled pass's dicts
_compiled_module: Optional[object] = None
_compiled_checked = False


def compiled_entries():
    """engine._resetout when it is built, RSTSLEUTH_NO_CEXT is unset and the report models
    have the fields it writes (else None: reset_out builds every entry)."""
    global _compiled_module, _compiled_checked
    if not _compiled_checked:
        _compiled_checked = True
        try:
            from . import _resetout
        except ImportError:
            _resetout = None
        if _resetout is not None and not os.environ.get("RSTSLEUTH_NO_CEXT") \
                and all(model_is_plain(cls) for cls in _MODELS) \
                and _resetout.setup({cls.__name__: (cls, tuple(cls.model_fields))
                                     for cls in _MODELS}):
            _compiled_module = _resetout
    return _compiled_module


def reset_outs(kb, jobs: list, inferences: list, trace, peer_ids: dict, lang: str,
               classes: dict, cache: dict) -> list[ResetOut]:
    """``reset_out`` of each (side, rst, evidence, dual) job, the same objects; built in C
    when it can be (no tracert: each hop is looked up in Python)."""
    compiled = compiled_entries()
    if compiled is None or trace is not None:
        return [reset_out(kb, side, rst, ev, dual, inf, trace, peer_ids, lang, classes, cache)
                for (side, rst, ev, dual), inf in zip(jobs, inferences)]

    def class_info(inf) -> tuple:
        diagnoses, template, fired = verdict_class(kb, inf, lang, classes)
        origin = inf.origin
        return (origin, _origin_confidence(inf, origin), inf.pattern, diagnoses, fired,
                template_rows(template, cache), inf)

    def plan_of(inf, port: int) -> tuple:
        """Per applicable fix: (a token for it in this plan, whether it needs idle_s, the
        other evidence fields its placeholders are computed from)."""
        diagnoses = verdict_class(kb, inf, lang, classes)[0]
        fixes = fix_plan(kb, inf, inf.origin, diagnoses, port, lang, cache)[0]
        return tuple((object(), *fixparams.inputs_of(names), fix, names, frozenset(names))
                     for fix, names in fixes)

    def fix_of(i: int, fix, names: tuple[str, ...], wanted: frozenset[str]):
        """``fix`` (with its placeholders) rendered with job i's evidence."""
        return rendered_fix(fix, names, fixparams.compute(jobs[i][2], kb, wanted), lang, cache)

    def slow(i: int) -> ResetOut:
        side, rst, ev, dual = jobs[i]
        return reset_out(kb, side, rst, ev, dual, inferences[i], trace, peer_ids, lang,
                         classes, cache)

    infos = cache.get(_INFOS)
    if infos is None:
        infos = cache[_INFOS] = {}
        cache[_PLANS] = {}
    ctx = (cache, infos, cache[_PLANS], peer_ids, APPLICATIONS, class_info, plan_of, fix_of,
           lambda whole: _iso_second(whole, cache), slow)
    return compiled.build(list(jobs), list(inferences), ctx)
