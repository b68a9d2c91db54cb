"""acrsync.value: the repr, equality, hashing and immutability acrsync's dataclasses share instead of
generating them, and the __init__ compiled on first use."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import acrsync
from acrsync import value as value_mod
from acrsync.cloud.credentials import Creds
from acrsync.cloud.retry import Budget
from acrsync.model import SyncRule
from acrsync.records import Attempt, ImageRef, Record
from acrsync.value import Frozen, Value


def rule(**kw) -> SyncRule:
    base = dict(rule_id="r1", scope="NAMESPACE", local_instance_id="cri-s", target_instance_id="cri-t",
                target_region="cn-beijing")
    return SyncRule(**{**base, **kw})


def test_repr_lists_the_fields_in_order_and_hides_the_ones_that_say_so():
    assert repr(ImageRef(instance_id="cri-a", namespace="n", repo="r", tag="t")) == \
        "ImageRef(instance_id='cri-a', namespace='n', repo='r', tag='t', digest=None)"
    shown = repr(Creds(access_key_id="LTAIexample", access_key_secret="not-shown", security_token="tok"))
    assert "LTAIexample" in shown and "not-shown" not in shown and "tok" not in shown


def test_equality_is_by_class_and_compared_fields():
    assert rule() == rule() and rule() != rule(rule_id="r2")
    assert rule().__eq__(("r1",)) is NotImplemented
    assert Budget(5.0, clock=object()) == Budget(5.0, clock=object())      # the clock is compare=False
    assert hash(Budget(5.0, clock=object())) == hash(Budget(5.0))
    a = Attempt(task_id="t", status="S", created_at=1.0)
    assert a != ImageRef(instance_id="t", namespace="", repo="", tag="")


def test_frozen_values_hash_by_fields_and_mutable_ones_do_not_hash():
    assert hash(rule()) == hash(rule()) and len({rule(), rule(), rule(rule_id="r2")}) == 2
    record = Record(image=ImageRef(instance_id="i", namespace="n", repo="r", tag="t"), target="b",
                    origin="push", created_at=1.0, updated_at=1.0)
    with pytest.raises(TypeError):
        hash(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule().rule_id = "x"                                                 # type: ignore[misc]


PROBE = r"""
import dataclasses, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
from acrsync.config import Config
import acrsync.ledger.tablestore
import acrsync.value
found = {}
for name, module in list(sys.modules.items()):
    if name.startswith("acrsync"):
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == name:
                own = vars(obj)
                methods = ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")
                compiled = [m for m in methods if m in own
                            and getattr(getattr(own[m], "__code__", None), "co_filename", "") == "<string>"]
                lazy = own.get("__init__") is acrsync.value._first_init
                found[name + "." + obj.__qualname__] = {"compiled": compiled, "lazy": lazy}
print(json.dumps(found))
"""


def test_no_dataclass_on_the_push_path_compiles_a_method_when_imported():
    # Each method dataclasses compiles costs its compile time at every cold start (docs/BENCHMARKS.md):
    # importing the push path compiles none; an __init__ is compiled when its class is first constructed.
    root = Path(acrsync.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(root / "functions" / "on_push"),
                          str(root / "shared")], capture_output=True, text=True, check=True).stdout
    found = __import__("json").loads(out)
    assert len(found) > 30
    # only an __init__, and only for a class the import itself constructs (module-level defaults, tables)
    assert {name: c["compiled"] for name, c in found.items() if set(c["compiled"]) - {"__init__"}} == {}
    assert sum(c["lazy"] for c in found.values()) > 30
    assert sum(bool(c["compiled"]) for c in found.values()) < 6
    for qualified in found:
        module, _, cls = qualified.rpartition(".")
        obj = getattr(importlib.import_module(module), cls)
        assert issubclass(obj, Value), qualified


# ---- the compiled __init__ is the one dataclasses would write --------------------------------------------

def _pair(frozen: bool, body: dict, *, kw_only: bool = False, post_init: bool = False):
    """The same class body twice: through acrsync.value.dataclass and through dataclasses.dataclass."""
    base = Frozen if frozen else Value
    ns = dict(body)
    if post_init:
        def __post_init__(self):
            object.__setattr__(self, "seen", (getattr(self, "a", None),))
        ns["__post_init__"] = __post_init__
    ours = value_mod.dataclass(frozen=frozen, kw_only=kw_only)(type("C", (base,), dict(ns)))
    stdlib = dataclasses.dataclass(frozen=frozen, kw_only=kw_only)(type("C", (), dict(ns)))
    return ours, stdlib


def _state(obj):
    return dict(vars(obj))


SHAPES = {
    "positional and defaults": {"__annotations__": {"a": "int", "b": "str", "c": "list"},
                                "b": "x", "c": dataclasses.field(default_factory=list)},
    "keyword-only field": {"__annotations__": {"a": "int", "k": "int", "z": "int"},
                           "k": dataclasses.field(kw_only=True), "z": 3},
    "init=False fields": {"__annotations__": {"a": "int", "d": "int", "e": "dict", "f": "int"},
                          "d": dataclasses.field(default=7, init=False),
                          "e": dataclasses.field(default_factory=dict, init=False),
                          "f": dataclasses.field(init=False, repr=False)},
}
CALLS = [((1,), {}), ((1, "y"), {}), ((), {"a": 2, "b": "q", "c": [1]}), ((1,), {"k": 5}),
         ((1,), {"k": 5, "z": 9}), ((1, 2), {}), ((), {}), ((1,), {"nope": 1}), ((1,), {"d": 1})]


@pytest.mark.parametrize("frozen", [False, True])
@pytest.mark.parametrize("kw_only", [False, True])
@pytest.mark.parametrize("post_init", [False, True])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_construction_matches_dataclasses(shape, frozen, kw_only, post_init):
    ours, stdlib = _pair(frozen, SHAPES[shape], kw_only=kw_only, post_init=post_init)
    assert [f.name for f in dataclasses.fields(ours)] == [f.name for f in dataclasses.fields(stdlib)]
    for args, kwargs in CALLS:
        try:
            want = ("ok", _state(stdlib(*args, **kwargs)))
        except TypeError as e:
            want = ("TypeError", str(e).replace("C.__init__", "__init__"))
        try:
            got = ("ok", _state(ours(*args, **kwargs)))
        except TypeError as e:
            got = ("TypeError", str(e).replace("C.__init__", "__init__"))
        assert got == want, (args, kwargs)
    probe = ours(a=1, **({"k": 1} if "k" in SHAPES[shape]["__annotations__"] else {}))
    assert type(ours).__init__ is not value_mod._first_init        # compiled once, then reused
    assert ours.__init__.__qualname__ == "C.__init__"
    if frozen:
        with pytest.raises(dataclasses.FrozenInstanceError):
            probe.a = 5
        with pytest.raises(dataclasses.FrozenInstanceError):
            del probe.a


def test_factories_are_called_per_instance_and_defaults_shared_as_dataclasses_do():
    ours, _ = _pair(True, SHAPES["positional and defaults"])
    one, two = ours(1), ours(1)
    assert one.c == [] and one.c is not two.c and one.b is two.b
    assert ours(1, c=[5]).c == [5]


def test_the_signature_after_first_use_is_the_dataclass_one():
    import inspect

    ours, stdlib = _pair(False, SHAPES["keyword-only field"], kw_only=False)
    ours(1, k=2)
    show = [(p.name, p.kind, p.default) for p in inspect.signature(ours).parameters.values()]
    want = [(p.name, p.kind, p.default) for p in inspect.signature(stdlib).parameters.values()]
    assert show == want


def test_a_subclass_gets_its_own_init_with_the_inherited_fields():
    base = value_mod.dataclass(frozen=True)(type("B", (Frozen,), {"__annotations__": {"a": "int"}}))
    sub = value_mod.dataclass(frozen=True)(type("S", (base,), {"__annotations__": {"b": "int"}, "b": 2}))
    assert _state(sub(1)) == {"a": 1, "b": 2} and _state(base(3)) == {"a": 3}
    with pytest.raises(TypeError):
        base(1, 2)


def test_what_it_refuses():
    with pytest.raises(TypeError, match="acrsync.value.Frozen"):
        value_mod.dataclass(frozen=True)(type("M", (Value,), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError, match="acrsync.value.Value"):
        value_mod.dataclass(type("P", (), {"__annotations__": {"a": "int"}}))
    with pytest.raises(TypeError, match="InitVar"):
        value_mod.dataclass(type("I", (Value,), {"__annotations__": {"a": dataclasses.InitVar[int]}}))
