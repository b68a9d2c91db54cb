"""The base of acrsync's dataclasses: repr, equality and hashing from the fields, written once here.

``dataclasses`` generates those methods per class by compiling source text, and on Python 3.10 that
compiling was most of what importing the push path cost a cold function instance (docs/BENCHMARKS.md,
"Cold start"). So the dataclasses say ``repr=False, eq=False`` and inherit these instead; they behave as the
generated ones do (field order, ``repr``/``compare``/``hash`` flags of each field, ``NotImplemented`` for
another class).
"""

from __future__ import annotations

import dataclasses
from typing import Any


def _fields(obj: Any) -> tuple[dataclasses.Field[Any], ...]:
    # typed Any: these bases are not dataclasses themselves, their subclasses are
    return dataclasses.fields(obj)


class Value:
    """A mutable dataclass: equal when of the same class with equal fields; not hashable."""

    __slots__ = ()

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in _fields(self) if f.repr)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in _fields(self) if f.compare)

    __hash__ = None  # type: ignore[assignment]


class Frozen(Value):
    """A frozen dataclass: hashable from the fields that take part in comparison (or say ``hash=True``)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, f.name) for f in _fields(self)
                          if (f.compare if f.hash is None else f.hash)))
