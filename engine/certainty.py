"""MYCIN certainty factors.

Supports of one conclusion combine pairwise:

* both positive: ``a + b(1 - a)``
* both negative: ``a + b(1 + a)``
* mixed signs:  ``(a + b) / (1 - min(|a|, |b|))``; the undefined case ``+1`` against ``-1``
  (total certainty both ways) is taken as 0: the knowledge base contradicts itself there.

The mixed formula is not associative, so supports are always folded in one fixed order (the
order of the rules in the knowledge base); both reasoning paths (durable-rules and the pure
Python evaluator) use this module, so they agree to the last bit. Results are rounded to nine
decimals so that ``0.1 * 3`` reaches a threshold of 0.3 as a reader expects.
"""
from __future__ import annotations

from typing import Iterable

DIGITS = 9


def combine(a: float, b: float) -> float:
    """Combine two certainty factors in [-1, 1]."""
    if a >= 0 and b >= 0:
        out = a + b * (1 - a)
    elif a < 0 and b < 0:
        out = a + b * (1 + a)
    else:
        denominator = 1 - min(abs(a), abs(b))
        out = 0.0 if denominator == 0 else (a + b) / denominator
    return round(max(-1.0, min(1.0, out)), DIGITS)


def combine_all(values: Iterable[float]) -> float:
    """Fold supports in the given order; no support at all is 0 (unknown)."""
    total = None
    for value in values:
        total = round(value, DIGITS) if total is None else combine(total, value)
    return 0.0 if total is None else total


def contribution(rule_cf: float, premise_strength: float) -> float:
    """What one firing adds: the rule's cf scaled by its weakest concluded premise
    (1.0 for a rule over observed facts only)."""
    return round(rule_cf * premise_strength, DIGITS)
