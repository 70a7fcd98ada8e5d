"""Compact JSON of report objects, byte for byte as pydantic-core writes it, with each shared
object written once (``engine._jsonw``; see its header for what it writes itself).

``items_json(values, cls, cache)`` is ``TypeAdapter(list[cls]).serializer.to_json(values,
by_alias=True, warnings=False)`` without its brackets. The spec handed to the C writer comes
from the models' own fields; whatever the writer does not write itself goes to the pydantic
serializer of that field's annotation, so the bytes are pydantic's either way. Without the
compiled module (or with ``RSTSLEUTH_NO_CEXT``), pydantic writes the whole list.
"""
from __future__ import annotations

import functools
import os
import types
import typing
from typing import Any, Optional

from pydantic import BaseModel

from facts.fastmodel import model_is_plain

try:
    from . import _jsonw
except ImportError:  # not built: pydantic writes everything
    _jsonw = None

FALLBACK, STR, INT, FLOAT, BOOL, ANY, MODEL, LIST, OPTIONAL = range(9)
_SCALARS = {str: STR, int: INT, float: FLOAT, bool: BOOL}


class _Serializer:
    """pydantic's serializer of one annotation, made on first use (a TypeAdapter costs
    milliseconds to build, and most are never needed)."""

    def __init__(self, annotation: Any):
        self.annotation = annotation
        self._to_json = None

    def __call__(self, value: Any) -> bytes:
        if self._to_json is None:
            from pydantic import TypeAdapter
            self._to_json = functools.partial(TypeAdapter(self.annotation).serializer.to_json,
                                              by_alias=True, warnings=False)
        return self._to_json(value)


def _plain_fields(cls: type[BaseModel]) -> bool:
    """Fields serialized as their names, values and declaration order say: no alias, no
    exclusion, no custom or computed serializer."""
    decorators = cls.__pydantic_decorators__
    return (model_is_plain(cls) and bool(cls.model_fields) and not cls.model_computed_fields
            and not decorators.field_serializers and not decorators.model_serializers
            and all(info.alias in (None, name) and info.serialization_alias in (None, name)
                    and not info.exclude for name, info in cls.model_fields.items()))


@functools.lru_cache(maxsize=None)
def spec_of(annotation: Any) -> tuple:
    """The C writer's (kind, arg, fallback) for a field annotation."""
    serializer = _Serializer(annotation)
    kind = _SCALARS.get(annotation)
    if kind is not None:
        return kind, None, serializer
    if annotation is Any:
        return ANY, None, serializer
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal and all(type(a) is str for a in args):
        return STR, None, serializer
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return OPTIONAL, spec_of(inner), serializer
    if origin is list and len(args) == 1:
        return LIST, spec_of(args[0]), serializer
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
            and _plain_fields(annotation):
        fields = tuple(
            (name, f'{"{" if i == 0 else ","}"{name}":'.encode("ascii"), spec_of(info.annotation))
            for i, (name, info) in enumerate(annotation.model_fields.items()))
        return MODEL, (annotation, fields), serializer
    return FALLBACK, None, serializer


def compiled() -> bool:
    return _jsonw is not None and not os.environ.get("RSTSLEUTH_NO_CEXT")


def items_json(values: list, cls: type[BaseModel], cache: Optional[dict] = None) -> bytes:
    """``values`` (instances of ``cls``) as the items of a compact JSON list: what pydantic
    writes between the list's brackets. ``cache``: a dict kept for one report (and for
    nothing else), holding the bytes of the objects the values share."""
    if compiled():
        return _jsonw.write(values, spec_of(cls), cache)
    return spec_of(list[cls])[2](values)[1:-1]
