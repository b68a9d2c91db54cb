"""acrsync's own stored data to and from its domain types (frozen stdlib dataclasses).

What a person writes (the config file) is validated with pydantic (``acrsync.config``); what acrsync wrote
itself (ledger rows, shared verdicts, the config that ``make package`` validated) is decoded here,
structurally, from the dataclasses' type hints. The function's push path therefore never imports pydantic:
importing it and building its validators costs more than the whole cold-start budget
(docs/BENCHMARKS.md, "Cold start").

``dump`` gives plain JSON values (enums as their values, times in ISO 8601; every field, defaults and
``None`` included); ``load`` is its inverse and raises ``CodecError`` with the path of the first value of
the wrong shape. Keys the type does not know are ignored, so a newer writer's extra fields do not break an
older reader.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
import types
import typing
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from acrsync.errors import AcrsyncError

T = TypeVar("T")
_Decoder = Callable[[Any, str], Any]
_MISSING = dataclasses.MISSING


class CodecError(AcrsyncError, ValueError):
    """Stored data that does not have the shape of its type (a corrupt or foreign row)."""


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}     # None: not a dataclass


def _names(cls: type) -> tuple[str, ...] | None:
    try:
        return _FIELD_NAMES[cls]
    except KeyError:
        names = tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else None
        _FIELD_NAMES[cls] = names
        return names


def dump(value: Any) -> Any:
    """A dataclass (or anything made of dataclasses, enums, lists and dicts) as plain JSON values."""
    cls = type(value)
    if cls in _PLAIN:
        return value
    names = _names(cls)
    if names is not None:
        return {n: dump(getattr(value, n)) for n in names}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [dump(v) for v in value]
    if isinstance(value, dict):
        return {str(k): dump(v) for k, v in value.items()}
    return value


def check_field(cls: type[Any], name: str, value: Any) -> Any:
    """``value`` as field ``name`` of the dataclass ``cls`` holds it, or ``CodecError``: what a change to
    one field is checked with, without encoding the whole object."""
    hints = _hints(cls)
    if name not in hints:
        raise CodecError(f"{cls.__name__} has no field {name!r}")
    return _decoder(hints[name])(dump(value), f"{cls.__name__}.{name}")


_HINTS: dict[type, dict[str, Any]] = {}
_EVALUATED: dict[tuple[str, str], Any] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The fields' types. Each annotation text is evaluated once per module, in the module of the class
    that declares it: ``typing.get_type_hints`` compiles every annotation of every class again, which was
    most of the time a cold function spent reading its config. Anything that cannot be evaluated that way
    (a name only the type checker sees) falls back to ``get_type_hints``."""
    try:
        return _HINTS[cls]
    except KeyError:
        pass
    declared_in = {name: base.__module__ for base in reversed(cls.__mro__)
                   for name in base.__dict__.get("__annotations__", {})}
    try:
        hints = {f.name: _evaluate(f.type, declared_in[f.name]) for f in dataclasses.fields(cls)}
    except Exception:
        hints = typing.get_type_hints(cls)
    _HINTS[cls] = hints
    return hints


def _evaluate(annotation: Any, module: str) -> Any:
    if not isinstance(annotation, str):
        return annotation
    try:
        return _EVALUATED[module, annotation]
    except KeyError:
        pass
    # the class's own annotation text, in its own module's namespace, as get_type_hints evaluates it
    value = eval(annotation, vars(sys.modules[module]))
    _EVALUATED[module, annotation] = value
    return value


def dumps(value: Any, **kw: Any) -> str:
    """``dump`` as compact JSON text (non-ASCII kept as is)."""
    return json.dumps(dump(value), ensure_ascii=False, separators=(",", ":"), **kw)


def load(cls: type[T], data: Any) -> T:
    """``data`` (plain JSON values) as an instance of the dataclass ``cls``."""
    decoded: T = _decoder(cls)(data, cls.__name__)
    return decoded


def loads(cls: type[T], text: str | bytes) -> T:
    """``load`` from JSON text."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise CodecError(f"{cls.__name__}: not JSON ({e})") from None
    return load(cls, data)


_CACHE: dict[Any, _Decoder] = {}


def _decoder(tp: Any) -> _Decoder:
    try:
        return _CACHE[tp]
    except (KeyError, TypeError):
        pass
    made = _make(tp)
    try:
        _CACHE[tp] = made
    except TypeError:          # an unhashable hint: not cached
        pass
    return made


def _fail(path: str, want: str, got: Any) -> CodecError:
    return CodecError(f"{path}: expected {want}, got {type(got).__name__} {str(got)[:80]!r}")


def _make(tp: Any) -> _Decoder:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _decoder(typing.get_args(tp)[0])
    if tp is Any or tp is object:
        return lambda v, path: v
    if tp is type(None):
        def none(v: Any, path: str) -> None:
            if v is not None:
                raise _fail(path, "null", v)
        return none
    if origin in (typing.Union, types.UnionType):
        return _union(typing.get_args(tp))
    if origin is typing.Literal:
        allowed = typing.get_args(tp)

        def literal(v: Any, path: str) -> Any:
            if v not in allowed:
                raise CodecError(f"{path}: expected one of {list(allowed)}, got {v!r}")
            return v
        return literal
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        item = _decoder(args[0] if args else Any)
        kind: Callable[[Any], Any] = origin

        def sequence(v: Any, path: str) -> Any:
            if not isinstance(v, list):
                raise _fail(path, "a list", v)
            return kind(item(x, f"{path}[{i}]") for i, x in enumerate(v))
        return sequence
    if origin is dict:
        args = typing.get_args(tp)
        val = _decoder(args[1] if args else Any)

        def mapping(v: Any, path: str) -> Any:
            if not isinstance(v, dict):
                raise _fail(path, "an object", v)
            return {k: val(x, f"{path}.{k}") for k, x in v.items()}
        return mapping
    if isinstance(tp, type) and issubclass(tp, Enum):
        enum_type: type[Enum] = tp

        def enum(v: Any, path: str) -> Any:
            try:
                return enum_type(v)
            except ValueError:
                raise CodecError(f"{path}: {v!r} is not a {enum_type.__name__}") from None
        return enum
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp)
    if tp is _dt.datetime:
        def moment(v: Any, path: str) -> _dt.datetime:
            if not isinstance(v, str):
                raise _fail(path, "an ISO 8601 time", v)
            try:
                return _dt.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith("Z") else v)
            except ValueError:
                raise CodecError(f"{path}: {v!r} is not an ISO 8601 time") from None
        return moment
    if tp is float:
        def number(v: Any, path: str) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _fail(path, "a number", v)
            return float(v)
        return number
    if tp is int:
        def integer(v: Any, path: str) -> int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise _fail(path, "an integer", v)
            return v
        return integer
    if tp in (str, bool):
        def exact(v: Any, path: str) -> Any:
            if not isinstance(v, tp):
                raise _fail(path, tp.__name__, v)
            return v
        return exact
    raise TypeError(f"acrsync.codec cannot decode {tp!r}")


def _union(args: tuple[Any, ...]) -> _Decoder:
    optional = type(None) in args
    rest = [_decoder(a) for a in args if a is not type(None)]

    def union(v: Any, path: str) -> Any:
        if v is None and optional:
            return None
        errors = []
        for dec in rest:
            try:
                return dec(v, path)
            except CodecError as e:
                errors.append(str(e))
        raise CodecError(errors[0] if len(errors) == 1 else f"{path}: no type matches ({'; '.join(errors)})")
    return union


def _dataclass(cls: type[Any]) -> _Decoder:
    plan: list[tuple[str, _Decoder | None, bool]] = []
    hints: dict[str, Any] | None = None

    def build() -> None:
        nonlocal hints
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            if f.init:
                required = f.default is _MISSING and f.default_factory is _MISSING
                plan.append((f.name, _decoder(hints[f.name]), required))

    def decode(v: Any, path: str) -> Any:
        if hints is None:
            build()
        if isinstance(v, cls):
            return v
        if not isinstance(v, dict):
            raise _fail(path, f"a {cls.__name__} object", v)
        kwargs = {}
        for name, dec, required in plan:
            if name in v:
                assert dec is not None
                kwargs[name] = dec(v[name], f"{path}.{name}")
            elif required:
                raise CodecError(f"{path}.{name}: required, missing")
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise CodecError(f"{path}: {e}") from None
    return decode
