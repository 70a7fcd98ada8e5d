"""Load and validate the knowledge base, compile it to durable-rules, run it, explain it.

Public API (used by analyze, ask and the TUI):

    kb = load_kb(path=None)          # None: $RSTSLEUTH_KB or the shipped knowledge/
    reasoner = Reasoner(kb)
    inference = reasoner.infer(evidence)   # evidence: flat {field: value}, see facts.fields
    inference.origin / .pattern / .ranked("subtype") / .how(conclusion_id)
    reasoner.why_not(evidence, conclusion_id)
    reasoner.what_if(evidence, changes)
    reasoner.infer_many(evidences)
"""
from __future__ import annotations

from typing import Any

from .explain import HowNode, WhatIf, WhyNot
from .host import EngineError
from .kb import KBError, KnowledgeBase, Problem
from .reasoner import ConclusionState, Inference, Justification, Reasoner

__all__ = ["load_kb", "Reasoner", "Inference", "ConclusionState", "Justification", "HowNode",
           "WhyNot", "WhatIf", "EngineError", "KBError", "KnowledgeBase", "Problem"]


def load_kb(path: Any = None) -> KnowledgeBase:
    """The KB loader (``engine.loader.load_kb``), imported on first use."""
    from .loader import load_kb as _load_kb
    return _load_kb(path)
