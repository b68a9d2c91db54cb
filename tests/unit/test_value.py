"""acrsync.value: the repr, equality and hashing acrsync's dataclasses share instead of generating them."""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import acrsync
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
found = []
for name, module in list(sys.modules.items()):
    if name.startswith("acrsync"):
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == name:
                found.append(name + "." + obj.__qualname__)
print(json.dumps(sorted(set(found))))
"""


def test_every_dataclass_on_the_push_path_shares_the_value_base():
    # A dataclass with generated repr/eq costs its compile time at every cold start (docs/BENCHMARKS.md).
    root = Path(acrsync.__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(root / "functions" / "on_push"),
                          str(root / "shared")], capture_output=True, text=True, check=True).stdout
    names = __import__("json").loads(out)
    assert len(names) > 30
    generated = []
    for qualified in names:
        module, _, cls = qualified.rpartition(".")
        obj = getattr(importlib.import_module(module), cls)
        if not issubclass(obj, Value) or "__eq__" in vars(obj) or "__repr__" in vars(obj):
            generated.append(qualified)
        assert issubclass(obj, Frozen) == obj.__dataclass_params__.frozen, qualified
    assert generated == []
