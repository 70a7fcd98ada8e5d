"""``ask --capture [--peer]``: an interview that starts from one reset's capture facts.

The evidence is exactly what ``analyze`` reasons over for that reset (``analysis.gather``:
the reset's own facts, the dual-capture and cross-connection evidence), so no question whose
field the capture already set is asked."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from .interview import Interview


class ResetChoice(BaseModel):
    """A reset of the captures given to ``ask``, offered as the one to reason about."""

    id: str
    summary: str
    origin: str


def from_captures(kb, reasoner, capture: str, peer: Optional[str] = None, *,
                  reset: Optional[str] = None, lang: str = "en",
                  choose=None) -> Interview:
    """An interview that starts from one reset's capture facts (``ask --capture [--peer]``).

    With several resets: ``reset`` names one (``1:r3``); else ``choose(choices, default)``
    (interactive front ends) returns the index to use; else the first reset that looks like a
    middle device's (or the first) is taken, and a note says so."""
    from facts.errors import UserError

    from .analysis import gather

    gathered = gather(capture, peer, kb)
    jobs = gathered.jobs
    names = f"{capture}" + (f" + {peer}" if peer else "")
    if not jobs:
        return Interview(kb, reasoner, lang=lang,
                         notes=[f"{names}: no TCP reset in the capture(s); nothing measured to start from"])
    inferences = reasoner.infer_many([ev for _, _, ev, _ in jobs])
    choices = []
    for (side, rst, _ev, _dual), inf in zip(jobs, inferences):
        c = rst.connection
        choices.append(ResetChoice(
            id=f"{side.index}:{rst.id}", origin=inf.origin,
            summary=f"frame {rst.frame}: {rst.flags} claimed by {rst.claimed_sender} "
                    f"{c.client.ip}:{c.client.port} <-> {c.server.ip}:{c.server.port}"))
    default = next((i for i, ch in enumerate(choices) if ch.origin == "middle_device"), 0)
    notes = []
    if reset is not None:
        index = next((i for i, ch in enumerate(choices) if ch.id == reset), None)
        if index is None:
            raise UserError(f"{names}: no reset {reset!r}; the resets are "
                            + ", ".join(ch.id for ch in choices[:20]))
    elif len(choices) > 1 and choose is not None:
        index = choose(choices, default)
    else:
        index = default
        if len(choices) > 1:
            why = ("the first that looks like a middle device's" if choices[index].origin ==
                   "middle_device" else "none looks like a middle device's; the first")
            notes.append(f"{names}: {len(choices)} resets; using {choices[index].id} ({why}); "
                         f"pick another with --reset ID")
    side, rst, ev, _dual = jobs[index]
    detail = f"{rst.capture} reset {choices[index].id}, frame {rst.frame}"
    return Interview(kb, reasoner, lang=lang, base_evidence=ev, base_detail=detail, notes=notes)
