"""Run classes: evidence sets that make exactly the same rules fire with the same strengths.

A capture with thousands of resets reasons once per class (``Reasoner.infer_many``). The key
leaves out the fields no rule reads and keeps a number only by its interval among the
constants rules compare it with (3600.2 s and 3601.7 s of idle are one class when no rule
draws a line between them); ``identity`` tells identical evidence sets apart exactly.
"""
from __future__ import annotations

import bisect
from typing import Any, Optional

from facts.fields import FIELDS

from .compile import CompiledKB
from .conditions import ASK, compiled_evkey


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _thresholds(compiled: CompiledKB) -> dict[str, Optional[list[float]]]:
    """Per field: the sorted numeric constants rules compare it with, or None when some test
    on it is not a plain comparison with numbers (a regex, a string), so values must stay."""
    from .compile import _literals
    out: dict[str, Optional[list[float]]] = {}
    for node in compiled.nnf:
        for lit in _literals(node):
            name, test = lit.test.field, lit.test
            if test.op == "exists":
                out.setdefault(name, [])
                continue
            members = test.value if isinstance(test.value, (list, tuple)) else [test.value]
            if test.op == "matches" or not all(_numeric(m) for m in members):
                out[name] = None
            elif out.get(name, []) is not None:
                out[name] = sorted(set(out.get(name, [])) | {float(m) for m in members})
    return out


_SCALARS = (str, int, float, bool)
_LIST_FIELDS = tuple(name for name, spec in FIELDS.items() if spec.kind == "list")


def identity(normalized: dict[str, Any]) -> Any:
    """A hashable stand-in for the evidence set: equal only for the same items, in the same
    order, of the same types (True, 1 and 1.0 are different evidence). Equal evidence built
    in another key order is merely not shared (it still reasons right)."""
    names, values = tuple(normalized), tuple(normalized.values())
    try:
        hash(values)
    except TypeError:  # lists (e.g. matched devices) count by their items
        fixed = list(values)
        # the fields declared as lists first: no scan over every value
        for name in _LIST_FIELDS:
            if type(normalized.get(name)) is list:
                i = names.index(name)
                fixed[i] = tuple(fixed[i])
        values = tuple(fixed)
        try:
            hash(values)
        except TypeError:
            values = tuple(tuple(v) if type(v) is list else v for v in values)
            try:
                hash(values)
            except TypeError:
                return repr(normalized)
    return names, values, tuple(map(type, values))


def _key_plan(compiled: CompiledKB) -> tuple[list[tuple[str, list[float]]], tuple[str, ...]]:
    """The fields rules read, split into those compared only with numbers (keyed by interval)
    and the others (keyed by value and type), each in name order."""
    thresholds = _thresholds(compiled)
    names = sorted(compiled.read_fields)
    numeric = [(n, thresholds[n]) for n in names if thresholds.get(n) is not None]
    return numeric, tuple(n for n in names if thresholds.get(n) is None)


class KeyPlan:
    """The fields rules read, as ``key`` needs them; made once per compiled KB."""

    def __init__(self, compiled: CompiledKB):
        self.numeric, self.others = _key_plan(compiled)
        self.compiled_numeric = tuple((name, tuple(c)) for name, c in self.numeric)

    def key(self, normalized: dict[str, Any], compiled: Any = ASK) -> tuple:
        """(positions, values, types): per numeric field 2i below constant i, 2i+1 equal
        to it, None when absent; the other fields' values and their types (True, 1 and 1.0
        are different evidence). Computed in C when engine._evkey is built (``compiled``:
        ``compiled_evkey()``, when the caller has it)."""
        if compiled is ASK:
            compiled = compiled_evkey()
        if compiled is not None:
            key = compiled.run_key(normalized, self.compiled_numeric, self.others)
            if key is not None:
                return key
        get = normalized.get
        positions = []
        add = positions.append
        for name, constants in self.numeric:
            value = get(name)
            kind = type(value)
            if kind is float or kind is int or (value is not None and _numeric(value)):
                # every comparison with any of the constants has one outcome for all numbers
                # of one such interval
                i = bisect.bisect_left(constants, value)
                add(2 * i + 1 if i < len(constants) and constants[i] == value else 2 * i)
            elif value is None:  # normalized evidence holds no None: absent
                add(None)
            else:
                add((kind.__name__, value if isinstance(value, _SCALARS) else repr(value)))
        values = tuple(map(get, self.others))
        try:
            hash(values)
        except TypeError:  # a list or another unhashable value: its repr stands for it
            values = tuple(v if v is None or isinstance(v, _SCALARS) else repr(v)
                           for v in values)
        return tuple(positions), values, tuple(map(type, values))
