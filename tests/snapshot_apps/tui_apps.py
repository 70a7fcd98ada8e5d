"""The one entry point that builds the TUI for tests and snapshots, with deterministic data:
the shipped example capture (or a synthetic report), the shipped KB (loaded once), no cursor
blink, no KB file watcher."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from engine import load_kb
from engine.report_model import Diagnosis, Report
from tui.app import RstSleuthApp, Session

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "firewall_idle_reset.pcap"
LAB = ROOT / "examples" / "lab_captures" / "firewall_idle_timeout"
SNAPSHOT_KB = Path(__file__).resolve().parent / "kb"  # small and frozen: stable snapshots
SIZE = (120, 40)


@lru_cache(maxsize=4)
def _kb(path: Path):
    return load_kb(path)


def shipped_kb():
    return _kb(ROOT / "knowledge")


def make_app(capture: Optional[Path] = EXAMPLE, peer: Optional[Path] = None, *,
             kb_path: Optional[Path] = None, lang: str = "en", start: Optional[str] = None,
             watch_kb: bool = False, session: Optional[Session] = None) -> RstSleuthApp:
    if session is None:
        kb = _kb(Path(kb_path)) if kb_path == SNAPSHOT_KB else \
            (load_kb(kb_path) if kb_path else shipped_kb())
        # relative paths keep the snapshots independent of where the checkout lives
        rel = (lambda p: str(Path(p).resolve().relative_to(ROOT)) if p else None)
        session = Session(rel(capture), rel(peer), kb=kb)
        session.analyze(lang)
    return RstSleuthApp(session, lang=lang, start=start, watch_kb=watch_kb, cursor_blink=False)


def snapshot_app(capture: Optional[Path] = EXAMPLE, **kwargs) -> RstSleuthApp:
    """What every snapshot test renders: the example capture over the frozen snapshot KB."""
    return make_app(capture, kb_path=SNAPSHOT_KB, **kwargs)


ORIGINS = ("middle_device", "endpoint", "undetermined")
PATTERNS = ("idle_timeout", "syn_rejected", "payload_triggered", None)
SUBTYPES = (("firewall.idle_timeout", "firewall"), ("nat.table_expiry", "nat"),
            ("ids_ips.signature_match", "ids_ips"), ("endpoint.port_closed", "endpoint"))


def synthetic_report(n: int) -> tuple[Report, dict]:
    """``n`` resets built from the example's one, varied in origin, pattern, sub-type, time
    and confidence (deterministic)."""
    from engine.analysis import analyze
    kb = shipped_kb()
    evidence: dict = {}
    base = analyze(str(EXAMPLE.relative_to(ROOT)) if Path.cwd() == ROOT else str(EXAMPLE),
                   kb=kb, evidence_out=evidence)
    template = base.resets[0]
    diagnoses = [[Diagnosis(id=cid, confidence=0.5, title=cid, family=fam)] for cid, fam in SUBTYPES]
    resets = []
    for i in range(n):
        resets.append(template.model_copy(update={
            "id": f"1:r{i + 1}", "frame": i + 1, "time": template.time + i * 0.001,
            "origin": ORIGINS[i % 3], "pattern": PATTERNS[i % 4],
            "origin_confidence": (i * 7 % 100) / 100, "diagnoses": diagnoses[i % 4]}))
    report = base.model_copy(update={"resets": resets})
    return report, {r.id: evidence[template.id] for r in resets[:10]}
