"""The lab's public API (re-exported by the package): scenarios, run, expected verdicts."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from facts.errors import UserError

from .expected import Expected, read_expected
from .netns import LabError, lab_unavailable_reason
from .runner import Scenario, run_scenario as _run
from .scenarios_firewall import SCENARIOS as _FIREWALL
from .scenarios_proxy import SCENARIOS as _PROXY

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _FIREWALL + _PROXY}


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def run(name: str, out_dir: Path, family: Optional[int] = None) -> Expected:
    """Run scenario ``name`` into ``out_dir``; raises LabError (a UserError) when it cannot."""
    if name not in SCENARIOS:
        raise UserError(f"unknown lab scenario '{name}' (try: {', '.join(SCENARIOS)})")
    return _run(SCENARIOS[name], Path(out_dir), family)


__all__ = ["SCENARIOS", "Expected", "LabError", "lab_unavailable_reason", "read_expected", "run",
           "scenario_names"]
