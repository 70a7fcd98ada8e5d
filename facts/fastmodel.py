"""``construct``: pydantic's ``model_construct`` without its per-field Python loop.

Facts and report objects are built from values that are already typed (the tracker's
numbers, KB objects), thousands of times per capture; pydantic's ``model_construct`` walks
every declared field with alias and default handling on each call (about 10 µs for a
25-field model), which was a third of ``analyze`` on a capture with 5 000 resets. This
builds the same object: the field values in declaration order, ``model_fields_set`` the
fields given. Nothing is validated, exactly as with ``model_construct``; the tests compare
both constructions and validate the built facts and reports against their schemas.
"""
from __future__ import annotations

import os
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_set = object.__setattr__


class _Spec:
    __slots__ = ("names", "name_set", "count", "defaults", "factories", "plain")

    def __init__(self, cls: type[BaseModel]):
        fields = cls.model_fields
        self.names = tuple(fields)
        self.name_set = frozenset(self.names)
        self.count = len(self.names)
        self.defaults: dict[str, Any] = {}
        self.factories: dict[str, Any] = {}
        for name, info in fields.items():
            if info.default_factory is not None:
                self.factories[name] = info.default_factory
            elif info.default is not PydanticUndefined:
                self.defaults[name] = info.default
        # model_construct's shortcuts do not apply to models with private attributes, a
        # post-init hook or extra fields: those go through pydantic itself.
        self.plain = (not cls.__pydantic_post_init__ and not cls.__private_attributes__
                      and cls.model_config.get("extra") != "allow"
                      and not getattr(cls, "__pydantic_root_model__", False))


_SPECS: dict[type, _Spec] = {}

# The compiled common case of construct (facts/_ctrack_models.c), unless RSTSLEUTH_NO_CEXT
# is set when this module is imported: the same object, without four Python-level setattrs.
_adopt_exact = None
if not os.environ.get("RSTSLEUTH_NO_CEXT"):
    try:
        from ._ctrack import adopt_exact as _adopt_exact
    except ImportError:  # not built (or a build older than this source)
        _adopt_exact = None


def _spec(cls: type[BaseModel]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        spec = _SPECS[cls] = _Spec(cls)
    return spec


def _adopt(cls: type[M], data: dict[str, Any], given: set[str]) -> M:
    """The model object model_construct makes, around ``data`` as its ``__dict__``."""
    m = _new(cls)
    _set(m, "__dict__", data)
    _set(m, "__pydantic_fields_set__", given)
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def construct(cls: type[M], **values: Any) -> M:
    """``cls.model_construct(**values)`` for field names (not aliases). A field left out
    takes its default; one without a default stays unset, as with ``model_construct``."""
    spec = _SPECS.get(cls) or _spec(cls)
    if not spec.plain:
        return cls.model_construct(**values)
    if _adopt_exact is not None:
        # every field, in declaration order (how reports are built): made in C
        made = _adopt_exact(cls, spec.names, values)
        if made is not None:
            return made
    if len(values) == spec.count and tuple(values) == spec.names:
        data, given = values, set(values)
    elif len(values) == spec.count and spec.name_set.issuperset(values):
        # every field, in another order: declaration order is the JSON key order
        data, given = {name: values[name] for name in spec.names}, set(values)
    else:
        given = set(values)
        unknown = given.difference(spec.names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
        data = {}
        defaults, factories = spec.defaults, spec.factories
        for name in spec.names:
            if name in values:
                data[name] = values[name]
            elif name in defaults:
                data[name] = defaults[name]
            elif name in factories:
                data[name] = factories[name]()
    return _adopt(cls, data, given)


def construct_dict(cls: type[M], data: dict[str, Any]) -> M:
    """``construct(cls, **data)`` for a complete ``data`` (every field, in declaration order),
    which becomes the model's ``__dict__`` itself (no copy). This is what the compiled facts
    (``facts._ctrack``) build; anything else is refused."""
    spec = _spec(cls)
    if not spec.plain or len(data) != spec.count or tuple(data) != spec.names:
        raise TypeError(f"construct_dict: {cls.__name__} needs every field, in order")
    return _adopt(cls, data, set(spec.names))


def model_is_plain(cls: type[BaseModel]) -> bool:
    """``construct`` builds ``cls`` itself (no private attributes, post-init hook, extra
    fields or root model), so its instances are ``__dict__`` plus the fields set."""
    return (_spec(cls)).plain


def present(model: BaseModel) -> dict[str, Any]:
    """``model.model_dump(exclude_none=True)`` for a flat model (scalar and list fields),
    without the serializer: lists are shared, not copied."""
    return {k: v for k, v in model.__dict__.items() if v is not None}


__all__ = ["construct", "construct_dict", "model_is_plain", "present"]
