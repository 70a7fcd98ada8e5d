"""``lab check``: run ``rstsleuth analyze`` on lab output and compare its verdicts with the
ground truth in ``expected.yaml``.

Origin and tracert hop are the claims the tool must get right (a mismatch fails the check);
pattern and sub-type disagreements are listed so KB authors see where the rules misread a real
reset, and fail only with ``strict``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from facts.errors import UserError

from .expected import read_expected


class CheckRow(BaseModel):
    scenario: str
    capture: str
    claimed_sender: str
    frame: int
    want_origin: str
    got_origin: str
    want_hop: int
    got_hop: int
    want_pattern: str
    got_pattern: Optional[str]
    want_subtype: str
    got_subtypes: list[str]

    @property
    def origin_ok(self) -> bool:
        return self.want_origin == self.got_origin and self.want_hop == self.got_hop

    @property
    def pattern_ok(self) -> bool:
        return self.want_pattern == self.got_pattern

    @property
    def subtype_ok(self) -> bool:
        return self.want_subtype in self.got_subtypes


def scenario_folders(paths: list[Path]) -> list[Path]:
    """Each path is a scenario folder (holding expected.yaml) or a folder of them."""
    folders: list[Path] = []
    for path in paths:
        if (path / "expected.yaml").is_file():
            folders.append(path)
        elif path.is_dir():
            folders += sorted(p for p in path.iterdir() if (p / "expected.yaml").is_file())
        else:
            raise UserError(f"{path}: no such lab output folder")
    if not folders:
        raise UserError(f"{', '.join(map(str, paths))}: no expected.yaml found")
    return folders


def check_folder(folder: Path, kb=None) -> list[CheckRow]:
    """One row per predicted RST that analyze reported, on the scenario's service port."""
    from engine.analysis import analyze
    expected = read_expected(folder / "expected.yaml")
    client, server = folder / "client.pcap", folder / "server.pcap"
    report = analyze(str(client), str(server), kb=kb)
    side_of = {str(client): "client", str(server): "server"}
    rows = []
    for reset in report.resets:
        side = side_of.get(reset.capture)
        if reset.connection.server.port != expected.endpoints.server_port:
            continue
        want = next((e for e in expected.rsts
                     if e.capture == side and e.claimed_sender == reset.claimed_sender), None)
        if want is None:
            continue
        top = max((d.confidence for d in reset.diagnoses), default=None)
        rows.append(CheckRow(
            scenario=expected.scenario, capture=side, claimed_sender=reset.claimed_sender,
            frame=reset.frame, want_origin=expected.origin, got_origin=reset.origin,
            want_hop=want.tracert_hop, got_hop=reset.rst_source.tracert_hop,
            want_pattern=expected.pattern, got_pattern=reset.pattern,
            want_subtype=expected.subtype,
            got_subtypes=[d.id for d in reset.diagnoses if d.confidence == top]))
    return rows


def missing_resets(folder: Path, rows: list[CheckRow]) -> list[str]:
    """Predicted RSTs that analyze did not report at all."""
    expected = read_expected(folder / "expected.yaml")
    return [f"{expected.scenario}: no reset reported in {e.capture}.pcap claimed by "
            f"{e.claimed_sender}" for e in expected.rsts
            if not any(r.capture == e.capture and r.claimed_sender == e.claimed_sender
                       for r in rows)]


def run_check(paths: list[Path], strict: bool = False) -> int:
    from engine import load_kb
    kb = load_kb()
    failures = 0
    print(f"{'scenario':22} {'capture':7} {'origin':26} {'hop':5} {'pattern':38} sub-type")
    for folder in scenario_folders(paths):
        rows = check_folder(folder, kb)
        for problem in missing_resets(folder, rows):
            print(f"{problem}  FAIL")
            failures += 1
        for row in rows:
            bad = not row.origin_ok or (strict and not (row.pattern_ok and row.subtype_ok))
            failures += bad
            origin = row.got_origin if row.origin_ok else f"{row.got_origin}≠{row.want_origin}"
            hop = str(row.got_hop) if row.got_hop == row.want_hop else f"{row.got_hop}≠{row.want_hop}"
            pattern = "ok" if row.pattern_ok else f"{row.got_pattern}≠{row.want_pattern}"
            subtype = "ok" if row.subtype_ok else f"{'/'.join(row.got_subtypes) or 'none'}≠{row.want_subtype}"
            print(f"{row.scenario:22} {row.capture:7} {origin:26} {hop:5} {pattern:38} {subtype}"
                  + ("  FAIL" if bad else ""))
    return 1 if failures else 0
