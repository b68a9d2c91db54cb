"""The base of acrsync's dataclasses: repr, equality, hashing and immutability written once here, and
``__init__`` compiled when a class is first constructed rather than when it is defined.

``dataclasses`` generates those methods per class by compiling source text, and on Python 3.10 that
compiling was most of what importing the push path cost a cold function instance (docs/BENCHMARKS.md,
"Cold start"). ``acrsync.value.dataclass`` is ``dataclasses.dataclass`` without that cost: the class
inherits repr, equality and hashing from ``Value`` or ``Frozen``, is frozen by ``Frozen``'s ``__setattr__``,
and gets the ``__init__`` that ``dataclasses`` would write on its first construction. Classes a function
never constructs cost nothing. They behave as the generated ones do (field order, defaults and factories,
``kw_only``, ``init=False``, ``__post_init__``, the ``repr``/``compare``/``hash`` flags of each field,
``NotImplemented`` for another class, ``FrozenInstanceError``); tests/unit/test_value.py compares them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar


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

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(getattr(self, f.name) for f in _fields(self)
                          if (f.compare if f.hash is None else f.hash)))


_T = TypeVar("_T", bound=type)

if TYPE_CHECKING:
    # To the type checker this is dataclasses.dataclass, with every check that comes with it (frozen
    # fields, the constructor's signature, inheritance between frozen and mutable classes).
    from dataclasses import dataclass as dataclass
else:
    def dataclass(cls=None, /, *, frozen=False, kw_only=False):
        """``@dataclasses.dataclass`` for a subclass of ``Value`` (``frozen=True``: of ``Frozen``)."""

        def wrap(c: _T) -> _T:
            if not issubclass(c, Value) or issubclass(c, Frozen) != frozen:
                base = "Frozen" if frozen else "Value"
                raise TypeError(f"{c.__qualname__}: a {'frozen' if frozen else 'mutable'} acrsync dataclass "
                                f"subclasses acrsync.value.{base}")
            if "__init__" not in c.__dict__:
                c.__init__ = _first_init     # replaced by the compiled one on the first construction
            undocumented = c.__doc__ is None
            if undocumented:                 # else dataclasses documents it through inspect.signature
                c.__doc__ = ""
            c = dataclasses.dataclass(c, init=False, repr=False, eq=False, kw_only=kw_only)
            extra = set(c.__dataclass_fields__) - {f.name for f in dataclasses.fields(c)}
            if any("InitVar" in str(c.__dataclass_fields__[n].type) for n in extra):
                raise TypeError(f"{c.__qualname__}: InitVar is not supported here; use dataclasses.dataclass")
            if undocumented:
                c.__doc__ = f"{c.__name__}({', '.join(f.name for f in dataclasses.fields(c))})"
            return c

        return wrap if cls is None else wrap(cls)


def _first_init(self: Any, *args: Any, **kwargs: Any) -> None:
    owner = next(k for k in type(self).__mro__ if "__dataclass_fields__" in k.__dict__)
    init = compile_init(owner)
    owner.__init__ = init  # type: ignore[misc]
    init(self, *args, **kwargs)


def compile_init(cls: type) -> Callable[..., None]:
    """The ``__init__`` that ``dataclasses`` writes for ``cls``, from its public ``fields``: positional fields
    in order, then keyword-only ones; defaults bound once, factories called per instance (of the
    ``init=False`` fields, only those with a factory are set); a frozen class assigns through
    ``object.__setattr__``; ``__post_init__`` last."""
    me = "__dataclass_self__"          # as dataclasses names it, so a field may be called "self"
    no_arg = "__dataclass_no_arg__"
    env: dict[str, Any] = {"__dataclass_setattr__": object.__setattr__, no_arg: _NO_ARG}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        default, factory = f"__dataclass_default_{i}__", f"__dataclass_factory_{i}__"
        has_default = f.default is not dataclasses.MISSING
        has_factory = f.default_factory is not dataclasses.MISSING
        env[default], env[factory] = f.default, f.default_factory
        if f.init:
            param = f.name + (f"={default}" if has_default else f"={no_arg}" if has_factory else "")
            (keyword if f.kw_only else positional).append(param)
            value = f"{factory}() if {f.name} is {no_arg} else {f.name}" if has_factory else f.name
        elif has_factory:
            value = f"{factory}()"
        else:           # a plain default stays the class attribute dataclasses sets; no default: unset
            continue
        body.append(f"__dataclass_setattr__({me}, {f.name!r}, {value})" if issubclass(cls, Frozen)
                    else f"{me}.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append(f"{me}.__post_init__()")
    params = ", ".join([me, *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({params}):\n" + "".join(f"    {line}\n" for line in body or ["pass"])
    exec(source, env)                  # the code dataclasses would compile, from the fields
    init: Callable[..., None] = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init


class _NoArg:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


_NO_ARG = _NoArg()
